/* The explorer's browser side (pages/explore.py calls these as clientside functions).
 *
 * Hover: the material under the cursor is found here, from the points' screen positions (a grid
 * of cells one hover radius wide, rebuilt whenever the axes, the plot size or the points trace
 * change), and its image, name and tooltip are set at once, in the mouse-move handler: nothing
 * waits for Plotly's hover pipeline or a Dash round trip. The hovered material is the visible
 * point nearest the cursor in screen pixels (ties: the lower index), within the layout's
 * hoverdistance. A click (a press and release without a drag) pins that same material.
 */
(function () {
    "use strict";
    const nu = () => window.dash_clientside.no_update;
    // what pages/explore.py says once (ids, trace index) and what the server says per model
    const st = {cfg: null, view: null, index: null, shown: -1, down: null, rev: 0, names: [], asked: new Set(),
                cell: null, labelAsk: 0};

    function plotDiv() {
        const host = st.cfg && document.getElementById(st.cfg.graph);
        return host ? host.querySelector(".js-plotly-plot") : null;
    }

    function isArrayLike(a) {
        return Array.isArray(a) || ArrayBuffer.isView(a);
    }

    /* Screen positions of the visible points (relative to the plot div) bucketed into square
     * cells of the hover radius: every point within the radius of the cursor is in the 3x3
     * cells around it. Reused while the trace object and the axes' scales are the same. */
    function currentIndex(gd) {
        const tr = gd._fullData && gd._fullData[st.cfg.points];
        const L = gd._fullLayout;
        if (!tr || !L || !L.xaxis || !L.yaxis || !tr.x) { return null; }
        const xa = L.xaxis, ya = L.yaxis;
        const key = [tr, st.rev, xa._m, xa._b, ya._m, ya._b, xa._offset, ya._offset, xa._length, ya._length];
        const old = st.index;
        if (old && old.key.every((v, i) => v === key[i])) { return old; }
        const radius = L.hoverdistance > 0 ? L.hoverdistance : 20;
        const n = tr.x.length, px = new Float64Array(n), py = new Float64Array(n);
        const op = tr.marker && tr.marker.opacity, hidden = isArrayLike(op);
        const cells = new Map();
        for (let i = 0; i < n; i++) {
            px[i] = xa._offset + xa.l2p(tr.x[i]);
            py[i] = ya._offset + ya.l2p(tr.y[i]);
            if ((hidden && !(op[i] > 0)) || !isFinite(px[i]) || !isFinite(py[i])) { continue; }
            const c = cellKey(Math.floor(px[i] / radius), Math.floor(py[i] / radius));
            const list = cells.get(c);
            if (list) { list.push(i); } else { cells.set(c, [i]); }
        }
        st.index = {key, tr, px, py, cells, radius,
                    box: [xa._offset, xa._offset + xa._length, ya._offset, ya._offset + ya._length]};
        return st.index;
    }

    function cellKey(cx, cy) {
        return (cx + 32768) * 65536 + (cy + 32768);
    }

    /* Index of the visible point nearest (x, y) within the radius, else -1. */
    function nearest(idx, x, y) {
        const r = idx.radius, cx = Math.floor(x / r), cy = Math.floor(y / r);
        let best = -1, bestD = r * r;
        for (let dx = -1; dx <= 1; dx++) {
            for (let dy = -1; dy <= 1; dy++) {
                const list = idx.cells.get(cellKey(cx + dx, cy + dy));
                if (!list) { continue; }
                for (const i of list) {
                    const ex = idx.px[i] - x, ey = idx.py[i] - y, d = ex * ex + ey * ey;
                    if (d < bestD || (d === bestD && (best < 0 || i < best))) { best = i; bestD = d; }
                }
            }
        }
        return best;
    }

    /* The point under a mouse event ({i: its index, idx: the index it was found in, rect: the
     * plot's box}), or null: off the plot area, on the mode bar, or while Plotly drags (a pan
     * or a zoom box; a click's release comes after Plotly's drag handling ended). */
    function pointAt(e, duringDrag) {
        const at = cursorAt(e, duringDrag);
        const i = at ? nearest(at.idx, at.x, at.y) : -1;
        return i < 0 ? null : {i, idx: at.idx, rect: at.rect};
    }

    /* The cursor in the plot area ({idx, rect, x, y}: x, y relative to the plot div), or null. */
    function cursorAt(e, duringDrag) {
        const gd = plotDiv();
        if (!gd || (duringDrag && gd._dragging) || !gd.contains(e.target) || e.target.closest(".modebar")) {
            return null;
        }
        const idx = currentIndex(gd);
        if (!idx) { return null; }
        const rect = gd.getBoundingClientRect(), x = e.clientX - rect.left, y = e.clientY - rect.top;
        const b = idx.box;
        return x < b[0] || x > b[1] || y < b[2] || y > b[3] ? null : {idx, rect, x, y};
    }

    function imageUrl(name) {
        return "/material-image/" + st.view.window + "/" + encodeURIComponent(name) + ".png";
    }

    function clusterText(c) {
        return c < 0 ? "noise" : "cluster " + c;
    }

    function tooltipText(tr, i) {
        // customdata: cluster label + 1 (0 = noise), see components/scatter.py; a large map
        // has none, and the hovered material's cluster is asked for (askLabel)
        const cluster = tr.customdata ? clusterText(tr.customdata[i] - 1) : "";
        const meta = tr.meta || {};
        const label = meta.point_labels ? meta.label + ": " + meta.point_labels[i] : "";
        return [label, cluster].filter(Boolean).join(" · ");
    }

    /* The hovered material's cluster from the server (the view is the address's query). */
    function askLabel(i, line) {
        const ask = ++st.labelAsk;
        fetch("/explore-point/" + i + window.location.search).then(r => r.ok ? r.json() : null).then(info => {
            if (!info || ask !== st.labelAsk || st.shown !== i) { return; }
            line.textContent = [line.textContent, clusterText(info.cluster)].filter(Boolean).join(" · ");
        }).catch(() => null);
    }

    /* Images of the points around the cursor (the nearest few within the prefetch radius),
     * asked for ahead of the hover; the server renders what it has to off the request thread
     * and answers 202 until then (a later hover finds it ready). Nothing else is prefetched. */
    function prefetchAround(idx, x, y) {
        if (st.view.window === null || st.view.window === undefined) { return; }
        const r = idx.radius, cx = Math.floor(x / r), cy = Math.floor(y / r), key = cx + ":" + cy + ":" + st.rev;
        if (key === st.cell) { return; }
        st.cell = key;
        const reach = Math.ceil(st.cfg.prefetch_radius / r), near = [];
        for (let dx = -reach; dx <= reach; dx++) {
            for (let dy = -reach; dy <= reach; dy++) {
                const list = idx.cells.get(cellKey(cx + dx, cy + dy));
                if (!list) { continue; }
                for (const i of list) {
                    const ex = idx.px[i] - x, ey = idx.py[i] - y;
                    near.push([ex * ex + ey * ey, i]);
                }
            }
        }
        near.sort((a, b) => a[0] - b[0]);
        if (st.asked.size > 20000) { st.asked.clear(); }
        let sent = 0;
        for (const [, i] of near) {
            if (sent >= st.cfg.prefetch_around) { break; }
            const url = imageUrl(String(st.names[i]));
            if (st.asked.has(url)) { continue; }
            st.asked.add(url);
            sent += 1;
            fetch(url, {headers: {"X-Bandscape-Prefetch": "1"}}).then(resp => {
                if (resp.status !== 200) { st.asked.delete(url); }  // not ready yet: ask again later
            }).catch(() => st.asked.delete(url));
        }
    }

    function show(hit) {
        const tr = hit.idx.tr, i = hit.i, name = String(st.names[i]);
        const img = document.getElementById(st.cfg.img), title = document.getElementById(st.cfg.name);
        if (hit.i !== st.shown || hit.idx !== st.shownIndex) {
            st.shown = i;
            st.shownIndex = hit.idx;
            if (st.view.window === null || st.view.window === undefined) {
                img.removeAttribute("src");
                title.textContent = name + " (no images for this model)";
            } else {
                img.src = imageUrl(name);
                title.textContent = name;
            }
        }
        const tip = document.getElementById(st.cfg.tip);
        if (tip) {
            const host = tip.offsetParent || tip.parentElement, hr = host.getBoundingClientRect();
            const line = document.createElement("span");
            line.textContent = tooltipText(tr, i);
            tip.replaceChildren(Object.assign(document.createElement("b"), {textContent: name}),
                                document.createElement("br"), line);
            if (!tr.customdata && i !== st.tipFor) { askLabel(i, line); }
            st.tipFor = i;
            tip.style.left = (hit.rect.left - hr.left + hit.idx.px[i] + 12) + "px";
            tip.style.top = (hit.rect.top - hr.top + hit.idx.py[i] + 12) + "px";
            tip.style.display = "block";
        }
    }

    function hideTip() {
        const tip = st.cfg && document.getElementById(st.cfg.tip);
        if (tip) { tip.style.display = "none"; }
    }

    function onMove(e) {
        if (!st.cfg || !st.view) { return; }
        const at = cursorAt(e, true), i = at ? nearest(at.idx, at.x, at.y) : -1;
        if (i >= 0) { show({i, idx: at.idx, rect: at.rect}); } else { hideTip(); st.tipFor = -1; }
        if (at) { prefetchAround(at.idx, at.x, at.y); }  // where the cursor is heading, hit or not
    }

    function onDown(e) {
        st.down = e.button === 0 ? [e.clientX, e.clientY] : null;
    }

    /* Plotly covers the page while the button is down, so the release is not on the plot; the
     * click that follows a press without a drag is. */
    function onClick(e) {
        const d = st.down;
        st.down = null;
        if (!d || Math.abs(e.clientX - d[0]) > 3 || Math.abs(e.clientY - d[1]) > 3) { return; }
        const hit = pointAt(e, false);
        if (hit) {
            window.dash_clientside.set_props(st.cfg.click, {data: {name: String(st.names[hit.i]), t: Date.now()}});
        }
    }

    function install() {
        if (st.installed) { return; }
        st.installed = true;
        // on the document: the plot div is replaced when the page is rebuilt; capture phase, so
        // the image is set before Plotly's own handlers run
        document.addEventListener("mousemove", onMove, {capture: true, passive: true});
        document.addEventListener("mousedown", onDown, {capture: true, passive: true});
        document.addEventListener("click", onClick, {capture: true, passive: true});
        document.documentElement.addEventListener("mouseleave", hideTip, {passive: true});
    }

    const TYPED = {u1: Uint8Array, i1: Int8Array, u2: Uint16Array, i2: Int16Array, u4: Uint32Array, i4: Int32Array,
                   f4: Float32Array, f8: Float64Array};

    /* plotly.js's typed-array spec ({dtype, bdata: base64}) as a typed array; other values as
     * they are. */
    function decode(v) {
        if (!v || typeof v !== "object" || typeof v.bdata !== "string") { return v; }
        const bin = atob(v.bdata), bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
        return new TYPED[v.dtype](bytes.buffer);
    }

    /* New colour codes, cluster labels and opacities of the points trace, applied in place.
     * The values go where Plotly keeps them (the figure's trace, the full trace and the points'
     * calcdata: `mc` colour value, `mo` opacity), so that any later redraw by Plotly (a zoom, a
     * pan, a new figure) draws the same; the SVG points are then recoloured directly, which
     * skips Plotly's whole-figure redraw (its colour-scale lookup per point dominates a
     * recluster). A WebGL map takes the public Plotly.restyle. */
    function applyStyle(gd, P, style, cfg) {
        const vals = {color: decode(style["marker.color"]), customdata: decode(style.customdata),
                      opacity: decode(style["marker.opacity"])};
        const tr = gd._fullData[P], user = gd.data[P], cd = gd.calcdata && gd.calcdata[P];
        const group = Array.from(gd.querySelectorAll(".scatterlayer g.trace"))
            .find(g => g.__data__ && g.__data__[0] && g.__data__[0].trace && g.__data__[0].trace.index === P);
        if (tr.type !== "scatter" || !cd || !group) {
            return window.Plotly.restyle(gd, {"marker.color": [vals.color], customdata: [vals.customdata],
                                              "marker.opacity": [vals.opacity]}, [P]);
        }
        for (const t of [user, tr]) {
            t.marker.color = vals.color;
            t.marker.opacity = vals.opacity;
            t.customdata = vals.customdata;
        }
        const perPoint = isArrayLike(vals.opacity);
        for (const d of cd) {
            d.mc = vals.color[d.i];
            d.mo = perPoint ? vals.opacity[d.i] : undefined;
        }
        // colour code 0 is noise, code j is palette[j - 1] (components/scatter.py's colour scale)
        const colours = [cfg.noise, ...cfg.palette];
        group.querySelectorAll("path.point").forEach(el => {
            const d = el.__data__;
            el.style.fill = colours[d.mc];
            el.style.opacity = perPoint ? String(d.mo) : String(vals.opacity);
        });
        return null;
    }

    const fns = {
        /* The server's new per-point style for the map on screen (a recluster, a filter). */
        restyle: function (style, cfg) {
            const gd = plotDiv();
            if (!style || !gd || !gd._fullData || !gd._fullData[cfg.points]) { return nu(); }
            applyStyle(gd, cfg.points, style, cfg);
            st.rev += 1;  // the hover's index drops hidden points
            st.shown = -1;
            return nu();
        },

        /* VIEW (model, window) changed: hover from now on for this view. */
        hoverView: function (view, cfg) {
            st.cfg = cfg;
            st.view = view;
            st.shown = -1;
            st.cell = null;
            install();
            return nu();
        },

        /* The materials' names (one string, a line each), once per set of materials. */
        names: function (data) {
            if (data && typeof data.names === "string") {
                st.names = data.names.split("\n");
                window.bandscapeNames = st.names;  // what the page's tests read
                st.rev += 1;
                st.shown = -1;
            }
            return nu();
        },

        /* The cluster sizes as badges in the clusters' colours (cluster k: palette[k % n]). */
        sizes: function (data, cfg) {
            const box = document.getElementById(cfg.sizes_box);
            if (!box || !data) { return nu(); }
            const pal = cfg.palette, badges = data.sizes.map(([k, size]) => {
                const b = document.createElement("span");
                b.className = "badge me-1";
                b.style.backgroundColor = pal[k % pal.length];
                b.style.color = "black";
                b.title = "cluster " + k;
                b.textContent = String(size);
                return b;
            });
            if (data.more) {
                badges.push(Object.assign(document.createElement("span"),
                                          {className: "text-muted", textContent: "+" + data.more + " more"}));
            }
            box.replaceChildren(...badges);
            return nu();
        },

        /* The model ids as the search box's datalist (built here: one Dash component per
         * option would slow every update of the page). */
        modelList: function (ids, cfg) {
            let list = document.getElementById(cfg.model_list);
            if (!list) {
                list = document.createElement("datalist");
                list.id = cfg.model_list;
                document.body.appendChild(list);
            }
            list.replaceChildren(...(ids || []).map(id => Object.assign(document.createElement("option"), {value: id})));
            return nu();
        },

        boxes: function (algo, metric) {
            const show = {}, hide = {display: "none"};
            return [algo === "hdbscan" ? show : hide, algo === "hdbscan" ? hide : show,
                    metric === "minkowski" ? show : hide];
        },

        toggle: function (n, open) {
            return n ? !open : open;
        },

        /* The help opens by itself on the first visit (remembered in the browser) and on Help. */
        help: function (openClicks, closeClicks, seen) {
            const ctx = window.dash_clientside.callback_context;
            const ids = ctx.inputs_list.map(i => i.id);
            if (ctx.triggered_id === ids[0]) { return [true, true]; }
            if (ctx.triggered_id === ids[1]) { return [false, true]; }
            if (seen) { return [false, nu()]; }
            // first visit: open once the map is drawn, so that the help's text (and its
            // Markdown renderer) does not delay the first view
            return new Promise(resolve => {
                const t0 = performance.now();
                const wait = () => {
                    const gd = plotDiv() || document.querySelector(".js-plotly-plot");
                    if ((gd && gd._fullLayout && gd._fullLayout._size) || performance.now() - t0 > 5000) {
                        setTimeout(() => resolve([true, nu()]), 50);
                    } else {
                        setTimeout(wait, 50);
                    }
                };
                wait();
            });
        },

        /* The view lives in the query string (keys and encodings from backend/explorer_view.py,
         * handed over in `format`: component id -> [key, kind]). history.replaceState changes
         * the address without telling the page router, so the page is not rebuilt on every
         * change, yet a reload or a shared link opens the same view. */
        writeUrl: function () {
            const ctx = window.dash_clientside.callback_context;
            const format = ctx.states_list[0].value;
            const params = new URLSearchParams();
            ctx.inputs_list.forEach(inp => {
                const spec = format[inp.id];
                let v = inp.value;
                if (!spec || v === null || v === undefined || v === false || (typeof v === "number" && isNaN(v))) { return; }
                if (spec[1] === "list") { if (!v.length) { return; } v = v.join(","); }
                if (spec[1] === "bool") { v = "1"; }
                params.set(spec[0], v);
            });
            const url = window.location.pathname + "?" + params.toString();
            if (url !== window.location.pathname + window.location.search) {
                window.history.replaceState(window.history.state, "", url);
            }
            return nu();
        },
    };

    window.dash_clientside = Object.assign({}, window.dash_clientside, {explore: fns});
})();

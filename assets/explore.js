/* The explorer's browser side (pages/explore.py calls these as clientside functions).
 *
 * Hover: the material under the cursor is found here, from the points' screen positions (a grid
 * of cells one hover radius wide, rebuilt whenever the axes, the plot size or the points trace
 * change), and its image, name and tooltip are set at once, in the mouse-move handler: nothing
 * waits for Plotly's hover pipeline or a Dash round trip. The hovered material is the visible
 * point nearest the cursor in screen pixels (ties: the lower index), within the layout's
 * hoverdistance. A click (a press and release without a drag) pins that same material.
 * The hover also follows what changes under a still cursor: the map's loading cover (shown while
 * a recluster is on its way) leaving, which Chromium tells with a mouseover and no mousemove;
 * a recluster's new clusters and its legend (which can move the map), after which the hover is
 * found again where the cursor was last seen.
 */
(function () {
    "use strict";
    const nu = () => window.dash_clientside.no_update;
    // what pages/explore.py says once (ids, trace index) and what the server says per model
    const st = {cfg: null, view: null, index: null, shown: -1, down: null, rev: 0, names: [], asked: new Set(), fetched: new Set(),
                cell: null, labelAsk: 0,
                // the cursor's last position on the page (client pixels), null once it left; a
                // hover to redo there on the next frame
                at: null, rehover: 0,
                // the selection: mask (Uint8Array, 1 = selected) or null; the points' own colour
                // codes (base) and the greyed copy written into the plot (greyed)
                sel: null, base: null, greyed: null, page: 0, tool: "pan", drag: null};

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

    /* A material's image address: the view's template (components/material_image.py's
     * material_image_template) with the name, in the config's name slot, quoted as its
     * quote_name does: every byte but A-Z a-z 0-9 _ . - ~ percent-encoded (encodeURIComponent
     * leaves ! ' ( ) * as they are). */
    function imageUrl(name) {
        const quoted = encodeURIComponent(name).replace(/[!'()*]/g, c => "%" + c.charCodeAt(0).toString(16).toUpperCase());
        return st.view.image_url.replace(st.cfg.image_name_slot, () => quoted);
    }

    /* Whether the model has band images (an image window). */
    function hasImages() {
        return Boolean(st.view && st.view.image_url);
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
     * and answers 202 until then (a later hover finds it ready). Nothing else is prefetched.
     * Two requests at a time, none while a hovered image is on its way, and a new cell replaces
     * what was still waiting: a burst of them had the hovered image wait behind it, in the
     * browser for a connection and on the server for its threads. */
    function prefetchAround(idx, x, y) {
        if (!hasImages()) { return; }
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
        if (st.asked.size > 20000) { st.asked.clear(); st.fetched.clear(); }
        decodeAhead(near.slice(0, st.cfg.decode_around).map(([, i]) => imageUrl(String(st.names[i]))));
        const queue = [];
        for (const [, i] of near) {
            if (queue.length >= st.cfg.prefetch_around) { break; }
            const url = imageUrl(String(st.names[i]));
            if (!st.asked.has(url)) { queue.push(url); }
        }
        st.prefetchQueue = queue;
        pumpPrefetch();
    }

    /* The images of the few points nearest the cursor, decoded ahead (an <img> decodes its
     * image when it is painted: a hover would wait for that on the frame that shows it). Only
     * images already fetched (not a request more); the decoded ones stay referenced, the last
     * few dozen, so that the browser keeps their pixels. */
    function decodeAhead(urls) {
        const kept = st.decoded || (st.decoded = window.bandscapeDecoded = new Map());  // (the tests read it)
        for (const url of urls) {
            if (kept.has(url)) {  // used again: to the end of the Map's order (set alone keeps the place)
                const img = kept.get(url);
                kept.delete(url);
                kept.set(url, img);
                continue;
            }
            if (!st.fetched.has(url)) { continue; }
            const img = new Image();
            img.src = url;
            kept.set(url, img);
            img.decode().catch(() => kept.delete(url));
        }
        while (kept.size > st.cfg.decode_keep) { kept.delete(kept.keys().next().value); }
    }

    function pumpPrefetch() {
        const q = st.prefetchQueue || [];
        while (q.length && (st.prefetching || 0) < 2 && !st.hoverLoading) {
            const url = q.shift();
            if (st.asked.has(url)) { continue; }
            st.asked.add(url);
            st.prefetching = (st.prefetching || 0) + 1;
            const done = ok => {
                if (!ok) { st.asked.delete(url); }  // not ready yet (202): ask again later
                st.prefetching -= 1;
                pumpPrefetch();
            };
            // low priority too: the browser sends a hovered image (high) before these
            fetch(url, {headers: {"X-Bandscape-Prefetch": "1"}, priority: "low"})
                .then(resp => resp.status === 200 ? resp.arrayBuffer().then(() => st.fetched.add(url)) : false)
                .then(done, () => done(false));
        }
    }

    /* A small map's band images, all of them, once the page is idle after drawing the map (two
     * at a time, so hovers and callbacks are not held up); the loaded images stay referenced, which
     * keeps them in the page's memory cache: a hover then shows its image without a request. */
    function prefetchAll() {
        const n = st.names.length;
        if (!hasImages() || !n || n > st.cfg.prefetch_all) { return; }
        const key = st.view.image_url + "|" + st.names[0] + "|" + n;
        if (st.allFor === key) { return; }
        st.allFor = key;
        st.images = [];
        const names = st.names.slice();
        let i = 0;
        const next = () => {
            if (i >= names.length || st.allFor !== key) { return; }
            const url = imageUrl(String(names[i++])), img = new Image();
            st.asked.add(url);
            img.onload = () => { st.fetched.add(url); next(); };
            img.onerror = next;
            img.src = url;
            st.images.push(img);
        };
        const start = () => { next(); next(); };
        // not before the map is drawn (its own requests and frames come first), then when idle
        const until = performance.now() + 60000;
        const afterDraw = () => {
            if (st.allFor !== key || performance.now() > until) { return; }
            const gd = plotDiv(), tr = gd && gd._fullData && gd._fullData[st.cfg.points];
            if (!(tr && tr.x && tr.x.length)) { requestAnimationFrame(afterDraw); return; }
            setTimeout(() => {
                if (window.requestIdleCallback) { window.requestIdleCallback(start, {timeout: 2000}); } else { start(); }
            }, 500);
        };
        requestAnimationFrame(afterDraw);
    }

    function show(hit) {
        const tr = hit.idx.tr, i = hit.i, name = String(st.names[i]);
        const img = document.getElementById(st.cfg.img), title = document.getElementById(st.cfg.name);
        if (hit.i !== st.shown || hit.idx !== st.shownIndex) {
            st.shown = i;
            st.shownIndex = hit.idx;
            if (!hasImages()) {
                img.removeAttribute("src");
                title.textContent = name + " (no images for this model)";
            } else {
                img.fetchPriority = "high";  // ahead of any prefetch waiting for a connection
                if (!img.dataset.bsWatched) {  // the prefetches wait while a hovered image loads
                    img.dataset.bsWatched = "1";
                    const loaded = () => { st.hoverLoading = false; pumpPrefetch(); };
                    img.addEventListener("load", loaded);
                    img.addEventListener("error", loaded);
                }
                const url = imageUrl(name);
                st.hoverLoading = !img.complete || img.src !== new URL(url, location.href).href;
                img.src = url;
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

    /* A placed material's star under the cursor (the placed trace: few points, measured on
     * each move), or null: {name, px, py, rect}. Stars are drawn over the points and win. */
    function placedAt(e) {
        const gd = plotDiv();
        if (!gd || st.cfg.placed === undefined || !gd.contains(e.target) || e.target.closest(".modebar")) {
            return null;
        }
        const tr = gd._fullData && gd._fullData[st.cfg.placed], L = gd._fullLayout;
        if (!tr || !tr.x || !tr.x.length || !L || !L.xaxis) { return null; }
        const rect = gd.getBoundingClientRect(), x = e.clientX - rect.left, y = e.clientY - rect.top;
        const r = L.hoverdistance > 0 ? L.hoverdistance : 20;
        let best = null, bestD = r * r;
        for (let i = 0; i < tr.x.length; i++) {
            const px = L.xaxis._offset + L.xaxis.l2p(tr.x[i]), py = L.yaxis._offset + L.yaxis.l2p(tr.y[i]);
            const d = (px - x) * (px - x) + (py - y) * (py - y);
            if (d <= bestD) { best = {name: String(tr.text[i]), px, py, rect}; bestD = d; }
        }
        return best;
    }

    function showPlaced(hit) {
        const img = document.getElementById(st.cfg.img), title = document.getElementById(st.cfg.name);
        st.shown = -1;
        st.shownIndex = null;
        st.tipFor = -1;
        title.textContent = hit.name + " (placed)";
        if (hasImages()) { img.src = imageUrl(hit.name); } else { img.removeAttribute("src"); }
        const tip = document.getElementById(st.cfg.tip);
        if (tip) {
            const host = tip.offsetParent || tip.parentElement, hr = host.getBoundingClientRect();
            tip.replaceChildren(Object.assign(document.createElement("b"), {textContent: hit.name}),
                                document.createElement("br"),
                                Object.assign(document.createElement("span"), {textContent: "placed on this map"}));
            tip.style.left = (hit.rect.left - hr.left + hit.px + 12) + "px";
            tip.style.top = (hit.rect.top - hr.top + hit.py + 12) + "px";
            tip.style.display = "block";
        }
    }

    function hideTip() {
        const tip = st.cfg && document.getElementById(st.cfg.tip);
        if (tip) { tip.style.display = "none"; }
    }

    function onMove(e) {
        if (!st.cfg || !st.view) { return; }
        st.at = [e.clientX, e.clientY];
        if (st.drag) { hideTip(); return; }
        const star = placedAt(e);
        if (star) { showPlaced(star); return; }
        const at = cursorAt(e, true), i = at ? nearest(at.idx, at.x, at.y) : -1;
        if (i >= 0) { show({i, idx: at.idx, rect: at.rect}); } else { hideTip(); st.tipFor = -1; }
        if (at) { prefetchAround(at.idx, at.x, at.y); }  // where the cursor is heading, hit or not
    }

    function onLeave() {
        st.at = null;
        hideTip();
    }

    /* The hover again where the cursor was last seen, on the next frame (once the page is laid
     * out anew), for a map that changed under a still cursor: a recluster's new clusters and
     * hidden points, and its legend above the map, whose new height moves the map on the page.
     * The browser tells of neither (the cursor stays on the same element). */
    function rehoverSoon() {
        if (st.rehover) { return; }
        st.rehover = requestAnimationFrame(() => {
            st.rehover = 0;
            const at = st.at, target = at && document.elementFromPoint(at[0], at[1]);
            if (target) { onMove({clientX: at[0], clientY: at[1], target}); }
        });
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
        const star = placedAt(e);
        if (star) {
            window.dash_clientside.set_props(st.cfg.click, {data: {name: star.name, placed: true, t: Date.now()}});
            return;
        }
        const hit = pointAt(e, false);
        if (hit) {
            window.dash_clientside.set_props(st.cfg.click, {data: {name: String(st.names[hit.i]), t: Date.now()}});
        }
    }

    /* The help's tour: Back and Next (data-tour -1 / 1) show one step at a time. */
    function onTour(e) {
        const button = e.target.closest && e.target.closest("[data-tour]");
        if (!button) { return; }
        const steps = Array.from(document.querySelectorAll(".explore-tour-step"));
        const now = steps.findIndex(s => s.style.display !== "none");
        const next = Math.max(0, Math.min(steps.length - 1, now + Number(button.dataset.tour)));
        steps.forEach((s, i) => { s.style.display = i === next ? "" : "none"; });
    }

    function install() {
        if (st.installed) { return; }
        st.installed = true;
        document.addEventListener("click", onTour, {passive: true});
        // on the document: the plot div is replaced when the page is rebuilt; capture phase, so
        // the image is set before Plotly's own handlers run
        document.addEventListener("mousedown", onSelectDown, {capture: true});
        document.addEventListener("mousemove", onSelectMove, {capture: true, passive: true});
        document.addEventListener("mouseup", onSelectUp, {capture: true, passive: true});
        document.addEventListener("click", onPageClick, {passive: true});
        document.addEventListener("mousemove", onMove, {capture: true, passive: true});
        // the element under the cursor changed, by a move or under a still cursor (the map's
        // loading cover went: a move made while it was up fell on the cover, not on the map)
        document.addEventListener("mouseover", onMove, {capture: true, passive: true});
        document.addEventListener("mousedown", onDown, {capture: true, passive: true});
        document.addEventListener("click", onClick, {capture: true, passive: true});
        document.documentElement.addEventListener("mouseleave", onLeave, {passive: true});
        document.addEventListener("keydown", onKey);
    }

    /* Escape: a box or lasso being drawn is dropped; else the selection is cleared (not while
     * a dialog, such as the help, is open: Escape closes that). */
    function onKey(e) {
        if (e.key !== "Escape" || !st.cfg || document.querySelector(".modal.show")) { return; }
        if (st.drag) {
            drawShape(st.drag.gd, null);
            st.drag = null;
            return;
        }
        if (st.sel) { select([], "clear"); }
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
        st.base = vals.color;
        const tr = gd._fullData[P], user = gd.data[P];
        for (const t of [user, tr]) {
            t.marker.opacity = vals.opacity;
            t.customdata = vals.customdata;
        }
        return paint(gd, P, colourCodes(vals.color), vals.opacity);
    }

    /* The codes to draw: the points' own, with unselected points grey while a selection holds. */
    function colourCodes(base) {
        if (!st.sel || !base || base.length !== st.sel.length) {
            st.greyed = null;
            return base;
        }
        const out = new Uint8Array(base.length), grey = st.cfg.unselected_code;
        for (let i = 0; i < base.length; i++) { out[i] = st.sel[i] ? base[i] : grey; }
        st.greyed = out;
        return out;
    }

    /* Write colour codes (and opacity, if given) where Plotly keeps them and onto the SVG
     * points; a WebGL map takes Plotly.restyle. */
    function paint(gd, P, codes, opacity) {
        const tr = gd._fullData[P], user = gd.data[P], cd = gd.calcdata && gd.calcdata[P];
        const group = Array.from(gd.querySelectorAll(".scatterlayer g.trace"))
            .find(g => g.__data__ && g.__data__[0] && g.__data__[0].trace && g.__data__[0].trace.index === P);
        if (opacity === undefined) { opacity = tr.marker.opacity; }
        if (tr.type !== "scatter" || !cd || !group) {
            user.marker.color = codes;
            return window.Plotly.restyle(gd, {"marker.color": [codes], customdata: [user.customdata],
                                              "marker.opacity": [opacity]}, [P]);
        }
        user.marker.color = codes;
        tr.marker.color = codes;
        const perPoint = isArrayLike(opacity);
        for (const d of cd) {
            d.mc = codes[d.i];
            d.mo = perPoint ? opacity[d.i] : undefined;
        }
        // colour code j is SCALE_COLOURS[j] (components/scatter.py's colour scale)
        const colours = st.cfg.colours;
        group.querySelectorAll("path.point").forEach(el => {
            const d = el.__data__;
            el.style.fill = colours[d.mc];
            el.style.opacity = perPoint ? String(d.mo) : String(opacity);
        });
        return null;
    }

    // ---- selection: box and lasso on the point index, a cluster, a list of names -------------

    function pointsTrace(gd) {
        return gd && gd._fullData && gd._fullData[st.cfg.points];
    }

    /* Select the points ``indices`` (of the points trace): grey the others, tell the page (the
     * names, for the URL and the export) and open the gallery. An empty list clears. */
    function select(indices, source) {
        const gd = plotDiv(), tr = pointsTrace(gd);
        if (!tr) { return; }
        hook(gd);
        const n = tr.x.length;
        if (!st.sel) { st.base = decode(tr.marker.color); }
        if (!indices.length) {
            st.sel = null;
            st.source = source;
        } else {
            st.sel = new Uint8Array(n);
            for (const i of indices) { st.sel[i] = 1; }
            st.source = source;
        }
        st.textKey = textKey(tr);
        st.page = 0;
        paint(gd, st.cfg.points, colourCodes(st.base));
        const names = indices.map(i => String(st.names[i]));
        window.dash_clientside.set_props(st.cfg.selection, {data: names.length ? names : null});
        renderGallery(indices.length || source === "clear" ? null : source);
    }

    function textKey(tr) {
        // the set of materials shown (the names come apart from the figure, once per set)
        const t = st.names;
        return t.length + "|" + t[0] + "|" + t[t.length - 1];
    }

    function selectedIndices() {
        const out = [];
        if (st.sel) { for (let i = 0; i < st.sel.length; i++) { if (st.sel[i]) { out.push(i); } } }
        return out;
    }

    function visible(tr, i) {
        const op = tr.marker && tr.marker.opacity;
        return !(isArrayLike(op) && !(op[i] > 0));
    }

    /* Points inside a box or lasso drawn in plot-div pixels (visible ones only). */
    function pointsInShape(shape) {
        const gd = plotDiv(), idx = gd && currentIndex(gd);
        if (!idx) { return []; }
        const out = [], tr = idx.tr, pts = shape.points;
        const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
        const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
        for (let i = 0; i < idx.px.length; i++) {
            const x = idx.px[i], y = idx.py[i];
            if (!(x >= x0 && x <= x1 && y >= y0 && y <= y1) || !visible(tr, i)) { continue; }
            if (shape.kind === "box" || inPolygon(pts, x, y)) { out.push(i); }
        }
        return out;
    }

    function inPolygon(pts, x, y) {
        let inside = false;
        for (let a = 0, b = pts.length - 1; a < pts.length; b = a++) {
            const [xa, ya] = pts[a], [xb, yb] = pts[b];
            if ((ya > y) !== (yb > y) && x < (xb - xa) * (y - ya) / (yb - ya) + xa) { inside = !inside; }
        }
        return inside;
    }

    /* The outline of the box or lasso being drawn: an SVG over the plot (no pointer events). */
    function drawShape(gd, shape) {
        let svg = gd.querySelector("svg.explore-lasso");
        if (!svg) {
            svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
            svg.setAttribute("class", "explore-lasso");
            svg.appendChild(document.createElementNS("http://www.w3.org/2000/svg", "polygon"));
            gd.appendChild(svg);
        }
        let pts = shape ? shape.points : [];
        if (shape && shape.kind === "box" && pts.length === 2) {
            const [[ax, ay], [bx, by]] = pts;
            pts = [[ax, ay], [bx, ay], [bx, by], [ax, by]];
        }
        svg.firstChild.setAttribute("points", pts.map(p => p.join(",")).join(" "));
        svg.style.display = shape ? "block" : "none";
    }

    /* In the box and lasso tools a press on the plot area starts a shape instead of Plotly's pan
     * (the event is stopped before it reaches Plotly); wheel zoom still works. */
    function onSelectDown(e) {
        if (st.tool === "pan" || e.button !== 0 || !st.cfg) { return; }
        const gd = plotDiv();
        if (!gd || !gd.contains(e.target) || e.target.closest(".modebar")) { return; }
        const idx = currentIndex(gd);
        if (!idx) { return; }
        const r = gd.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top, b = idx.box;
        if (x < b[0] || x > b[1] || y < b[2] || y > b[3]) { return; }
        e.stopPropagation();
        e.preventDefault();
        st.drag = {gd, rect: r, kind: st.tool, points: [[x, y]], start: [e.clientX, e.clientY], moved: false};
    }

    function onSelectMove(e) {
        const d = st.drag;
        if (!d) { return; }
        const p = [e.clientX - d.rect.left, e.clientY - d.rect.top];
        if (Math.abs(e.clientX - d.start[0]) > 3 || Math.abs(e.clientY - d.start[1]) > 3) { d.moved = true; }
        if (d.kind === "box") { d.points = [d.points[0], p]; } else { d.points.push(p); }
        if (d.moved) { drawShape(d.gd, d); }
    }

    function onSelectUp(e) {
        const d = st.drag;
        if (!d) { return; }
        st.drag = null;
        drawShape(d.gd, null);
        if (!d.moved) { return; }  // a click: the click handler pins the point
        st.down = null;
        st.selectedAt = e.timeStamp;
        select(pointsInShape(d), d.kind === "box" ? "box" : "lasso");
    }

    // ---- the gallery ------------------------------------------------------------------------

    function el(tag, props, children) {
        const e = Object.assign(document.createElement(tag), props || {});
        if (children) { e.append(...children); }
        return e;
    }

    function pointInfo(tr, i) {
        const c = tr.customdata ? tr.customdata[i] - 1 : undefined;
        const cluster = c === undefined ? "" : (c < 0 ? "noise" : "cluster " + c);
        const labels = (st.view && st.view.labels) || {};
        // a boolean label shows its name when true (e.g. "metal"), other labels their value
        const extra = Object.keys(labels).map(k => {
            const v = labels[k][i];
            return v === "True" ? k.replace(/_/g, " ") : (v === "False" ? "" : v);
        }).filter(Boolean);
        return [cluster, ...extra].join(" · ");
    }

    /* The selected materials' band structures, a page at a time (PAGE of them: the page holds
     * only those, so a selection of thousands opens as fast as one of a page). ``empty``: the
     * message when a gesture selected nothing. */
    function renderGallery(empty) {
        const box = document.getElementById(st.cfg.gallery_box), grid = document.getElementById(st.cfg.gallery);
        const info = document.getElementById(st.cfg.gallery_info);
        if (!box || !grid || !info) { return; }
        const gd = plotDiv(), tr = pointsTrace(gd), picked = selectedIndices();
        if (!picked.length || !tr) {
            grid.replaceChildren();
            info.replaceChildren(empty ? "Nothing selected: the " + empty + " holds no visible material." : "");
            box.style.display = empty ? "block" : "none";
            return;
        }
        const size = st.cfg.page_size, pages = Math.ceil(picked.length / size);
        st.page = Math.max(0, Math.min(st.page, pages - 1));
        const from = st.page * size, shown = picked.slice(from, from + size);
        const noImages = !hasImages();
        const cards = shown.map(i => {
            const name = String(st.names[i]);
            const img = el("img", {alt: name, decoding: "async"});
            if (!noImages) { img.src = imageUrl(name); }
            return el("figure", {className: "explore-thumb", title: "click to pin " + name}, [
                img, el("figcaption", {}, [el("b", {textContent: name}), el("br"), pointInfo(tr, i)])]);
        });
        shown.forEach((i, k) => { cards[k].dataset.pin = String(st.names[i]); });
        grid.replaceChildren(...cards);
        const button = (text, page, disabled) => el("button", {
            className: "btn btn-sm btn-outline-secondary py-0 ms-1", textContent: text, disabled,
            onclick: () => { st.page = page; renderGallery(null); }});
        info.replaceChildren(el("b", {textContent: picked.length + " selected"}), " (" + st.source + ") · ",
                             "page " + (st.page + 1) + " of " + pages,
                             button("‹", st.page - 1, st.page === 0), button("›", st.page + 1, st.page >= pages - 1),
                             el("button", {className: "btn btn-sm btn-outline-danger py-0 ms-2", textContent: "Clear",
                                           id: st.cfg.gallery_clear, onclick: () => select([], "clear")}));
        box.style.display = "block";
    }

    /* Clicks on cluster badges and cards (data-cluster) select the cluster; on a thumbnail or a
     * neighbour (data-pin), pin that material; on a pinned material's close button (data-unpin),
     * unpin it. */
    function onPageClick(e) {
        if (!st.cfg) { return; }
        const unpin = e.target.closest && e.target.closest("[data-unpin]");
        if (unpin) {
            window.dash_clientside.set_props(st.cfg.click, {data: {name: unpin.dataset.unpin, unpin: true,
                                                                   t: Date.now()}});
            return;
        }
        const thumb = e.target.closest && e.target.closest("[data-pin]");
        if (thumb) {
            window.dash_clientside.set_props(st.cfg.click, {data: {name: thumb.dataset.pin, t: Date.now()}});
            return;
        }
        const byLabel = e.target.closest && e.target.closest("[data-label]");
        if (byLabel) {
            const value = byLabel.dataset.label, tr = pointsTrace(plotDiv());
            const texts = tr && tr.meta && tr.meta.point_labels;
            if (!texts) { return; }
            const out = [];
            for (let i = 0; i < tr.x.length; i++) { if (texts[i] === value && visible(tr, i)) { out.push(i); } }
            st.selectedAt = e.timeStamp;
            select(out, tr.meta.label + " " + (value || "(no label)"));
            return;
        }
        const badge = e.target.closest && e.target.closest("[data-cluster]");
        if (!badge) { return; }
        const k = Number(badge.dataset.cluster), tr = pointsTrace(plotDiv());
        if (!tr || !tr.customdata) { return; }
        const out = [];
        for (let i = 0; i < tr.x.length; i++) { if (tr.customdata[i] - 1 === k && visible(tr, i)) { out.push(i); } }
        st.selectedAt = e.timeStamp;
        select(out, k < 0 ? "noise" : "cluster " + k);
    }

    function hook(gd) {
        if (gd && gd.on && !gd._bsHooked) {
            gd._bsHooked = true;
            // a style-only react (new colours) emits no afterplot
            gd.on("plotly_afterplot", onAfterPlot);
            gd.on("plotly_react", onAfterPlot);
        }
    }

    /* A new figure from the server (a model switch, a patch) keeps the selection on the same
     * materials: re-grey when the plot's colours are no longer the greyed ones. */
    function onAfterPlot() {
        const gd = plotDiv(), tr = pointsTrace(gd);
        if (!tr || !st.sel) { return; }
        const c = decode(tr.marker.color);
        if (c === st.greyed) { return; }
        if (textKey(tr) !== st.textKey) {
            select([], "clear");  // other materials: the selection does not carry over
            return;
        }
        st.base = c;
        paint(gd, st.cfg.points, colourCodes(c));
    }

    /* The map as a figure for a paper: the figure on screen (the points in their own colours,
     * a selection's grey left out) with axis titles, a legend (the page's, as legend-only
     * traces in the same colours) and a caption naming the model and the clustering. */
    function publicationFigure(gd) {
        const lg = st.legend || {entries: [], caption: [], title: ""};
        const data = gd.data.map(t => Object.assign({}, t, {showlegend: false}));
        const pts = data[st.cfg.points];
        if (st.sel && st.base) { pts.marker = Object.assign({}, pts.marker, {color: st.base}); }
        for (const e of lg.entries) {
            data.push({type: "scatter", mode: "markers", x: [null], y: [null], showlegend: true, hoverinfo: "skip",
                       name: e.text + " (" + e.count + ")", marker: {color: st.cfg.colours[e.code], size: 9}});
        }
        const axis = (a, title) => Object.assign({}, a, {
            visible: true, title: {text: title}, showticklabels: false, ticks: "", showgrid: false,
            zeroline: false, showline: true, linecolor: "#444", mirror: true});
        const more = lg.more ? " (+" + lg.more + " more)" : "";
        const layout = Object.assign({}, gd.layout, {
            title: {text: (lg.caption || []).join("<br>"), font: {size: 12}, x: 0.01, xanchor: "left"},
            showlegend: true, legend: {title: {text: lg.title + more}, font: {size: 10}},
            xaxis: axis(gd.layout.xaxis, "UMAP 1"), yaxis: axis(gd.layout.yaxis, "UMAP 2"),
            margin: {l: 40, r: 10, t: 60, b: 40}, dragmode: false});
        return {data, layout};
    }

    const fns = {
        /* A download button: the map as a figure for a paper, in its format (PNG or SVG), named
         * after the model and the clustering. */
        downloadMap: function () {
            const gd = plotDiv(), ctx = window.dash_clientside.callback_context;
            if (!gd || !ctx.triggered_id) { return nu(); }
            const format = ctx.triggered_id === ctx.inputs_list[1].id ? "svg" : "png";
            const fig = publicationFigure(gd);
            const name = (st.legend && st.legend.filename) || "bandscape_map";
            window.Plotly.downloadImage(fig, {format, filename: name, width: 1100, height: 800,
                                              scale: format === "png" ? 2 : 1});
            return nu();
        },

        /* The server's new per-point style for the map on screen (a recluster, a filter). */
        restyle: function (style, cfg) {
            const gd = plotDiv();
            if (!style || !gd || !gd._fullData || !gd._fullData[cfg.points]) { return nu(); }
            const drawn = applyStyle(gd, cfg.points, style, cfg);  // a WebGL map's restyle: a promise
            st.rev += 1;  // the hover's index drops hidden points
            st.shown = -1;
            Promise.resolve(drawn).then(rehoverSoon);
            return nu();
        },

        /* VIEW (model, window) changed: hover from now on for this view. */
        hoverView: function (view, cfg) {
            st.cfg = cfg;
            st.view = view;
            st.shown = -1;
            st.cell = null;
            install();
            hook(plotDiv());
            prefetchAll();
            return nu();
        },

        /* The materials' names (one string, a line each), once per set of materials. */
        names: function (data) {
            if (data && typeof data.names === "string") {
                st.names = data.names.split("\n");
                window.bandscapeNames = st.names;  // what the page's tests read
                st.rev += 1;
                st.shown = -1;
                if (st.cfg) { prefetchAll(); }
            }
            return nu();
        },

        /* The legend of the colouring on the map (components/map_colouring.py's legend): one
         * badge per category in the colour its points are drawn in (the same colour code,
         * looked up in the one colour scale), named, with its count; a click on a cluster's or
         * a label value's badge selects its materials. */
        legend: function (data, cfg) {
            const box = document.getElementById(cfg.sizes_box);
            if (!box || !data) { return nu(); }
            st.legend = data;
            const badges = data.entries.map(e => {
                const b = document.createElement("span");
                b.className = "badge me-1 explore-legend-entry";
                const colour = cfg.colours[e.code];
                b.style.backgroundColor = colour;
                b.style.color = e.code === 0 ? "white" : "black";
                b.dataset.colour = colour;
                b.dataset.name = e.text;
                b.textContent = e.text + ": " + e.count;
                if (e.cluster !== undefined) {
                    b.dataset.cluster = String(e.cluster);
                    b.title = (e.cluster < 0 ? "noise" : "cluster " + e.cluster) + ": click to see its materials";
                } else if (e.label !== undefined) {
                    b.dataset.label = e.label;
                    b.title = data.title + " = " + e.text + ": click to see its materials";
                }
                if (b.title) { b.style.cursor = "pointer"; }
                return b;
            });
            if (data.more) {
                badges.push(Object.assign(document.createElement("span"),
                                          {className: "text-muted", textContent: "+" + data.more + " more"}));
            }
            const title = Object.assign(document.createElement("span"),
                                        {className: "me-1 explore-legend-title", textContent: data.title + ":"});
            box.replaceChildren(title, ...badges);
            rehoverSoon();  // the map below may have moved
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

        /* The map's tool: pan (Plotly's drag), box or lasso (drawn here, on the point index). */
        tool: function (value) {
            st.tool = value || "pan";
            return nu();
        },

        /* Select materials by name (a representative subset, a shared URL), once the map is
         * drawn; unknown names are left out. */
        selectNames: function (names, cfg, source) {
            st.cfg = st.cfg || cfg;
            install();
            if (!names || !names.length) { return nu(); }
            return new Promise(resolve => {
                const t0 = performance.now();
                const wait = () => {
                    const tr = pointsTrace(plotDiv());
                    if (tr && st.names.length === tr.x.length && st.view) {
                        const pos = new Map(st.names.map((t, i) => [String(t), i]));
                        select(names.map(n => pos.get(String(n))).filter(i => i !== undefined), source || "list");
                        resolve(nu());
                    } else if (performance.now() - t0 > 20000) {
                        resolve(nu());
                    } else {
                        setTimeout(wait, 50);
                    }
                };
                wait();
            });
        },

        /* The selection by names: a representative subset when one was just chosen, else the
         * URL's (at load). */
        selectFromInputs: function (fromUrl, subset, cfg) {
            const ctx = window.dash_clientside.callback_context;
            const subsetChosen = ctx.triggered_id === ctx.inputs_list[1].id;
            return fns.selectNames(subsetChosen ? subset : fromUrl, cfg,
                                   subsetChosen ? "representative subset" : "from the URL");
        },

        /* A new time stamp when the first input holds something (a non-empty list, an open
         * panel), else nothing: it wakes a server callback only when there is something to show. */
        stampWhen: function (first) {
            const some = Array.isArray(first) ? first.length > 0 : Boolean(first);
            return some ? Date.now() : nu();
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
            if (ctx.triggered_id === ids[0]) {  // the Help button: the tour from its first step
                document.querySelectorAll(".explore-tour-step").forEach((el, i) => { el.style.display = i ? "none" : ""; });
                return [true, true];
            }
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
                if (spec[1] === "list") {
                    if (!v.length || (spec[2] && v.length > spec[2])) { return; }
                    v = v.join(",");
                }
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

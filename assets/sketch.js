/* Search by sketch (the explorer's "Your materials" card): draw band lines on a canvas, E
 * against k with E_F across the middle, and the page asks for the nearest materials. The canvas
 * is the training image's square: lines black on white, the model's window from bottom to top;
 * the E_F line is a guide under the (transparent) canvas and is not part of the sketch. */
(function () {
    const LINE_PX = 1.4;  // a training image's 1 pt line at 100 dpi, in the canvas's 224 px

    function start(canvas) {
        if (canvas.dataset.bsSketch) { return; }
        canvas.dataset.bsSketch = "1";
        const ctx = canvas.getContext("2d");
        clear(canvas);
        let last = null;
        const at = (e) => {
            const r = canvas.getBoundingClientRect();
            return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
        };
        canvas.addEventListener("pointerdown", (e) => {
            canvas.setPointerCapture(e.pointerId);
            last = at(e);
            canvas.dataset.bsDrawn = "1";
        });
        canvas.addEventListener("pointermove", (e) => {
            if (!last) { return; }
            const p = at(e);
            ctx.strokeStyle = "black";
            ctx.lineWidth = LINE_PX * canvas.width / 224;
            ctx.lineCap = "round";
            ctx.beginPath();
            ctx.moveTo(last[0], last[1]);
            ctx.lineTo(p[0], p[1]);
            ctx.stroke();
            last = p;
        });
        const stop = () => { last = null; };
        canvas.addEventListener("pointerup", stop);
        canvas.addEventListener("pointercancel", stop);
    }

    function clear(canvas) {
        canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
        delete canvas.dataset.bsDrawn;
    }

    /* The strokes on white (the canvas is transparent over its E_F guide). */
    function png(canvas) {
        const out = document.createElement("canvas");
        out.width = canvas.width;
        out.height = canvas.height;
        const ctx = out.getContext("2d");
        ctx.fillStyle = "white";
        ctx.fillRect(0, 0, out.width, out.height);
        ctx.drawImage(canvas, 0, 0);
        return out.toDataURL("image/png");
    }

    function nu() { return window.dash_clientside.no_update; }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        sketch: {
            /* The sketch as a PNG data URL when Find is clicked (null: nothing drawn); Clear
             * wipes it. Installs the drawing on first use. */
            find: function (findClicks, clearClicks, canvasId) {
                const canvas = document.getElementById(canvasId);
                if (!canvas) { return nu(); }
                start(canvas);
                const ctx = window.dash_clientside.callback_context;
                const trig = ctx.triggered_id;
                if (trig && String(trig).indexOf("clear") >= 0) { clear(canvas); return null; }
                if (!findClicks) { return nu(); }
                return canvas.dataset.bsDrawn ? png(canvas) : {empty: true};
            },
            /* Draw on the canvas from the start (the card is open). */
            install: function (_, canvasId) {
                const canvas = document.getElementById(canvasId);
                if (canvas) { start(canvas); }
                return nu();
            },
        },
    });
})();

/* The explorer's "Your materials" card, browser side: a file over the upload limit never reaches
 * the server (the upload component drops it silently), so the card says which file it was and
 * what the limit is. The limit is the card's data-max-bytes (components/place_panel.py). */
(function () {
    function tooBig(files, box) {
        const limit = Number(box.dataset.maxBytes || 0);
        if (!limit || !files) { return; }
        const big = Array.from(files).filter(f => f.size > limit);
        if (!big.length || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
        const mb = (n) => (n / 1048576).toFixed(0) + " MB";
        const text = big.map(f => f.name + ": " + mb(f.size) + " is over the upload limit of " + mb(limit) +
                                  " (not placed; for larger runs use `python -m backend place` or `import`)").join("\n");
        window.dash_clientside.set_props(box.dataset.status, {children: text});
    }

    function boxOf(target) {
        const upload = target && target.closest && target.closest("#explore-place-upload");
        return upload ? upload.querySelector("[data-max-bytes]") : null;
    }

    document.addEventListener("drop", (e) => {
        const box = boxOf(e.target);
        if (box && e.dataTransfer) { tooBig(e.dataTransfer.files, box); }
    }, true);
    document.addEventListener("change", (e) => {
        const box = boxOf(e.target);
        if (box && e.target.files) { tooBig(e.target.files, box); }
    }, true);
})();

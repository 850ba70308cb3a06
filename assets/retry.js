// A request that dies with its web worker (a worker killed or restarted mid-request: the
// connection drops, or a proxy answers 502/503/504) is sent again, and another worker answers:
// callbacks up to twice (they are pure or, like starting a search, idempotent), and a band image
// that failed to load once.
(function () {
    if (window.bandscapeRetry) { return; }
    window.bandscapeRetry = true;
    const plainFetch = window.fetch.bind(window);
    const RETRIES = 2, RETRY_STATUS = [502, 503, 504];
    window.fetch = function (resource, init) {
        const url = typeof resource === "string" ? resource : (resource && resource.url) || "";
        if (url.indexOf("_dash-update-component") < 0) { return plainFetch(resource, init); }
        const attempt = (left) => plainFetch(resource, init).then((response) => {
            if (left > 0 && RETRY_STATUS.indexOf(response.status) >= 0) {
                return new Promise((ok) => setTimeout(ok, 300)).then(() => attempt(left - 1));
            }
            return response;
        }, (error) => {
            if (left > 0 && error && error.name !== "AbortError") {
                return new Promise((ok) => setTimeout(ok, 300)).then(() => attempt(left - 1));
            }
            throw error;
        });
        return attempt(RETRIES);
    };
})();

(function () {
    // images fail silently: try a failed band image once more (capture: error events do not bubble)
    document.addEventListener("error", function (event) {
        const img = event.target;
        if (!img || img.tagName !== "IMG" || !img.src || img.src.indexOf("/material-image/") < 0) { return; }
        if (img.dataset.bandscapeRetried === img.src) { return; }
        const src = img.src;
        img.dataset.bandscapeRetried = src;
        setTimeout(function () { if (img.src === src) { img.src = ""; img.src = src; } }, 300);
    }, true);
})();

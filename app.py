"""bandscape web app.

``python app.py [--data DIR] [--host H] [--port P]`` serves it from one process (Flask's server,
a thread per request) at http://127.0.0.1:8050: the one-command local start. In production,
several worker processes (gunicorn, Dash's convention; settings in ``gunicorn.conf.py``)::

    BANDSCAPE_DATA=DIR gunicorn "app:create_server()" -w 4 --threads 4

Either way with no data root (``--data``, ``create_server(data=...)`` or ``BANDSCAPE_DATA``) it
opens the project's own demo dataset. Each process builds the Dash app (multi-page: explore,
evaluate, train), its caches, the file routes and a job runner; background work runs as jobs in
their own processes, never in a web process.
"""

from __future__ import annotations

import os

# A web process uses one core per request: native thread pools (OpenMP, BLAS) stay at one thread,
# set before NumPy loads them. Job processes get the environment back (backend.jobs.local).
_WEB_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
for _var in _WEB_THREAD_VARS:
    if _var not in os.environ:
        os.environ[_var] = "1"
        os.environ["BANDSCAPE_JOB_UNSET"] = " ".join(filter(None, [os.environ.get("BANDSCAPE_JOB_UNSET"), _var]))

import argparse  # noqa: E402
import functools  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

import dash  # noqa: E402
import dash_bootstrap_components as dbc  # noqa: E402
import flask  # noqa: E402
from dash import dcc, html  # noqa: E402

import app_state  # noqa: E402
from backend import cache as backend_cache  # noqa: E402
from backend.errors import BandscapeError  # noqa: E402
from components.material_image import MATERIAL_IMAGE_ROUTE  # noqa: E402

HERE = Path(__file__).resolve().parent
log = logging.getLogger("bandscape")
def create_app(data_root: str | os.PathLike | None = None) -> dash.Dash:
    """Build the app for a data root (raises BandscapeError when the root has no models)."""
    root = Path(data_root) if data_root else app_state.default_data_root()
    app_state.init(root)
    catalog = app_state.get_catalog()
    _require_models(catalog)
    app = _dash_app()
    configure_caches(app.server)
    register_routes(app.server)
    _start_background_work(catalog)
    app.layout = _shell(catalog)
    # Dash sets itself up on its first request (component paths, pages), and a threaded server
    # may answer a second request before that first one has finished: "... is not a registered
    # library". So the first request is made here, before any browser's.
    with app.server.test_client() as client:
        client.get("/")
    return app


def _require_models(catalog) -> None:
    """Raise BandscapeError, with what to do, when the data root has no models."""
    if len(catalog) > 0:
        return
    hint = ("the demo dataset has not been built yet: run `python -m backend demo`, or"
            if catalog.root == HERE else "")
    raise BandscapeError(
        f"no models found under {catalog.root} (looked for embeddings/*_embedding.csv and "
        f"fingerprints/*_embedding.csv); {hint} pass a data root: "
        f"`python app.py --data ../shared/data/heuslerene` (or set BANDSCAPE_DATA)"
    )


def _dash_app() -> dash.Dash:
    """The multi-page Dash app, serving everything itself, with its page index."""
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        # everything is served by the app itself (offline HPC nodes): bootstrap.css is in assets/
        serve_locally=True,
        title="bandscape",
        suppress_callback_exceptions=True,
        update_title=None,
        assets_ignore=r"(images|bands)/.*|^regenerator-runtime\.js$",  # (matched against file names)
    )
    app.interpolate_index = _page_index(app)
    return app


def _start_background_work(catalog) -> None:
    """The job runner, and (unless ``BANDSCAPE_PREWARM=0``) the first page's warm-up in this
    process and the prewarm jobs."""
    runner = start_job_runner(catalog.root)
    app_state.set_job_runner(runner)
    if os.environ.get("BANDSCAPE_PREWARM", "1") != "0":
        threading.Thread(target=warm_up, args=(catalog,), name="bandscape-warm-up", daemon=True).start()
        if runner.kind == "local":
            submit_prewarm(runner, catalog)


def _shell(catalog):
    """The app's layout: the navigation bar, the data-root banner and the page."""
    nav = dbc.NavbarSimple(
        brand="bandscape",
        brand_href="/",
        color="dark",
        dark=True,
        fluid=True,
        children=[dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
                  for page in dash.page_registry.values()],
        className="mb-2",
    )

    def shell():
        # a function, so that each page load counts the models as they are now (new ones appear)
        return html.Div([
            nav,
            html.Div(f"data: {catalog.root} · {len(catalog)} models", id="data-root-banner",
                     className="text-muted small px-3"),
            opened_page_container(),
        ])

    return shell


#: Dash's ids of its page container (``dash.page_container``): its router callback fills the
#: content when the location changes, and the title from the store.
_PAGES_LOCATION, _PAGES_CONTENT, _PAGES_STORE, _PAGES_DUMMY = ("_pages_location", "_pages_content", "_pages_store",
                                                               "_pages_dummy")


def opened_page_container():
    """Dash's page container with the page being opened already in it, so that the page arrives
    with the layout: Dash's own container is empty until its location reports the address on the
    page and a callback answers with the page (one more round trip and render before the first
    view). The page is the one the browser's layout request comes from (its Referer: the app sets
    ``Referrer-Policy: same-origin``, so it is the whole address); the location is given that
    address, so it reports no change and the router does not render the page again. Without a
    Referer, or on an address that is no page, Dash's empty container (the router fills it)."""
    opened = _opened_page(flask.request.referrer)
    if opened is None:
        return dash.page_container
    page, url, query = opened
    layout = page["layout"](**query) if callable(page["layout"]) else page["layout"]
    title = page["title"]() if callable(page["title"]) else page["title"]
    return html.Div([
        dcc.Location(id=_PAGES_LOCATION, refresh="callback-nav", pathname=url.path,
                     search=f"?{url.query}" if url.query else "", hash="", href=url.geturl()),
        html.Div(layout, id=_PAGES_CONTENT, disable_n_clicks=True),
        dcc.Store(id=_PAGES_STORE, data={"title": title}),
        html.Div(id=_PAGES_DUMMY, disable_n_clicks=True),
    ])


def _opened_page(referrer: str | None):
    """(page, address, query) of the page the address ``referrer`` opens, or None (no address,
    another site, no page of the registry, or a page with path variables)."""
    if not referrer:
        return None
    url = urlsplit(referrer)
    if url.netloc != flask.request.host:
        return None
    path = dash.strip_relative_path(url.path) or ""
    page = next((p for p in dash.page_registry.values() if not p.get("path_template")
                 and p["path"].strip("/") == path), None)
    if page is None:
        return None
    # as Dash's router reads a query: one value per name, a list for a repeated one
    query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    return page, url, query


#: Dash's first script, @babel/polyfill (core-js 2 and regenerator-runtime, 100 KB), takes
#: 60-140 ms of a page load here to evaluate; every browser bandscape supports has what core-js
#: adds, and of the polyfill the renderer and the component bundles use only the global
#: ``regeneratorRuntime`` (their async functions are compiled to it). So the page loads
#: regenerator-runtime alone (0.13.11, the polyfill's own, MIT; assets/vendor) in its place.
_POLYFILL_TAG = re.compile(r'<script src="[^"]*/deps/polyfill@[^"]*"></script>')


#: dcc's lazily loaded parts that the explorer's first view needs (its graph and its element
#: dropdown): the page asks for them only once the page's layout has arrived and rendered; asked
#: for at once (preload), they are in the browser's cache by then.
_FIRST_VIEW_CHUNKS = ("async-graph.js", "async-dropdown.js")


def _page_index(app: dash.Dash):
    """``app.interpolate_index`` with regenerator-runtime in the polyfill's place and the first
    view's dcc chunks preloaded."""
    interpolate = app.interpolate_index

    def index(**kwargs):
        tag = f'<script src="{app.get_asset_url("vendor/regenerator-runtime.js")}"></script>'
        kwargs["scripts"] = _POLYFILL_TAG.sub(lambda _: tag, kwargs["scripts"], count=1)
        prefix = app.config.requests_pathname_prefix
        kwargs["metas"] += "".join(f'<link rel="preload" as="script" href="{prefix}_dash-component-suites/dash/dcc/{c}">'
                                   for c in _FIRST_VIEW_CHUNKS)
        return interpolate(**kwargs)

    return index


#: after start, the default clustering of every model of up to this many materials is computed
#: in each web process (216 published models: ~2.5 s of one core), so that a model switch only
#: draws; for up to this many seconds (it waits for the prewarm job's distance matrices)
WARM_ALL_MAX, WARM_ALL_SECONDS = 2_000, 900


def warm_up(catalog) -> None:
    """What the first page needs, in this process's memory while it already listens: the default
    model's data and the clustering the root opens with, and the element list (imports pymatgen);
    then the same clustering of the other models (small roots)."""
    from backend.cluster.models import cluster_model, warm_clusterings
    from backend.cluster.params import default_model
    from backend.data.elements import elements_present
    from backend.discover.explorer_view import opening_view

    try:
        model_id = default_model(catalog)
        names = catalog.load(model_id).names
        elements_present(names)
        params = opening_view(catalog)[0].params()  # the cell the root opens with
        cluster_model(catalog, model_id, params)
    except Exception:  # the page reports whatever is wrong with the data when it is opened
        return
    if len(names) > WARM_ALL_MAX:  # a large root: its other models are not read at start (each a full load)
        return
    others, t0 = [m for m in catalog.models if m != model_id], time.monotonic()
    done = warm_clusterings(catalog, others, params, max_materials=WARM_ALL_MAX,
                            until=t0 + WARM_ALL_SECONDS)
    if done:
        log.info("default clustering of %d more models in memory (%.1f s)", done, time.monotonic() - t0)


def create_server(data: str | os.PathLike | None = None):
    """The Flask server of the app, for a WSGI server: ``gunicorn "app:create_server()"`` (the data
    root from ``BANDSCAPE_DATA``) or ``"app:create_server(data='DIR')"``. Each worker process calls
    it; the workers share the disk caches, the shared small-result cache (with ``REDIS_URL``) and
    the job records, and one of them runs the local jobs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    app_state.set_shared_server()
    app = create_app(data)
    log.info("bandscape worker %d: data %s; jobs: %s; shared cache: %s", os.getpid(), app_state.get_catalog().root,
             app_state.get_job_runner().kind, "redis" if backend_cache.small_store() is not backend_cache.array_store()
             else f"per process ({backend_cache.array_store().max_bytes / 2 ** 20:.0f} MiB)")
    return app.server


def configure_caches(server) -> None:
    """Small results go through flask-caching's RedisCache when ``REDIS_URL`` is set (every worker
    shares them), else stay per process. Redis unreachable: said now, per-process caches meanwhile."""
    url = os.environ.get("REDIS_URL")
    if not url:
        backend_cache.configure(None)
        return
    from flask_caching import Cache

    from backend.jobs import redact

    cache = Cache(server, config={
        "CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, "CACHE_KEY_PREFIX": "bandscape:cache:",
        "CACHE_DEFAULT_TIMEOUT": 24 * 3600,
        "CACHE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 2.0},
    })
    shared = backend_cache.SharedStore(cache.cache, backend_cache.array_store(), name=f"Redis at {redact(url)}")
    try:
        cache.cache._write_client.ping()
    except Exception as exc:
        message = (f"bandscape: warning: REDIS_URL is set but Redis at {redact(url)} does not answer ({exc}); "
                   "caching per process until it does")
        print(message, file=sys.stderr, flush=True)
        shared._failed(exc)
    backend_cache.configure(shared)


def start_job_runner(root: Path):
    """The job runner of the data root: Celery workers when ``REDIS_URL`` is set, else a local
    runner whose jobs run in their own processes (one web worker holds each lane). Never in this
    process: the web server must not import torch or initialise CUDA."""
    from backend.jobs import make_runner

    runner = make_runner(root)
    return runner.start()


def submit_prewarm(runner, catalog) -> None:
    """The distance matrices of the default metric that are not cached yet, as a background job
    (lowest CPU priority), so that switching models does not wait for them."""
    from backend.cluster.params import ClusterParams
    from backend.jobs.distances_job import submit_prewarm as submit

    d = ClusterParams()
    try:
        rec = submit(runner, catalog, metric=d.metric, p=d.p)
    except BandscapeError as exc:  # e.g. a jobs folder that cannot be written: the pages still work
        log.warning("distance matrices not prewarmed: %s", exc)
        return
    if rec is not None:
        log.info("distance matrices of %d models queued (job %s)", len(rec.get("models", [])), rec["job_id"])
    submit_default_graph(runner, catalog)


def submit_default_graph(runner, catalog) -> None:
    """The default model's neighbour graph, when it takes the graph path and is not built yet
    (the explorer opens it first)."""
    from backend.cluster.models import graph_cached
    from backend.cluster.params import ClusterParams, default_model, uses_graph
    from backend.jobs.graph_job import submit_graph

    d = ClusterParams()
    try:
        model_id = default_model(catalog)
        if uses_graph(len(catalog.load(model_id).names)) and not graph_cached(catalog, model_id, metric=d.metric, p=d.p):
            rec = submit_graph(runner, catalog, model_id, metric=d.metric, p=d.p, min_samples=d.min_samples)
            log.info("neighbour graph of %s queued (job %s)", model_id, rec["job_id"])
    except BandscapeError as exc:
        log.warning("neighbour graph not queued: %s", exc)


def register_routes(server) -> None:
    """File routes: images and files of the data root, never anything outside it."""
    from flask import abort, send_file

    @server.after_request
    def _worker_header(response):
        # which worker process answered (load tests, and a reload landing on another worker)
        response.headers["X-Bandscape-Worker"] = str(os.getpid())
        # the whole address within the app (the layout request says which page it is for), none
        # to other sites
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @server.route("/data-file/<path:rel>")
    def data_file(rel: str):
        path = app_state.get_catalog().resolve_file(rel)
        if path is None:
            abort(404)
        return send_file(path, max_age=3600)

    # a material's band-structure image (a display plot, or one drawn from its band data)
    @server.route(MATERIAL_IMAGE_ROUTE)
    def material_image(window: str, material: str):
        from flask import request

        from backend.data.catalog import PENDING

        # the page prefetches the images around the cursor: those are drawn in the background
        prefetch = request.headers.get("X-Bandscape-Prefetch") == "1"
        try:
            found = app_state.get_catalog().display_image(material, float(window), wait=not prefetch)
        except ValueError:
            abort(404)
        if found is PENDING:
            return server.response_class(b"", status=202, headers={"Cache-Control": "no-store"})
        if found is None:
            # a picture that says so, rather than a broken image in the hover panel
            return server.response_class(_missing_image_png(), mimetype="image/png",
                                         headers={"X-Bandscape-Missing": "1", "Cache-Control": "no-cache"})
        if isinstance(found, bytes):
            return server.response_class(found, mimetype="image/png",
                                         headers={"Cache-Control": "public, max-age=3600"})
        return send_file(found, mimetype="image/png", max_age=3600)


    @server.route("/explore-point/<int:index>")
    def explore_point(index: int):
        """The cluster of material ``index`` in the view of the query string (the explorer's
        address): the hover text of a map too large to carry every cluster label."""
        from flask import jsonify, request

        from backend.discover.explorer_view import point_info

        try:
            return jsonify(point_info(app_state.get_catalog(), request.args.to_dict(), index))
        except (BandscapeError, IndexError):
            abort(404)


@functools.lru_cache(maxsize=1)
def _missing_image_png() -> bytes:
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 120), "white")
    ImageDraw.Draw(img).text((20, 50), "no band-structure image for this material", fill=(110, 110, 110))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bandscape: explore clusters of band structures")
    parser.add_argument("--data", default=os.environ.get("BANDSCAPE_DATA"),
                        help="data root (default: $BANDSCAPE_DATA, else the project's demo dataset)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    try:
        app = create_app(args.data)
    except BandscapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # a plain `kill` stops the server through the normal exit path, so the job runner can put a
    # running job back in the queue (it resumes at the next start)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    runner = app_state.get_job_runner()
    if args.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        runner.stop()  # the debug reloader's watcher process serves nothing; its child runs the jobs
    print(f"bandscape on http://{args.host}:{args.port}  (data: {app_state.get_catalog().root}; "
          f"training jobs: {runner.kind})", flush=True)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())

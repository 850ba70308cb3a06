"""bandscape web app: ``python app.py [--data DIR] [--host H] [--port P]``.

Creates the Dash app (multi-page: explore, evaluate, train), the cache, the file routes and the
training-job runner, and serves it at http://127.0.0.1:8050 by default. With no ``--data`` (and
no ``BANDSCAPE_DATA``) it opens the project's own demo dataset.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import threading
import time
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import html
from flask import request
from flask_caching import Cache

import app_state
from backend import cache as backend_cache
from backend.clustering import PAPER_MODEL
from backend.errors import BandscapeError

HERE = Path(__file__).resolve().parent


def create_app(data_root: str | os.PathLike | None = None) -> dash.Dash:
    """Build the app for a data root (raises BandscapeError when the root has no models)."""
    root = Path(data_root) if data_root else app_state.default_data_root()
    app_state.init(root)
    catalog = app_state.get_catalog()
    if len(catalog) == 0:
        hint = ("the demo dataset has not been built yet: run `python -m backend demo`, or"
                if catalog.root == HERE else "")
        raise BandscapeError(
            f"no models found under {catalog.root} (looked for embeddings/*_embedding.csv and "
            f"fingerprints/*_embedding.csv); {hint} pass a data root: "
            f"`python app.py --data ../shared/data/heuslerene` (or set BANDSCAPE_DATA)"
        )

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
        assets_ignore=r"(images|bands)/.*",
    )
    cache = Cache(app.server, config={
        "CACHE_TYPE": os.environ.get("BANDSCAPE_CACHE_TYPE", "SimpleCache"),
        "CACHE_THRESHOLD": int(os.environ.get("BANDSCAPE_CACHE_THRESHOLD", "2000")),
        "CACHE_DEFAULT_TIMEOUT": 0,
    })
    backend_cache.configure(cache)

    register_routes(app.server)
    app_state.set_job_runner(start_job_runner(catalog.root))
    if os.environ.get("BANDSCAPE_PREWARM", "1") != "0":
        start_prewarm(catalog, app.server)

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
            dash.page_container,
        ])

    app.layout = shell
    return app


def start_job_runner(root: Path):
    """The training-job runner of the data root: Celery workers when ``REDIS_URL`` is set, else a
    local queue whose jobs run one at a time in their own (spawned) processes. Never in this
    process: the web server must not import torch or initialise CUDA."""
    from backend.jobs import make_runner

    runner = make_runner(root)
    return runner.start()


def warm_up(catalog) -> None:
    """What the first page needs, computed while the server is already listening: the default
    model's data, distances and clustering, and the element list (imports pymatgen)."""
    from backend.clustering import ClusterParams, cluster_model, default_model
    from backend.elements import elements_present

    try:
        model_id = default_model(catalog)
        elements_present(catalog.load(model_id).names)
        cluster_model(catalog, model_id, ClusterParams())
    except Exception:  # the page reports whatever is wrong with the data when it is opened
        pass


def start_prewarm(catalog, server=None, settle_s: float = 2.0, wait_s: float = 15.0) -> threading.Thread:
    """Cache the paper-metric distance matrices of all models in the background (the default
    model and its window first), so that switching models does not wait for them. It starts
    ``settle_s`` after the first page has been served (or after ``wait_s`` if no one comes), so
    that it does not compete with the first render, and runs at the lowest CPU priority."""
    from backend.clustering import ClusterParams, prewarm_distances

    first_page = threading.Event()
    if server is not None:
        @server.after_request
        def _note_first_page(response):
            if not first_page.is_set() and request.path == "/_dash-update-component":
                first_page.set()
            return response
    else:
        first_page.set()

    d = ClusterParams()
    models = list(catalog.models.values())
    first = catalog.get(PAPER_MODEL) if PAPER_MODEL in catalog else (models[0] if models else None)
    order = sorted(models, key=lambda m: (first is None or m.window != first.window, m.arch != getattr(first, "arch", None),
                                          m.model_id))

    def run():
        warm_up(catalog)
        if first_page.wait(timeout=wait_s):
            time.sleep(settle_s)
        # the lowest CPU priority for this thread alone (Linux: a thread id is a process id to
        # setpriority), so that page requests are served first while the matrices are computed
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        t0 = time.perf_counter()
        n = prewarm_distances(catalog, [m.model_id for m in order], d.metric, d.p)
        print(f"bandscape: distance matrices of {n} models cached in {time.perf_counter() - t0:.1f} s", flush=True)

    thread = threading.Thread(target=run, name="bandscape-prewarm", daemon=True)
    thread.start()
    return thread


def register_routes(server) -> None:
    """File routes: images and files of the data root, never anything outside it."""
    from flask import abort, send_file

    @server.route("/data-file/<path:rel>")
    def data_file(rel: str):
        path = app_state.get_catalog().resolve_file(rel)
        if path is None:
            abort(404)
        return send_file(path, max_age=3600)

    @server.route("/material-image/<window>/<material>.png")
    def material_image(window: str, material: str):
        try:
            found = app_state.get_catalog().display_image(material, float(window))
        except ValueError:
            abort(404)
        if found is None:
            # a picture that says so, rather than a broken image in the hover panel
            return server.response_class(_missing_image_png(), mimetype="image/png",
                                         headers={"X-Bandscape-Missing": "1", "Cache-Control": "no-cache"})
        if isinstance(found, bytes):
            return server.response_class(found, mimetype="image/png",
                                         headers={"Cache-Control": "public, max-age=3600"})
        return send_file(found, mimetype="image/png", max_age=3600)


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

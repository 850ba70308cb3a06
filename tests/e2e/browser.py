"""Helpers for browser tests and benchmarks: start the real app, drive Debian's chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BANDSCAPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(data_root, port: int | None = None, env: dict | None = None, timeout: float = 60.0,
              project: Path | None = None):
    """Start ``python app.py --data ROOT`` on a free loopback port; wait until it answers.
    ``project``: the bandscape checkout whose app to run (default: this one).

    Returns ``(process, url)``; stop it with :func:`stop_app`.
    """
    project = Path(project or PROJECT)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bandscape-app-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, str(project / "app.py"), "--data", str(data_root),
                             "--port", str(port)], cwd=project, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    return _answering(proc, url, log.name, timeout, "app")


def start_server(data_root, workers: int = 4, threads: int = 4, port: int | None = None, env: dict | None = None,
                 timeout: float = 90.0):
    """Start the production command, ``gunicorn "app:create_server()" -w W --threads T``, on the data
    root (``BANDSCAPE_DATA``) at a free loopback port; wait until it answers. Returns
    ``(process, url)`` (the gunicorn master); stop it with :func:`stop_app`."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bandscape-server-{port}.log", "wb")
    cmd = [sys.executable, "-m", "gunicorn", "app:create_server()", "-c", str(PROJECT / "gunicorn.conf.py"),
           "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "BANDSCAPE_DATA": str(data_root), **(env or {})})
    proc.log_path = log.name
    return _answering(proc, url, log.name, timeout, "gunicorn")


def _answering(proc, url: str, log: str, timeout: float, what: str):
    """Wait until ``url`` answers; ``(proc, url)``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; log: {log}")
        try:
            urllib.request.urlopen(url + "/", timeout=5).read()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s; log: {log}")


def worker_pids(master_pid: int) -> list[int]:
    """The worker processes of a gunicorn master (its children)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master_pid:
                    pids.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(pids)


def stop_app(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=40)  # gunicorn: workers finish their requests, a running job is requeued
    except subprocess.TimeoutExpired:
        proc.kill()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def new_page(browser, width: int = 1600, height: int = 1000, **options):
    """A new page whose script errors and console errors are collected in ``page.errors``."""
    page = browser.new_page(viewport={"width": width, "height": height}, **options)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    return page


# A whole-pixel cursor position (the page sees integer client coordinates) at which the point
# (by index or material name) is strictly the nearest of all points: points can lie less than a
# pixel apart, so the point's own position may round to a neighbour's pixel.
POINT_PIXEL_JS = """
([key]) => {
    const gd = document.getElementById("explore-graph").querySelector(".js-plotly-plot");
    const tr = gd._fullData[1], L = gd._fullLayout, r = gd.getBoundingClientRect();
    const names = window.bandscapeNames;
    const i = typeof key === "number" ? key : names.indexOf(key);
    const sx = j => r.left + L.xaxis._offset + L.xaxis.l2p(tr.x[j]);
    const sy = j => r.top + L.yaxis._offset + L.yaxis.l2p(tr.y[j]);
    const x0 = sx(i), y0 = sy(i);
    let best = null;
    for (let dx = -4; dx <= 4; dx++) {
        for (let dy = -4; dy <= 4; dy++) {
            const x = Math.round(x0) + dx, y = Math.round(y0) + dy, own = Math.hypot(x - x0, y - y0);
            let margin = Infinity;
            for (let j = 0; j < tr.x.length; j++) {
                if (j !== i) { margin = Math.min(margin, Math.hypot(x - sx(j), y - sy(j)) - own); }
            }
            if (margin > 0.25 && (!best || own < best.own)) { best = {x, y, own}; }
        }
    }
    return best && {x: best.x, y: best.y, name: String(names[i])};
}
"""
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
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}; log: {log.name}")
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"app did not answer at {url} within {timeout:.0f} s; log: {log.name}")


def stop_app(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


# A whole-pixel cursor position (the page sees integer client coordinates) at which the point
# (by index or material name) is strictly the nearest of all points: points can lie less than a
# pixel apart, so the point's own position may round to a neighbour's pixel.
POINT_PIXEL_JS = """
([key]) => {
    const gd = document.getElementById("explore-graph").querySelector(".js-plotly-plot");
    const tr = gd._fullData[1], L = gd._fullLayout, r = gd.getBoundingClientRect();
    const i = typeof key === "number" ? key : Array.from(tr.text).indexOf(key);
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
    return best && {x: best.x, y: best.y, name: String(tr.text[i])};
}
"""
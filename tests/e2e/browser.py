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


def start_app(data_root, port: int | None = None, env: dict | None = None, timeout: float = 60.0):
    """Start ``python app.py --data ROOT`` on a free loopback port; wait until it answers.

    Returns ``(process, url)``; stop it with :func:`stop_app`.
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"bandscape-app-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, str(PROJECT / "app.py"), "--data", str(data_root),
                             "--port", str(port)], cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT,
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


# Screen position and name of a point of the explorer's scatter: by index, or by material name.
POINT_XY_JS = """
([key]) => {
    const gd = document.getElementById("explore-graph").querySelector(".js-plotly-plot");
    const tr = gd._fullData[1], L = gd._fullLayout, s = L._size;
    const i = typeof key === "number" ? key : tr.text.indexOf(key);
    const r = gd.getBoundingClientRect();
    return {x: r.left + s.l + L.xaxis.l2p(tr.x[i]), y: r.top + s.t + L.yaxis.l2p(tr.y[i]), name: tr.text[i]};
}
"""

"""Progress output fits where it goes: a tqdm bar on a terminal, a few plain lines in a file or
pipe (job logs, CI, `import-plots > log 2>&1`), from a real CLI run on demo plots."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.conftest import PROJECT, demo_display_plots

N_PLOTS = 24


@pytest.fixture(scope="module")
def plots(tmp_path_factory):
    return demo_display_plots(tmp_path_factory.mktemp("plots"), n=N_PLOTS)


def import_plots_cmd(plots, out):
    # the plots' window given, so that stderr holds the progress lines only (no note that it is unknown)
    return [sys.executable, "-m", "backend", "import-plots", "--plots", str(plots), "--out", str(out), "--jobs", "2",
            "--window", "1"]


def test_a_pipe_gets_a_few_summary_lines(plots, tmp_path):
    out = subprocess.run(import_plots_cmd(plots, tmp_path / "train"), cwd=PROJECT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"{N_PLOTS} training images written to {tmp_path / 'train'} "
                                  "(window ±1 eV, recorded in images.json)")
    lines = [line for line in out.stderr.splitlines() if line.startswith("import-plots:")]
    assert "\r" not in out.stderr  # no bar redrawn over itself
    # the start, then each quarter: not one line per image
    assert 2 <= len(lines) <= 5, out.stderr
    assert lines[-1].startswith(f"import-plots: 100% {N_PLOTS}/{N_PLOTS} [") and "image/s" in lines[-1]
    assert len(out.stderr.splitlines()) == len(lines), out.stderr  # nothing else on stderr


def run_on_a_terminal(cmd, timeout: float = 300) -> tuple[int, str]:
    """Run ``cmd`` with stderr on a pseudo-terminal; its return code and what the terminal showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 24 x 120, as a real one has
    proc = subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    shown, deadline = b"", time.time() + timeout
    try:
        while time.time() < deadline:
            if select.select([master], [], [], 1.0)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=max(1.0, deadline - time.time())), shown.decode("utf-8", "replace")
    finally:
        os.close(master)


def test_a_terminal_gets_a_tqdm_bar(plots, tmp_path):
    code, shown = run_on_a_terminal(import_plots_cmd(plots, tmp_path / "train"))
    assert code == 0, shown
    assert "\r" in shown and "import-plots: 100%|" in shown and f"| {N_PLOTS}/{N_PLOTS} [" in shown  # tqdm's bar


def test_lines_come_at_quarters_and_a_stopped_run_says_where():
    from backend.progress import TqdmProgress

    log = io.StringIO()  # a file: no terminal
    with TqdmProgress(desc="train", unit="epoch", file=log) as bar:
        for epoch in range(1, 5):  # stopped (cancelled, failed) after 4 of 10 epochs
            bar(epoch, 10, stage="batch", batch_loss=0.7)  # many reports within an epoch add no line
            bar(epoch, 10, stage="train", train_loss=0.5)
    lines = log.getvalue().splitlines()
    assert [line.split("[")[0] for line in lines] == ["train:  10% 1/10 ", "train:  30% 3/10 ", "train:  40% 4/10 "]
    assert lines[-1].endswith(", stage=train, train_loss=0.5]")

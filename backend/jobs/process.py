"""A local job's process: ``python -m backend.jobs.process ROOT JOB_ID`` (started by
:class:`backend.jobs.local.LocalRunner`; its output goes to the job's log).

A fresh interpreter, not a fork of the web server: the web process never imports torch or
touches CUDA, and a crash or an out-of-memory kill takes only the job down. SIGTERM becomes
:class:`~backend.jobs.execute.Interrupted` (a clean stop); Ctrl-C in a terminal reaches the
whole process group, so SIGINT is ignored here: the runner decides.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

from backend.jobs.execute import Interrupted, execute_job
from backend.jobs.kinds import get_kind
from backend.jobs.store import JobStore, kind_of


def main(argv: list[str] | None = None) -> int:
    root, job_id = (argv if argv is not None else sys.argv[1:])[:2]
    store = JobStore(root)

    def on_term(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nice = get_kind(kind_of(store.load(job_id))).nice
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)  # web requests are served first
    try:
        execute_job(store, job_id)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the outcome is recorded: exit quietly
    return 0


if __name__ == "__main__":
    sys.exit(main())

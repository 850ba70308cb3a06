"""gunicorn settings for bandscape's production command (read from the project folder, or pass
``-c gunicorn.conf.py``)::

    BANDSCAPE_DATA=DIR gunicorn "app:create_server()" -w 4 --threads 4

Command-line flags override these. Workers are processes, each with threads (``gthread``): a
worker answers ``threads`` requests at once, and a killed worker is replaced while the others go
on serving (the browser retries the callbacks it lost, ``assets/retry.js``). Not preloaded: each
worker builds the app itself, and one of them (not the master) runs the local jobs.
"""

import os

bind = os.environ.get("BANDSCAPE_BIND", "127.0.0.1:8050")
workers = int(os.environ.get("BANDSCAPE_WORKERS", "4"))
threads = int(os.environ.get("BANDSCAPE_THREADS", "4"))
worker_class = "gthread"
timeout = 120           # a request that takes longer has hung: the worker is replaced
graceful_timeout = 30   # on stop, a worker's running local job is put back in the queue
keepalive = 5

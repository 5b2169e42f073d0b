"""Gunicorn settings for `make run` and production; override with GUNICORN_CMD_ARGS or flags.

Sync workers, one request at a time each: a device callback is CPU work in Python and one round
trip to the database, and processes share the cores without the contention of threads (measured
with bench/ingest.py: the same throughput as threads, and a fraction of their p99 latency).
``WEB_THREADS`` above 1 makes them threaded workers instead.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('HTTP_PORT', '8000')}"
# One more than the cores: a worker waiting for the database's commit leaves its core to another.
workers = int(os.environ.get("WEB_WORKERS", str((os.cpu_count() or 1) + 1)))
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
# A line per request on stdout with ACCESS_LOG=1 (off by default: devices call all day, and a
# proxy in front usually logs already; errors are logged either way). No query string in it:
# callback tokens may travel as ?authorization=.
accesslog = "-" if os.environ.get("ACCESS_LOG", "0").lower() in ("1", "on", "true") else None
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def post_worker_init(worker):
    """The objects of a loaded app live as long as the worker: out of the collector's sight, a
    full collection no longer walks the whole of Django at every few thousand requests."""
    import gc

    gc.freeze()

"""Gunicorn settings for `make run` and production; override with GUNICORN_CMD_ARGS or flags.

gevent workers, one more than the cores: each reads its clients' requests in an event loop, so a
client that sends its headers or body slowly (a bad network, or an attack) holds a greenlet, not
the worker; a request reaches Django once it is whole (``thinger_http.wsgi`` reads the body
first). Within a worker, requests share a small pool of database connections (``DB_POOL_SIZE``,
set here for the web processes only). Measured with bench/ingest.py: the throughput of sync
workers, which one slow client per worker stalls, and tests/test_make_run.py keeps the server
answering while 256 slow sockets are open. ``WEB_WORKER_CLASS=sync`` (or ``WEB_THREADS`` above 1,
threaded workers) puts the old workers back, behind a buffering proxy only.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('HTTP_PORT', '8000')}"
# One more than the cores: a worker waiting for the database's commit leaves its core to another.
workers = int(os.environ.get("WEB_WORKERS", str((os.cpu_count() or 1) + 1)))
threads = int(os.environ.get("WEB_THREADS", "1"))
worker_class = os.environ.get("WEB_WORKER_CLASS") or ("gthread" if threads > 1 else "gevent")
# Clients a gevent worker holds at once (slow ones included).
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
if worker_class == "gevent":
    # Greenlets would each open a database connection of their own: a pool per worker instead.
    os.environ.setdefault("DB_POOL_SIZE", "4")
timeout = 30
graceful_timeout = 20
keepalive = 5
# A line per request on stdout with ACCESS_LOG=1 (off by default: devices call all day, and a
# proxy in front usually logs already; errors are logged either way). No query string in it:
# callback tokens may travel as ?authorization=.
accesslog = "-" if os.environ.get("ACCESS_LOG", "0").lower() in ("1", "on", "true") else None
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
# The path of a dashboard's shared link holds its token: masked (thinger_http.log).
logger_class = "thinger_http.gunicorn_log.MaskedLogger"


def post_worker_init(worker):
    """The objects of a loaded app live as long as the worker: out of the collector's sight, a
    full collection no longer walks the whole of Django at every few thousand requests."""
    import gc

    gc.freeze()

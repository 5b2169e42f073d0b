"""Gunicorn settings for `make run` and production; override with GUNICORN_* or flags."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('HTTP_PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# No query string in the access log: callback tokens may travel as ?authorization=.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'

"""The WSGI application: the device callback through a middleware stack of its own, everything
else through the project's.

Devices call all day, and their calls need of the project's middleware only what shapes their
answers (``CALLBACK_MIDDLEWARE``: the security headers, ``Content-Length``); sessions, CSRF,
messages, static files and the pages' Content-Security-Policy are the console's. The same URLs,
views and settings serve both; tests/test_wsgi.py checks that both stacks answer a device alike.
"""

import io
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinger_http.settings")

project_application = get_wsgi_application()

from django.conf import settings  # noqa: E402 (Django is set up)
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from core.responses import is_callback_path  # noqa: E402
from thinger_http.events_proxy import is_events_upgrade, relay  # noqa: E402


class CallbackHandler(WSGIHandler):
    """Django's WSGI handler with ``CALLBACK_MIDDLEWARE`` instead of ``MIDDLEWARE``."""

    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE: point it at the callback's list while
        # it does (once, as the worker starts), then back.
        project = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.CALLBACK_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = project


callback_application = CallbackHandler()


def is_callback(environ):
    return is_callback_path(environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"])


def read_body(environ):
    """Read a request's body in full before Django sees the request.

    Under the web server's gevent workers (``thinger_http/gunicorn.conf.py``) a client that sends
    its body slowly then holds only its own greenlet, never a database connection or anything
    Django holds during a request. A chunked body (``Transfer-Encoding: chunked``, no
    ``Content-Length``), which Django would see as empty, gets its length: devices and libraries
    that stream would otherwise be answered 200 with their data dropped. Bodies are read up to
    one byte more than the largest a route accepts, so that each route refuses one over its own
    limit (413) as it does by the declared length, which a larger declared length meets unread.
    """
    cap = max(settings.CALLBACK_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE) + 1
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        try:
            size = int(declared)
        except ValueError:
            return
        if not 0 < size < cap:
            return
    elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        size = cap
    else:
        return
    stream, parts, read = environ["wsgi.input"], [], 0
    while read < size:
        part = stream.read(size - read)
        if not part:
            break
        parts.append(part)
        read += len(part)
    environ["wsgi.input"] = io.BytesIO(b"".join(parts))
    environ["CONTENT_LENGTH"] = str(read)


def application(environ, start_response):
    if is_events_upgrade(environ):
        return relay(environ, start_response)
    read_body(environ)
    if is_callback(environ):
        return callback_application(environ, start_response)
    return project_application(environ, start_response)

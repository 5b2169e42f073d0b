"""The WSGI application: the device callback through a middleware stack of its own, everything
else through the project's.

Devices call all day, and their calls need of the project's middleware only what shapes their
answers (``CALLBACK_MIDDLEWARE``: the security headers, ``Content-Length``); sessions, CSRF,
messages, static files and the pages' Content-Security-Policy are the console's. The same URLs,
views and settings serve both; tests/test_wsgi.py checks that both stacks answer a device alike.
"""

import io
import os
import re

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinger_http.settings")

project_application = get_wsgi_application()

from django.conf import settings  # noqa: E402 (Django is set up)
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from thinger_http.identifiers import IDENTIFIER_PATTERN  # noqa: E402


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

# The callback's paths (devices/urls.py): .../callback/data, whatever the method, and the legacy
# POST .../callback (its GET and PUT are the settings' API, which takes the console's session).
_CALLBACK = re.compile(
    rf"/v3/users/{IDENTIFIER_PATTERN}/devices/{IDENTIFIER_PATTERN}/callback(?P<data>/data)?"
)


def is_callback(environ):
    match = _CALLBACK.fullmatch(environ.get("PATH_INFO", ""))
    return match is not None and (match["data"] is not None or environ["REQUEST_METHOD"] == "POST")


def read_chunked_body(environ):
    """Give a chunked body (``Transfer-Encoding: chunked``, no ``Content-Length``) its length.

    Django reads a body by its ``Content-Length`` and sees none in a chunked request: devices and
    libraries that stream would be answered 200 with their data dropped. The body is read here
    (the server has undone the chunking), up to one byte more than the largest body a route
    accepts, so that each route refuses one over its own limit (413) as it does with a length.
    """
    encoding = environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if environ.get("CONTENT_LENGTH") or "chunked" not in encoding:
        return
    cap = max(settings.CALLBACK_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE) + 1
    stream, parts, size = environ["wsgi.input"], [], 0
    while size < cap:
        part = stream.read(cap - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    environ["wsgi.input"] = io.BytesIO(b"".join(parts))
    environ["CONTENT_LENGTH"] = str(size)


def application(environ, start_response):
    read_chunked_body(environ)
    if is_callback(environ):
        return callback_application(environ, start_response)
    return project_application(environ, start_response)

"""The WSGI application: the device callback through a middleware stack of its own, everything
else through the project's.

Devices call all day, and their calls need of the project's middleware only what shapes their
answers (``CALLBACK_MIDDLEWARE``: the security headers, ``Content-Length``); sessions, CSRF,
messages, static files and the pages' Content-Security-Policy are the console's. The same URLs,
views and settings serve both; tests/test_wsgi.py checks that both stacks answer a device alike.
"""

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


def application(environ, start_response):
    if is_callback(environ):
        return callback_application(environ, start_response)
    return project_application(environ, start_response)

"""Response shapes shared by every API view (SPEC section 9: exact 200, empty or JSON)."""

import json
import re

from django.http import HttpResponse

from core.identifiers import IDENTIFIER_PATTERN


def json_error(status, message, headers=None):
    response = HttpResponse(
        json.dumps({"error": {"message": message}}),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def empty_ok(headers=None):
    """200 with ``Content-Length: 0`` and no ``Content-Type``, as Thinger.io clients expect."""
    response = HttpResponse(b"", status=200)
    del response["Content-Type"]
    response["Content-Length"] = "0"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


API_PREFIXES = ("/v1/", "/v2/", "/v3/", "/oauth/", "/api/")


def is_api_path(path):
    return path.startswith(API_PREFIXES)


# The device callback's paths (devices/urls.py): .../callback/data, whatever the method, and the
# legacy POST .../callback (its GET and PUT are the settings' API, which takes the console's
# session). They check their own query parameters and answer as devices expect.
_CALLBACK = re.compile(
    rf"/v3/users/{IDENTIFIER_PATTERN}/devices/{IDENTIFIER_PATTERN}/callback(?P<data>/data)?"
)


def is_callback_path(path, method):
    match = _CALLBACK.fullmatch(path)
    return match is not None and (match["data"] is not None or method == "POST")

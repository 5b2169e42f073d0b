"""Response shapes shared by every API view (SPEC section 9: exact 200, empty or JSON)."""

import json

from django.http import HttpResponse


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

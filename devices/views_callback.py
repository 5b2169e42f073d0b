"""The device callback: what devices call. Thin: read the request, call the service, answer."""

import logging

from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import get_usage

from devices.services import (
    CallbackError,
    callback_authenticate,
    callback_ingest,
    parse_remote_ip,
)
from thinger_http.responses import empty_ok, json_error

logger = logging.getLogger(__name__)

_BEARER = "bearer "


def _token(request):
    header = request.headers.get("Authorization", "")
    if header[: len(_BEARER)].lower() == _BEARER:
        return header[len(_BEARER) :].strip()
    return request.GET.get("authorization", "").strip()


def _rate_limited(request, username, identifier):
    if not settings.CALLBACK_RATE:
        return None
    usage = get_usage(
        request,
        group="device-callback",
        key=lambda group, request: f"{username}/{identifier}",
        rate=settings.CALLBACK_RATE,
        increment=True,
    )
    if usage and usage["should_limit"]:
        return max(1, int(usage["time_left"]))
    return None


def _read_body(request):
    limit = settings.CALLBACK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
def callback_data(request, user, device, legacy=False):
    if request.method not in ("POST", "GET") or (legacy and request.method != "POST"):
        response = json_error(405, f"method {request.method} is not allowed here")
        response["Allow"] = "POST" if legacy else "GET, POST"
        return response
    try:
        claims = callback_authenticate(token=_token(request), username=user, identifier=device)
        retry_after = _rate_limited(request, user, device)
        if retry_after:
            raise CallbackError(
                429, "too many requests for this device", {"Retry-After": str(retry_after)}
            )
        body = b""
        if request.method == "POST":
            body = _read_body(request)
            if body is None:
                raise CallbackError(413, f"body is larger than {settings.CALLBACK_MAX_BYTES} bytes")
        result = callback_ingest(
            claims=claims,
            username=user,
            identifier=device,
            body=body,
            store=request.method == "POST",
            query_ts=request.GET.get("ts"),
            remote_ip=parse_remote_ip(request.GET.get("ip"), request.META.get("REMOTE_ADDR")),
        )
    except CallbackError as exc:
        return json_error(exc.status, exc.message, exc.headers)
    except (DataError, IntegrityError):
        logger.warning("callback data refused by the database", exc_info=True)
        return json_error(400, "the data cannot be stored: a value is out of range or invalid")
    except (OperationalError, InterfaceError):
        retry = str(settings.CALLBACK_RETRY_AFTER_SECONDS)
        return json_error(503, "storage unavailable, retry later", {"Retry-After": retry})
    if not result.body:
        return empty_ok(result.headers)
    response = HttpResponse(result.body, status=200)
    for name, value in result.headers.items():
        response[name] = value
    return response

"""API policy: error bodies, who may call what, throttling.

Kept apart from the views because DRF imports these classes from its settings while it loads.
"""

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, parsers, permissions, throttling

from core import rates
from core.logins import client_address
from core.text import UNSTORABLE_MESSAGE, has_unstorable_text, query_has_unstorable_text


def _first_message(detail, prefix=""):
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key not in ("non_field_errors", "detail") else ""
            found = _first_message(value, f"{prefix}.{name}" if prefix and name else prefix or name)
            if found:
                return found
        return prefix or "invalid request"
    if isinstance(detail, list):
        for index, item in enumerate(detail):
            label = prefix
            if isinstance(item, dict):
                label = f"{prefix}[{index}]" if prefix else f"[{index}]"
            found = _first_message(item, label)
            if found:
                return found
        return prefix or "invalid request"
    return f"{prefix}: {detail}" if prefix else str(detail)


def exception_handler(exc, context):
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound(str(exc) or "not found")
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = PayloadTooLarge(f"the body is larger than {limit} bytes")
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = {"error": {"message": _first_message(response.data)}}
    return response


class UserRateThrottle(throttling.BaseThrottle):
    """``API_RATE`` requests per user (per client address when anonymous, as
    ``core.logins.client_address`` tells it), in fixed windows counted atomically in
    the cache: Redis in services mode."""

    rate = None  # API_RATE unless set here
    cache_format = "throttle_%(scope)s_%(ident)s"

    def allow_request(self, request, view):
        rate = self.rate or settings.API_RATE
        if not rate:
            return True
        limit, period = rates.split_rate(rate)
        number, self.retry_after = rates.window(period)
        user = request.user
        ident = f"user{user.pk}" if user and user.is_authenticated else client_address(request)
        key = self.cache_format % {"scope": "user", "ident": ident} + f":{number}"
        return rates.hit(caches[settings.RATELIMIT_USE_CACHE], key, period) <= limit

    def wait(self):
        return self.retry_after


class OwnerPermission(permissions.BasePermission):
    """Only ``{user}`` (or staff, read-only) under ``/users/{user}/``; tokens within their scope."""

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            raise exceptions.NotAuthenticated("authentication credentials were not provided")
        path_user = view.kwargs.get("user")
        staff_read = user.is_staff and request.method in permissions.SAFE_METHODS
        if path_user is not None and path_user != user.username and not staff_read:
            raise exceptions.PermissionDenied("you may not access another user's resources")
        grant = request.auth
        scope = getattr(view, "permission_scope", None)
        if grant is not None and hasattr(grant, "permits") and scope is not None:
            resource_type, action = scope(request)
            resource = view.kwargs.get(getattr(view, "resource_kwarg", "") or "", None)
            if not grant.permits(resource_type, resource, action):
                raise exceptions.PermissionDenied(f"this token does not allow {action}")
        return True


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "the body is too large"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a body nested too deeply to parse a 400 rather than a crash, and
    text no database stores refused (400)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None
        if has_unstorable_text(data):
            raise exceptions.ParseError(UNSTORABLE_MESSAGE)
        return data


class FormParser(parsers.FormParser):
    """DRF's form parser, with text no database stores refused (400)."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if query_has_unstorable_text(data):
            raise exceptions.ParseError(UNSTORABLE_MESSAGE)
        return data

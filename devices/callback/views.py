"""The device callback's view: what devices call, a DRF view made of DRF's own extension points.

Authentication (``auth.py``), the rate limit (``throttle.py``) and the body (``body.py``) come
before the view's method, which hands the call to ``callback_ingest`` and answers. Errors are the
project's JSON error body. The wire is Thinger.io's: an empty 200 has no Content-Type, a JSON 200
the property's value, and no content negotiation stands in the way of a device's odd headers.
"""

import logging

from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from core.events import publish
from core.responses import empty_ok
from devices.activity import callback_activity_record
from devices.callback.auth import CallbackAuthentication
from devices.callback.body import EMPTY, Body, CallbackParser, remote_ip
from devices.callback.errors import CallbackError
from devices.callback.ingest import callback_ingest, callback_refusal
from devices.callback.throttle import CallbackRateThrottle
from devices.events import CALLBACK_CALL

logger = logging.getLogger(__name__)


class ErrorRenderer(JSONRenderer):
    """The error body as the callback has always written it: ``{"error": {"message": ...}}``
    with a space after each separator, ASCII only."""

    compact = False
    ensure_ascii = True


class SingleContentNegotiation(BaseContentNegotiation):
    """The view's one parser, whatever the Content-Type, and its one renderer, whatever the
    Accept header: a device gets its answer as it is."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


_ERRORS = {
    401: OpenApiResponse(description="missing, invalid or rotated token"),
    403: OpenApiResponse(description="a token of another device or user, or a disabled device"),
    404: OpenApiResponse(description="no such device (clients then create it and retry)"),
    429: OpenApiResponse(description="over CALLBACK_RATE for this device; see Retry-After"),
    503: OpenApiResponse(description="the data could not be stored; retry after Retry-After"),
}
_PARAMETERS = [
    OpenApiParameter("authorization", str, description="the token, for devices without headers"),
]


class CallbackView(APIView):
    # A comment, not a docstring: drf-spectacular would publish it.
    # POST /v3/users/{user}/devices/{device}/callback/data (and POST .../callback): the device's
    # data; GET answers the response property and stores nothing.

    authentication_classes = [CallbackAuthentication]
    permission_classes = []
    throttle_classes = [CallbackRateThrottle]
    parser_classes = [CallbackParser]
    renderer_classes = [ErrorRenderer]
    content_negotiation_class = SingleContentNegotiation
    http_method_names = ["get", "post"]

    # Stateless: one instance of each serves every call.
    _authenticators = (CallbackAuthentication(),)
    _parsers = (CallbackParser(),)
    _negotiator = SingleContentNegotiation()

    def get_authenticators(self):
        return self._authenticators

    def get_parsers(self):
        return self._parsers

    def get_content_negotiator(self):
        return self._negotiator

    def initial(self, request, *args, **kwargs):
        """What a call goes through before its method: authentication, then the rate limit.
        (No permissions, versions or format suffixes here; an error's renderer is chosen when
        there is one.)"""
        self.format_kwarg = None
        self.perform_authentication(request)
        self.check_throttles(request)

    @property
    def default_response_headers(self):
        return {}

    @extend_schema(
        operation_id="Device_CallCallbackData",
        request={"application/json": OpenApiTypes.ANY},
        parameters=[
            *_PARAMETERS,
            OpenApiParameter("ts", int, description="ms of records without their own ts"),
            OpenApiParameter("ip", str, description="the device's address, from a gateway"),
        ],
        responses={
            200: OpenApiResponse(
                description="empty, or the value of the property the callback answers with "
                "(JSON); a body that is not JSON is stored nowhere (X-Callback-Ignored says why)"
            ),
            400: OpenApiResponse(description="JSON that cannot be stored, or a bad ts"),
            413: OpenApiResponse(description="a body or a batch over the limits"),
            **_ERRORS,
        },
        description="The device's data: each action of its callback settings, in order "
        "(write bucket, set property, call endpoint, answer with a property).",
    )
    def post(self, request, user, device):
        try:
            body = request.data
        except CallbackError as exc:
            if exc.status_code == 400:
                callback_refusal(claims=request.auth, username=user, identifier=device)
            raise
        return self.ingest(request, user, device, body if isinstance(body, Body) else EMPTY)

    @extend_schema(
        operation_id="Device_ReadCallbackResponseData",
        parameters=_PARAMETERS,
        responses={
            200: OpenApiResponse(description="empty, or the response property's value"),
            **_ERRORS,
        },
        description="What the callback would answer, storing nothing.",
    )
    def get(self, request, user, device):
        return self.ingest(request, user, device, None)

    def ingest(self, request, user, device, body):
        query = request.query_params
        answer = callback_ingest(
            claims=request.auth,
            username=user,
            identifier=device,
            body=body,
            query_ts=query.get("ts"),
            remote_ip=remote_ip(query.get("ip"), request._request.META.get("REMOTE_ADDR")),
        )
        if answer.body is None:
            return empty_ok(answer.headers)
        response = HttpResponse(answer.body, content_type="application/json")
        for name, value in answer.headers.items():
            response[name] = value
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        """Every call, answered or refused, is a live event for the device's owner, with the
        bytes it sent and was sent (an error body is rendered after this: its size then)."""
        response = super().finalize_response(request, response, *args, **kwargs)
        rx = request._request.META.get("CONTENT_LENGTH", "")
        size = int(rx) if rx.isdigit() else 0
        event = CALLBACK_CALL(kwargs.get("device"), status=response.status_code, rx_bytes=size)
        self.note_if_nothing_stored(request, response, size, **kwargs)

        def announce(rendered):
            publish(kwargs.get("user"), {**event, "tx_bytes": len(rendered.content)})

        if getattr(response, "is_rendered", True):
            announce(response)
        else:
            response.add_post_render_callback(announce)
        return response

    def note_if_nothing_stored(self, request, response, size, *, user=None, device=None):
        """A refusal (4xx but 404: no device to show it on) or an ignored body goes to the
        device's activity log; an accepted call costs nothing here."""
        status = response.status_code
        if 400 <= status < 500 and status != 404:
            data = getattr(response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            reason = error.get("message") if isinstance(error, dict) else None
        elif status == 200 and response.has_header("X-Callback-Ignored"):
            reason = f"ignored: {response['X-Callback-Ignored']}"
        else:
            return
        callback_activity_record(
            username=user,
            identifier=device,
            status=status,
            reason=str(reason or response.reason_phrase),
            remote_ip=remote_ip(
                request._request.GET.get("ip"), request._request.META.get("REMOTE_ADDR")
            ),
            size=size,
        )

    def http_method_not_allowed(self, request, *args, **kwargs):
        self.headers = {"Allow": "GET, POST"}
        raise CallbackError(405, f"method {request.method} is not allowed here")

    def throttled(self, request, wait):
        raise CallbackError(429, "too many requests for this device", wait=wait)

    def handle_exception(self, exc):
        """The database's refusals: 400 for data it cannot hold, 503 (with ``Retry-After``) when
        it cannot be reached, never a 200 for data that was not stored."""
        if isinstance(exc, DataError | IntegrityError):
            logger.warning("callback data refused by the database", exc_info=True)
            exc = CallbackError(
                400, "the data cannot be stored: a value is out of range or invalid"
            )
        elif isinstance(exc, OperationalError | InterfaceError):
            exc = CallbackError(
                503, "storage unavailable, retry later", wait=settings.CALLBACK_RETRY_AFTER_SECONDS
            )
        return super().handle_exception(exc)


callback_view = CallbackView.as_view()

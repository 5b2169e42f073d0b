"""The endpoints part of the REST API (SPEC section 5), wire-compatible with Thinger.io's.

Every success is exactly 200: JSON, or empty for deletes. Request bodies follow the reference's
schemas, ``additionalProperties: false`` included; each violation is a 400 naming the field, and
a configuration field is named with its path (``config.url``).

``POST .../call`` answers 200 whenever the call was made and logged, whatever the target said:
the body tells how it went (``ok``, the target's ``status``, its ``response``, an ``error``).
A refused address, a disabled endpoint or a bad stored configuration is such an outcome too
(``ok: false``, ``status: null``, the reason in ``error``), logged like any failed call. Only a
request this server cannot take (a body that is not JSON, or too large) is a 4xx.
"""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.http.request import RawPostDataException
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, serializers

from core.api import (
    PAGE_PARAMETERS,
    ApiView,
    AssetDetailView,
    AssetListView,
    AssetView,
    ok,
    page,
)
from core.api_fields import (
    ClosedSerializer,
    IdentifierField,
    StrictBooleanField,
    StrictCharField,
)
from core.api_policy import PayloadTooLarge
from core.text import UNSTORABLE_MESSAGE, has_unstorable_text
from core.times import to_ms
from endpoints import selectors, services
from endpoints.kinds import endpoint_templates, redacted_config, refused_target
from endpoints.models import Endpoint, EndpointCall
from endpoints.net import EXCERPT_CHARS

CALLS_PAGE = 50  # calls a page of the call log by default
CALLS_PAGE_MAX = 1000

_TYPE_SCHEMA = {"type": "string", "enum": Endpoint.Type.values}


@extend_schema_field(_TYPE_SCHEMA)
class _TypeField(serializers.ChoiceField):
    """An endpoint type. The reference's (``http_request``, ``email``) are ours; Thinger.io's
    other kinds have no counterpart here and are refused with the list of those there are."""

    def __init__(self, **kwargs):
        types = ", ".join(Endpoint.Type.values)
        super().__init__(
            choices=Endpoint.Type.values,
            error_messages={
                "invalid_choice": f'unsupported endpoint type "{{input}}": use {types}'
            },
            **kwargs,
        )

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class _ConfigField(serializers.DictField):
    """The type's configuration: a JSON object, checked by ``endpoints.kinds`` in the service."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            json.dumps(value, allow_nan=False)
        except ValueError:  # 1e400 parses as infinity, which JSON cannot store
            raise serializers.ValidationError("a number is too large") from None
        return value


class EndpointCreateInput(ClosedSerializer):
    endpoint = IdentifierField()
    name = StrictCharField(max_length=255, allow_blank=True, required=False)
    description = StrictCharField(max_length=255, allow_blank=True, required=False)
    enabled = StrictBooleanField(required=False)
    type = _TypeField()
    config = _ConfigField()


class EndpointUpdateInput(EndpointCreateInput):
    # Not in the reference's update schema, but in its "Full Update" example: the path's id only.
    endpoint = IdentifierField(required=False)
    type = _TypeField(required=False)
    config = _ConfigField(required=False, help_text="replaces the whole configuration")


# Outputs.


@extend_schema_field(_TYPE_SCHEMA)
class _TypeOutputField(serializers.CharField):
    pass


class EndpointOutput(serializers.Serializer):
    endpoint = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    type = _TypeOutputField()
    config = serializers.DictField()
    secret = serializers.CharField(
        help_text="signs each request: X-Signature is sha256= and the HMAC-SHA256 of the body"
    )
    created = serializers.IntegerField()
    modified = serializers.IntegerField()


def endpoint_out(endpoint, *, secrets=True):
    """An endpoint as the API shows it; without ``secrets`` (staff reading another user's), its
    signing secret and the credentials in its settings are left out."""
    return {
        "endpoint": endpoint.identifier,
        "name": endpoint.name,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "type": endpoint.type,
        "config": endpoint.config if secrets else redacted_config(endpoint.type, endpoint.config),
        "secret": endpoint.secret if secrets else None,
        "created": to_ms(endpoint.created),
        "modified": to_ms(endpoint.modified),
    }


class TemplateOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    type = _TypeOutputField()
    description = serializers.CharField()
    config = serializers.DictField(help_text="the configuration to fill in")


class CallResultOutput(serializers.Serializer):
    ok = serializers.BooleanField(
        help_text="true when the target accepted the call (2xx, or an "
        "e-mail handed to the mail server)"
    )
    status = serializers.IntegerField(
        allow_null=True,
        help_text="the target's HTTP status; null for e-mail and when no response came",
    )
    response = serializers.CharField(
        help_text=f"the start of the target's response, at most {EXCERPT_CHARS} characters"
    )
    failure = serializers.CharField(allow_null=True, help_text="why the call failed; null if ok")
    duration_ms = serializers.IntegerField()
    call = serializers.IntegerField(help_text="the call's id in GET .../calls")


def call_result_out(result):
    return {
        "ok": result.ok,
        "status": result.status_code,
        "response": result.response_excerpt,
        "failure": result.error or None,
        "duration_ms": result.duration_ms,
        "call": result.call.pk,
    }


class AttemptOutput(serializers.Serializer):
    started = serializers.IntegerField(help_text="milliseconds since the Unix epoch")
    duration_ms = serializers.IntegerField()
    status = serializers.IntegerField(allow_null=True, help_text="the target's HTTP status")
    failure = serializers.CharField(allow_null=True, help_text="why the attempt failed")
    response = serializers.CharField()


class CallOutput(serializers.Serializer):
    call = serializers.IntegerField()
    device = serializers.CharField(allow_null=True, help_text="the device whose callback called")
    payload = serializers.JSONField(help_text="the call data")
    ts = serializers.IntegerField(help_text="time of the data (ms)")
    created = serializers.IntegerField()
    # A plain string in the schema: an enum named "state" would rename the bucket exports' one.
    state = serializers.CharField(help_text=", ".join(EndpointCall.Status.values))
    next_attempt = serializers.IntegerField(allow_null=True, help_text="when pending: due time")
    finished = serializers.IntegerField(allow_null=True)
    failure = serializers.CharField(allow_null=True, help_text="why the last attempt failed")
    attempts = AttemptOutput(many=True, help_text="newest first")


def call_out(call):
    return {
        "call": call.pk,
        "device": call.device.identifier if call.device else None,
        "payload": call.payload,
        "ts": call.ts,
        "created": to_ms(call.created),
        "state": call.status,
        "next_attempt": to_ms(call.next_attempt_at)
        if call.status == EndpointCall.Status.PENDING
        else None,
        "finished": to_ms(call.finished_at),
        "failure": call.last_error or None,
        "attempts": [
            {
                "started": to_ms(attempt.started_at),
                "duration_ms": attempt.duration_ms,
                "status": attempt.status_code,
                "failure": attempt.error or None,
                "response": attempt.response_excerpt,
            }
            for attempt in call.attempt_log.all()
        ],
    }


# Helpers.


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _call_data(request):
    """The call data: the body as JSON (any JSON value), None when the body is empty.

    Read raw, whatever the Content-Type, as device callbacks are; as large as a callback's may be.
    """
    limit = settings.CALLBACK_MAX_BYTES
    too_large = PayloadTooLarge(f"the body is larger than {limit} bytes")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    except RawPostDataException:  # a multipart form, already parsed
        raise exceptions.ValidationError("the body must be JSON") from None
    if len(body) > limit:
        raise too_large
    if not body.strip():
        return None
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
        json.dumps(data, allow_nan=False)  # 1e400 parses as infinity, which JSON cannot store
    except (ValueError, RecursionError):
        raise exceptions.ValidationError("the body must be JSON (or empty)") from None
    if has_unstorable_text(data):
        raise exceptions.ValidationError(UNSTORABLE_MESSAGE)
    return data


# Views.


WARNING_HEADER = "X-Endpoint-Warning"
_WARNING_DOC = (
    " Saved even when the address guard will refuse its calls (a loopback, private or "
    "link-local address while ENDPOINTS_ALLOW_PRIVATE_NETWORKS is off): the 200 then carries "
    f"an `{WARNING_HEADER}` header saying why."
)


class _EndpointView(AssetView):
    asset = resource_kwarg = "endpoint"
    warning = None  # set by a create or update whose calls the address guard will refuse

    def find(self, **path):
        return selectors.endpoint_by_path(**path)

    def out(self, endpoint):
        return endpoint_out(endpoint, secrets=self.shows_secrets())

    def check_target(self, endpoint):
        refused = refused_target(endpoint.type, endpoint.config)
        if refused:
            # A header is Latin-1 text: an international host name is kept readable as escapes.
            text = f"calls will be refused: {refused}"
            self.warning = text.encode("ascii", "backslashreplace").decode()

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.warning and response.status_code == 200:
            response[WARNING_HEADER] = self.warning
        return response


@extend_schema_view(
    post=extend_schema(
        request=EndpointCreateInput,
        responses={200: EndpointOutput},
        operation_id="Endpoint_Create",
        description="The configuration is checked against the type's rules: each violation is a "
        "400 naming the field, such as `config.url`." + _WARNING_DOC,
    )
)
class EndpointListView(AssetListView, _EndpointView):
    """A user's endpoints: list (by id; paged with ``index`` and ``count``), create."""

    actions = {"GET": ("Endpoint", "ListEndpoints"), "POST": ("Endpoint", "CreateEndpoint")}
    create_input = EndpointCreateInput

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("name", str, description="part of the id or the name"),
            OpenApiParameter("id", str, description="part of the id"),
            OpenApiParameter("type", str, enum=Endpoint.Type.values),
        ],
        responses={200: EndpointOutput(many=True)},
        operation_id="Endpoint_List",
    )
    def get(self, request, user):
        owner = self.path_owner()
        rows = selectors.endpoints_of(
            username=owner.username,
            name=request.query_params.get("name", "").strip(),
            identifier=request.query_params.get("id", "").strip(),
            type=request.query_params.get("type", "").strip(),
        )
        secrets = self.shows_secrets()
        return ok([endpoint_out(e, secrets=secrets) for e in page(request, rows)])

    def create(self, owner, identifier, data):
        endpoint = services.endpoint_create(owner=owner, identifier=identifier, **data)
        self.check_target(endpoint)
        return endpoint


@extend_schema_view(
    get=extend_schema(responses={200: EndpointOutput}, operation_id="Endpoint_ReadConfig"),
    put=extend_schema(
        request=EndpointUpdateInput,
        responses={200: EndpointOutput},
        operation_id="Endpoint_Update",
        description="A partial update: absent fields keep their values; `config` replaces the "
        "whole configuration, and a new `type` is checked against the resulting configuration."
        + _WARNING_DOC,
    ),
    delete=extend_schema(
        responses={200: None},
        operation_id="Endpoint_Delete",
        description="Deletes the endpoint and its call log; device callbacks calling it stop "
        "calling.",
    ),
)
class EndpointDetailView(AssetDetailView, _EndpointView):
    """One endpoint: its settings and configuration."""

    actions = {
        "GET": ("Endpoint", "ReadEndpointConfig"),
        "PUT": ("Endpoint", "UpdateEndpoint"),
        "DELETE": ("Endpoint", "DeleteEndpoint"),
    }
    update_input = EndpointUpdateInput

    def update(self, endpoint, data):
        services.endpoint_update(endpoint=endpoint, **data)
        self.check_target(endpoint)

    def remove(self, endpoint):
        services.endpoint_delete(endpoint=endpoint)


class EndpointCallView(_EndpointView):
    """Call an endpoint now (the console's test button does the same)."""

    actions = {"POST": ("Endpoint", "CallEndpoint")}

    @extend_schema(
        request={"application/json": OpenApiTypes.ANY},
        responses={200: CallResultOutput},
        operation_id="Endpoint_Call",
        description="Calls the endpoint now, once, with the body (any JSON; empty: null) as the "
        "call data, and logs the call. 200 whenever the call was made: `ok` says whether the "
        "target accepted it, `status` is its HTTP status (null for e-mail or when there was no "
        "response), `error` says why it failed (an unreachable or refused address, a disabled "
        "endpoint...). 413 when the body is larger than a device callback's may be.",
    )
    def post(self, request, user, endpoint):
        found = self.found()
        result = services.endpoint_call_now(endpoint=found, payload=_call_data(request))
        return ok(call_result_out(result))


class EndpointCallLogView(_EndpointView):
    """The recent call log (our addition, for the console and scripts)."""

    actions = {"GET": ("Endpoint", "ReadEndpointCalls")}

    @extend_schema(
        parameters=[
            OpenApiParameter("index", int, description="position of the first call, from 0"),
            OpenApiParameter(
                "count",
                int,
                description=f"calls a page (default {CALLS_PAGE}, at most {CALLS_PAGE_MAX}); "
                "a shorter page is the last",
            ),
        ],
        responses={200: CallOutput(many=True)},
        operation_id="Endpoint_ListCalls",
        description="Calls newest first, from devices and from POST .../call, each with its "
        "delivery attempts.",
    )
    def get(self, request, user, endpoint):
        rows = selectors.endpoint_calls(endpoint=self.found())
        calls = page(request, rows, default=CALLS_PAGE, maximum=CALLS_PAGE_MAX)
        return ok([call_out(call) for call in calls])


class EndpointTemplateListView(ApiView):
    """The ready endpoint templates: a type and a configuration to fill in."""

    actions = {"GET": ("Endpoint", "ListEndpointTemplates")}

    @extend_schema(
        responses={200: TemplateOutput(many=True)}, operation_id="Endpoint_ListTemplates"
    )
    def get(self, request):
        return ok(endpoint_templates())


class EndpointTemplateDetailView(ApiView):
    """One ready endpoint template."""

    actions = {"GET": ("Endpoint", "ReadEndpointTemplateConfig")}
    resource_kwarg = "endpoint"

    @extend_schema(responses={200: TemplateOutput}, operation_id="Endpoint_ReadTemplateConfig")
    def get(self, request, endpoint):
        template = selectors.endpoint_template(identifier=endpoint)
        if template is None:
            raise Http404(f"endpoint template {endpoint!r} not found")
        return ok(template)

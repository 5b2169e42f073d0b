"""The devices part of the REST API (SPEC sections 2 and 3), wire-compatible with Thinger.io's.

Every success is exactly 200: JSON, or empty for deletes. Request bodies are JSON, checked against
the reference's schemas (``additionalProperties: false`` included): each violation is a 400
naming the field.
"""

from django.core.exceptions import ValidationError as ModelValidationError
from django.core.validators import RegexValidator
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, serializers

from buckets.api import READ_PARAMETERS, BucketOutput, RecordOutput, bucket_out, read_records
from core.api import (
    AssetDetailView,
    AssetListView,
    AssetView,
    int_param,
    model_error,
    ok,
    validated,
    without_id,
)
from core.api_fields import (
    ClosedSerializer,
    IdentifierField,
    JSONValueField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from core.api_policy import JSONParser
from core.times import to_ms
from devices import selectors, services
from devices.callback.views import callback_view
from devices.models import Device
from devices.streams import stats_events

# Devices.

_NO_CREDENTIALS = (
    "HTTP devices have no credentials: they call with their callback token "
    "(rotate it with POST .../callback/token)"
)


class DeviceCreateInput(ClosedSerializer):
    device = IdentifierField()
    type = StrictCharField(required=False, help_text='only "HTTP"')
    name = StrictCharField(max_length=255, allow_blank=True, required=False)
    description = StrictCharField(max_length=255, allow_blank=True, required=False)
    enabled = StrictBooleanField(required=False)
    # Accepted as the reference allows, and not kept: this server has no asset types, groups or
    # products. Empty or null too: plugins send their "none" setting as it is.
    asset_group = IdentifierField(required=False, allow_blank=True, allow_null=True)
    asset_type = IdentifierField(required=False, allow_blank=True, allow_null=True)
    product = IdentifierField(required=False, allow_blank=True, allow_null=True)

    refused = {"credentials": _NO_CREDENTIALS}

    def to_internal_value(self, data):
        # The type decides which of the reference's schemas applies: say so before anything else.
        kind = data.get("type", Device.Type.HTTP) if isinstance(data, dict) else None
        if isinstance(data, dict) and kind != Device.Type.HTTP:
            raise exceptions.ValidationError(
                {"type": [f"type {kind!r} is not supported here: only HTTP devices"]}
            )
        return super().to_internal_value(data)


class DeviceUpdateInput(DeviceCreateInput):
    # Not in the reference's update schema, but in its "Full Update" example: the path's id only.
    device = IdentifierField(required=False)


def _device_fields(data):
    return {name: data[name] for name in ("name", "description", "enabled") if name in data}


class ConnectionOutput(serializers.Serializer):
    active = serializers.BooleanField()
    ts = serializers.IntegerField(
        allow_null=True,
        help_text="ms: when it connected, or when it timed out; null if it never called",
    )


class DeviceOutput(serializers.Serializer):
    device = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    type = serializers.CharField(help_text='"HTTP"')
    enabled = serializers.BooleanField()
    created = serializers.IntegerField()
    modified = serializers.IntegerField()
    connection = ConnectionOutput()


class ConnectionDetailOutput(ConnectionOutput):
    ip_address = serializers.CharField(allow_null=True, help_text="of the last call")
    last_call = serializers.IntegerField(allow_null=True, help_text="ms")
    timeout = serializers.IntegerField(help_text="minutes without a call before disconnecting")


class DeviceStatusOutput(DeviceOutput):
    connection = ConnectionDetailOutput()


def device_out(device):
    return {
        "device": device.identifier,
        "name": device.name,
        "description": device.description,
        "type": device.type,
        "enabled": device.enabled,
        "created": to_ms(device.created),
        "modified": to_ms(device.modified),
        "connection": selectors.device_connection(device),
    }


def device_status_out(device):
    out = device_out(device)
    out["connection"].update(
        ip_address=device.remote_ip,
        last_call=to_ms(device.last_call_at),
        timeout=selectors.device_callback_settings(device).timeout,
    )
    return out


class _DeviceView(AssetView):
    asset = resource_kwarg = "device"
    parser_classes = [JSONParser]

    def find(self, **path):
        return selectors.device_by_path(**path)


_ROWS_MAX = 2**31 - 1  # larger counts and offsets mean "all" and "past the end"
_LIST_PARAMETERS = [
    OpenApiParameter("count", int, description="devices per page (default: all)"),
    OpenApiParameter("index", int, description="how many devices to skip (default 0)"),
    OpenApiParameter("name", str, description="part of the name (case-insensitive)"),
    OpenApiParameter("id", str, description="part of the device id (case-insensitive)"),
    OpenApiParameter("type", str, enum=Device.Type.values, description="the device type"),
]


@extend_schema_view(
    post=extend_schema(
        request=DeviceCreateInput,
        responses={200: DeviceOutput},
        operation_id="Device_Create",
        description='Only HTTP devices: `type` is "HTTP" or absent. `asset_group`, `asset_type` '
        "and `product` are accepted and not kept.",
    )
)
class DeviceListView(AssetListView, _DeviceView):
    actions = {"GET": ("Device", "ListDevices"), "POST": ("Device", "CreateDevice")}
    create_input = DeviceCreateInput
    out = staticmethod(device_out)

    @extend_schema(
        parameters=_LIST_PARAMETERS,
        responses={200: DeviceOutput(many=True)},
        operation_id="Device_List",
        description="Sorted by id. Page with `count` and `index` (an offset): a page shorter "
        "than `count` is the last. Empty or unknown parameters are ignored.",
    )
    def get(self, request, user):
        owner = self.path_owner()
        params = request.query_params
        devices = selectors.devices_for_owner(
            owner,
            name=params.get("name", "").strip() or None,
            type=params.get("type", "").strip() or None,
            identifier=params.get("id", "").strip() or None,
        )
        index = int_param(request, "index", 0, minimum=0, maximum=_ROWS_MAX)
        count = int_param(request, "count", 0, minimum=0, maximum=_ROWS_MAX)
        page = devices[index : index + count] if count else devices[index:]
        return ok([device_out(device) for device in page])

    def create(self, owner, identifier, data):
        return services.device_create(owner=owner, identifier=identifier, **_device_fields(data))


@extend_schema_view(
    get=extend_schema(
        responses={200: DeviceStatusOutput},
        operation_id="Device_ReadStatus",
        description="The device, with its connection details.",
    ),
    put=extend_schema(
        request=DeviceUpdateInput,
        responses={200: DeviceStatusOutput},
        operation_id="Device_Update",
        description="A partial update: absent fields keep their values. The id and type cannot "
        "change.",
    ),
    delete=extend_schema(
        responses={200: None},
        operation_id="Device_Delete",
        description="Deletes the device with its callback settings, properties, statistics and "
        "connection events. Its buckets and endpoints stay.",
    ),
)
class DeviceDetailView(AssetDetailView, _DeviceView):
    actions = {
        "GET": ("Device", "ReadDeviceStatus"),
        "PUT": ("Device", "UpdateDevice"),
        "DELETE": ("Device", "DeleteDevice"),
    }
    update_input = DeviceUpdateInput
    out = staticmethod(device_status_out)

    def update(self, device, data):
        services.device_update(device=device, **_device_fields(data))

    def remove(self, device):
        services.device_delete(device=device)


# Callback settings and token.

_ACTION_HELP = {
    "write_bucket": "a bucket of the device's owner",
    "set_property": "a property of the device, set to each call's data",
    "call_endpoint": "an endpoint of the device's owner, called with each call's data",
    "send_property": "a property of the device, sent back as the response",
}


class CallbackActionsSerializer(ClosedSerializer):
    write_bucket = IdentifierField(
        required=False, allow_null=True, allow_blank=True, help_text=_ACTION_HELP["write_bucket"]
    )
    set_property = IdentifierField(
        required=False, allow_null=True, allow_blank=True, help_text=_ACTION_HELP["set_property"]
    )
    call_endpoint = IdentifierField(
        required=False, allow_null=True, allow_blank=True, help_text=_ACTION_HELP["call_endpoint"]
    )
    send_property = IdentifierField(
        required=False, allow_null=True, allow_blank=True, help_text=_ACTION_HELP["send_property"]
    )


class CallbackPropertiesSerializer(ClosedSerializer):
    timeout = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=services.CALLBACK_TIMEOUT_MAX,
        help_text="minutes without a call before the device is disconnected",
    )


class CallbackSettingsSerializer(ClosedSerializer):
    actions = CallbackActionsSerializer(required=False)
    properties = CallbackPropertiesSerializer(required=False)


class CallbackActionsOutput(serializers.Serializer):
    write_bucket = serializers.CharField(required=False, help_text=_ACTION_HELP["write_bucket"])
    set_property = serializers.CharField(required=False, help_text=_ACTION_HELP["set_property"])
    call_endpoint = serializers.CharField(required=False, help_text=_ACTION_HELP["call_endpoint"])
    send_property = serializers.CharField(required=False, help_text=_ACTION_HELP["send_property"])


class CallbackPropertiesOutput(serializers.Serializer):
    timeout = serializers.IntegerField(help_text="minutes")


class CallbackSettingsOutput(serializers.Serializer):
    actions = CallbackActionsOutput(help_text="actions that are off are absent")
    properties = CallbackPropertiesOutput()


_CALLBACK_NAMES = {action: f"actions.{action}" for action in selectors.CALLBACK_ACTIONS}
_CALLBACK_NAMES["timeout"] = "properties.timeout"


class CallbackSettingsView(_DeviceView):
    """``/v3/users/{user}/devices/{device}/callback``: GET and PUT read and set the callback
    settings; POST is the legacy device callback path, the device callback itself."""

    actions = {
        "GET": ("Device", "ReadDeviceCallbackConfig"),
        "PUT": ("Device", "UpdateDeviceCallback"),
    }

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST":
            return callback_view(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    @property
    def default_response_headers(self):
        headers = super().default_response_headers
        headers["Allow"] = "GET, PUT, POST, HEAD, OPTIONS"
        return headers

    @extend_schema(
        responses={200: CallbackSettingsOutput},
        operation_id="Device_ReadCallbackConfig",
        description="What the device's callback does: its actions (those that are off are "
        "absent) and its connection timeout.",
    )
    def get(self, request, user, device):
        return ok(selectors.device_callback_settings_out(self.found()))

    @extend_schema(
        request=CallbackSettingsSerializer,
        responses={200: CallbackSettingsOutput},
        operation_id="Device_UpdateCallback",
        description="`actions`, when present, replaces the set: absent (or null) actions are "
        "off. Without `properties.timeout` the timeout keeps its value. Each action names an "
        "existing bucket or endpoint of the owner, or property of the device.",
    )
    def put(self, request, user, device):
        found = self.found()
        data = validated(CallbackSettingsSerializer, request.data)
        try:
            services.callback_settings_update(
                device=found,
                actions=data.get("actions"),
                timeout=data.get("properties", {}).get("timeout"),
            )
        except ModelValidationError as exc:
            raise model_error(exc, _CALLBACK_NAMES) from None
        return ok(selectors.device_callback_settings_out(found))


class CallbackTokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Authorization: Bearer <token>")
    url = serializers.CharField(help_text="where the device posts its data")
    full_url = serializers.CharField(help_text="the URL with ?authorization=<token>")


def _token_out(device, *, secrets=True):
    url, token, full_url = selectors.device_callback_credentials(device)
    if not secrets:  # staff reading another user's device: the URL, not the token
        return {"token": None, "url": url, "full_url": None}
    return {"token": token, "url": url, "full_url": full_url}


class CallbackTokenView(_DeviceView):
    actions = {
        "GET": ("Device", "ReadDeviceCallbackToken"),
        "POST": ("Device", "UpdateDeviceCallbackToken"),
    }

    @extend_schema(
        responses={200: CallbackTokenOutput},
        operation_id="Device_ReadCallbackToken",
        description="The token the device calls its callback with, and the URLs to call.",
    )
    def get(self, request, user, device):
        return ok(_token_out(self.found(), secrets=self.shows_secrets()))

    @extend_schema(
        request=None,
        responses={200: CallbackTokenOutput},
        operation_id="Device_RotateCallbackToken",
        description="Issues a new token: the old one fails (401) from now on.",
    )
    def post(self, request, user, device):
        return ok(_token_out(services.device_rotate_token(device=self.found())))


# Statistics.


class DailyStatsOutput(serializers.Serializer):
    date = serializers.DateField()
    calls = serializers.IntegerField()
    rx_bytes = serializers.IntegerField()
    tx_bytes = serializers.IntegerField()


class StatsOutput(serializers.Serializer):
    connected = serializers.BooleanField()
    connected_ts = serializers.IntegerField(allow_null=True, help_text="ms, the last connection")
    ip_address = serializers.CharField(allow_null=True)
    rx_bytes = serializers.IntegerField(help_text="bytes received, since the device was created")
    tx_bytes = serializers.IntegerField(help_text="bytes sent, since the device was created")
    calls = serializers.IntegerField(help_text="since the device was created")
    last_call_ts = serializers.IntegerField(allow_null=True, help_text="ms")
    daily = DailyStatsOutput(many=True, help_text="the last `days` days, oldest first")


STATS_MAX_DAYS = 366


def _wants_event_stream(request):
    return "text/event-stream" in request.META.get("HTTP_ACCEPT", "")


class DeviceStatsView(_DeviceView):
    actions = {"GET": ("Device", "ReadDeviceStatistics")}

    def perform_content_negotiation(self, request, force=False):
        # JSON, or the event stream below: an Accept of text/event-stream is not a 406.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "days", int, description=f"days of the daily series, 1 to {STATS_MAX_DAYS}; 30"
            )
        ],
        responses={
            (200, "application/json"): StatsOutput,
            (200, "text/event-stream"): OpenApiTypes.STR,
        },
        operation_id="Device_ReadStatistics",
        description="With `Accept: text/event-stream`, the same object as Server-Sent Events: "
        "now, then on each change; the stream ends after a few minutes.",
    )
    def get(self, request, user, device):
        found = self.found()
        days = int_param(request, "days", 30, minimum=1, maximum=STATS_MAX_DAYS)
        if not _wants_event_stream(request):
            return ok(selectors.device_stats(found, days))
        response = StreamingHttpResponse(
            stats_events(found, days), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
        return response


class ActivityOutput(serializers.Serializer):
    ts = serializers.IntegerField(help_text="ms, the last such call")
    first_ts = serializers.IntegerField(help_text="ms, the first of the calls this row counts")
    status = serializers.IntegerField(help_text="the HTTP status answered")
    reason = serializers.CharField(help_text="why nothing was stored")
    count = serializers.IntegerField(help_text="calls refused alike, one after another")
    ip_address = serializers.CharField(allow_null=True, help_text="the last one's address")
    rx_bytes = serializers.IntegerField(help_text="the last one's size")


class DeviceActivityView(_DeviceView):
    actions = {"GET": ("Device", "ReadDeviceStatistics")}

    @extend_schema(
        responses={200: ActivityOutput(many=True)},
        operation_id="Device_ReadActivity",
        description="The device's recent calls that stored nothing, newest first: refused "
        "(401, 403, 405, 413, 429, 400...) or ignored (a body that is not JSON, answered 200). "
        "Refusals alike in a row count on one entry; the newest 50 entries are kept.",
    )
    def get(self, request, user, device):
        return ok(selectors.device_activity_out(self.found()))


class DeviceStatsV1View(DeviceStatsView):
    """The deprecated ``/v1/...`` path of the same statistics."""

    @extend_schema(
        responses={
            (200, "application/json"): StatsOutput,
            (200, "text/event-stream"): OpenApiTypes.STR,
        },
        operation_id="Device_ReadStatisticsV1",
        deprecated=True,
        description="Use GET /v3/users/{user}/devices/{device}/stats.",
    )
    def get(self, request, user, device):
        return super().get(request, user, device)


# Properties.

_PROPERTY_NAMES = {"identifier": "property", "__all__": "property"}


class PropertyInput(ClosedSerializer):
    property = IdentifierField()
    name = StrictCharField(max_length=255, allow_blank=True, required=False)
    description = StrictCharField(max_length=255, allow_blank=True, required=False)
    value = JSONValueField()
    # Accepted as the reference allows, and not kept: no console forms or member permissions.
    type = StrictCharField(
        required=False,
        allow_blank=True,
        validators=[RegexValidator(r"^(configuration)?\Z", 'must be "" or "configuration"')],
    )
    form = serializers.JSONField(required=False)
    perm = serializers.JSONField(required=False)


class PropertyUpdateInput(PropertyInput):
    property = IdentifierField(required=False, help_text="the path's id only")


class PropertyOutput(serializers.Serializer):
    property = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    value = serializers.JSONField(allow_null=True)


def property_out(prop):
    return {
        "property": prop.identifier,
        "name": prop.name,
        "description": prop.description,
        "value": prop.value,
    }


def _property_fields(data):
    return {name: data[name] for name in ("value", "name", "description") if name in data}


_ONE_OR_MANY_IN = PolymorphicProxySerializer(
    component_name="PropertyCreate",
    serializers=[PropertyInput, PropertyInput(many=True)],
    resource_type_field_name=None,
    many=False,
)
_ONE_OR_MANY_OUT = PolymorphicProxySerializer(
    component_name="PropertyCreated",
    serializers=[PropertyOutput, PropertyOutput(many=True)],
    resource_type_field_name=None,
    many=False,
)


class PropertyListView(_DeviceView):
    actions = {
        "GET": ("Device", "ListDeviceProperties"),
        "POST": ("Device", "CreateDeviceProperty"),
    }

    @extend_schema(
        responses={200: PropertyOutput(many=True)},
        operation_id="Device_ListProperties",
        description="The device's properties, sorted by id.",
    )
    def get(self, request, user, device):
        return ok([property_out(prop) for prop in selectors.device_properties(self.found())])

    @extend_schema(
        request=_ONE_OR_MANY_IN,
        responses={200: _ONE_OR_MANY_OUT},
        operation_id="Device_CreateProperty",
        description="One property, or an array of them (all or none are created); answers "
        "with what was created, in the same shape.",
    )
    def post(self, request, user, device):
        found = self.found()
        many = isinstance(request.data, list)
        items = [validated(PropertyInput, request.data)] if not many else []
        for index, item in enumerate(request.data if many else []):
            serializer = PropertyInput(data=item)
            if not serializer.is_valid():
                raise exceptions.ValidationError({f"[{index}]": serializer.errors})
            items.append(serializer.validated_data)
        try:
            created = services.property_create_many(
                device=found,
                items=[
                    {"identifier": item["property"], **_property_fields(item)} for item in items
                ],
            )
        except ModelValidationError as exc:
            prefix = f"[{exc.index}]." if many else ""
            raise model_error(exc, _PROPERTY_NAMES, prefix=prefix) from None
        out = [property_out(prop) for prop in created]
        return ok(out if many else out[0])


class PropertyDetailView(_DeviceView):
    actions = {
        "GET": ("Device", "ReadDeviceProperty"),
        "PUT": ("Device", "UpdateDeviceProperty"),
        "PATCH": ("Device", "UpdateDeviceProperty"),
        "DELETE": ("Device", "DeleteDeviceProperty"),
    }

    def prop(self):
        found = selectors.device_property(self.found(), self.kwargs["property"])
        if found is None:
            raise Http404(f"property {self.kwargs['property']!r} not found")
        return found

    def _input(self, request, prop, partial=False):
        data = validated(PropertyUpdateInput, request.data, partial=partial)
        return without_id(data, "property", prop.identifier)

    @extend_schema(
        responses={200: PropertyOutput},
        operation_id="Device_ReadProperty",
        description="The property with its value; 404 when the device has no such property.",
    )
    def get(self, request, user, device, property):
        return ok(property_out(self.prop()))

    @extend_schema(
        request=PropertyUpdateInput,
        responses={200: PropertyOutput},
        operation_id="Device_UpdateProperty",
        description="Replaces the value; name and description change when given.",
    )
    def put(self, request, user, device, property):
        prop = self.prop()
        data = self._input(request, prop)
        try:
            services.property_update(prop=prop, **_property_fields(data))
        except ModelValidationError as exc:
            raise model_error(exc, _PROPERTY_NAMES) from None
        return ok(property_out(prop))

    @extend_schema(
        request=PropertyUpdateInput,
        responses={200: PropertyOutput},
        operation_id="Device_PatchProperty",
        description="Merges `value`, when given, into the value as a JSON merge patch (RFC 7396): "
        "an object merges into an object (a null member removes that key); any other value "
        "replaces it. Name and description change when given.",
    )
    def patch(self, request, user, device, property):
        prop = self.prop()
        data = self._input(request, prop, partial=True)
        try:
            prop = services.property_patch(prop=prop, **_property_fields(data))
        except ModelValidationError as exc:
            raise model_error(exc, _PROPERTY_NAMES) from None
        return ok(property_out(prop))

    @extend_schema(
        responses={200: None},
        operation_id="Device_DeleteProperty",
        description="Callback actions that set or send this property are switched off.",
    )
    def delete(self, request, user, device, property):
        services.property_delete(prop=self.prop())
        return ok()


# The buckets a device writes (Thinger.io's device-scoped bucket routes).


class DeviceBucketListView(_DeviceView):
    actions = {"GET": ("Device", "ListDeviceBuckets")}

    @extend_schema(
        responses={200: BucketOutput(many=True)},
        operation_id="Device_ListBuckets",
        description="The buckets the device's callback writes to.",
    )
    def get(self, request, user, device):
        buckets = selectors.device_buckets(self.found())
        return ok([bucket_out(bucket) for bucket in buckets])


class DeviceBucketReadView(_DeviceView):
    """``/{version}/users/{user}/devices/{device}/buckets/{bucket}/data``, version v1 to v3."""

    actions = {"GET": ("Device", "ReadDeviceBucket")}

    @extend_schema(
        parameters=[
            OpenApiParameter("version", str, OpenApiParameter.PATH, enum=["v1", "v2", "v3"]),
            *READ_PARAMETERS,
        ],
        responses={200: RecordOutput(many=True)},
        operation_id="Device_ReadBucketData",
        description="Reads a bucket the device's callback writes to (404 for any other).",
    )
    def get(self, request, version, user, device, bucket):
        found = selectors.device_buckets(self.found()).filter(identifier=bucket).first()
        if found is None:
            raise Http404(f"device {device!r} does not write to a bucket {bucket!r}")
        return ok(read_records(request, found))

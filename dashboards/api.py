"""The dashboards part of the REST API, in the shape of the other assets (and of Thinger.io's
``/v1/users/{user}/dashboards``): list, create, read, update, delete, and what the widgets show
now in one request (``.../data``).

Every success is exactly 200: JSON, or empty for deletes. A widget or layout that may not be
saved is a 400 naming it by position and field (``widgets[0].source.device: ...``).
"""

from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, serializers

from core.api import PAGE_PARAMETERS, AssetDetailView, AssetListView, AssetView, ok, page
from core.api_fields import (
    ClosedSerializer,
    IdentifierField,
    JSONValueField,
    StrictBooleanField,
    StrictCharField,
)
from core.api_policy import JSONParser
from core.times import to_ms
from dashboards import selectors, services
from dashboards.widgets import (
    DEVICE_FIELDS,
    GRID_COLUMNS,
    GRID_MAX_HEIGHT,
    GRID_MAX_ROW,
    KINDS,
    MAX_SERIES,
    MAX_WIDGETS,
)

_ID = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,32}$"}
_FIELD = {"type": "string", "description": "a field, nested ones by a dotted path (gps.lat)"}
_RANGE = {
    "type": "object",
    "description": 'the records of the last interval ({"last": "1d"}: a number and s, m, h, d '
    'or w) or between two times ({"from": ms, "to": ms}, "to" absent: now); default the last '
    "day",
    "properties": {
        "last": {"type": "string"},
        "from": {"type": "integer", "minimum": 0},
        "to": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
WIDGET_SCHEMA = {
    "type": "object",
    "required": ["id", "type", "source"],
    "properties": {
        "id": _ID,
        "type": {"type": "string", "enum": list(KINDS)},
        "title": {"type": "string", "maxLength": 255},
        "subtitle": {"type": "string", "maxLength": 255},
        "background": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
        "source": {
            "oneOf": [
                {
                    "type": "object",
                    "description": "a device property's value, or a field of it",
                    "required": ["kind", "device", "property"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["property"]},
                        "device": _ID,
                        "property": _ID,
                        "field": _FIELD,
                    },
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "description": "a bucket: the field of its last record; a chart's fields "
                    "over a range (aggregated per interval if asked, or if the range holds "
                    "more than 1,000 records); a map's records over a range",
                    "required": ["kind", "bucket"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["bucket"]},
                        "bucket": _ID,
                        "field": _FIELD,
                        "fields": {
                            "type": "array",
                            "items": _FIELD,
                            "minItems": 1,
                            "maxItems": MAX_SERIES,
                        },
                        "range": _RANGE,
                        "aggregation": {
                            "type": "object",
                            "properties": {
                                "interval": {"type": "string", "description": "5m, 1h, 1d..."},
                                "type": {
                                    "type": "string",
                                    "enum": ["mean", "min", "max", "sum", "count"],
                                },
                            },
                            "required": ["interval"],
                            "additionalProperties": False,
                        },
                    },
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "description": "a device's status, last call (ms) or calls today",
                    "required": ["kind", "device"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["device"]},
                        "device": _ID,
                        "field": {"type": "string", "enum": list(DEVICE_FIELDS)},
                    },
                    "additionalProperties": False,
                },
            ]
        },
        "options": {
            "type": "object",
            "description": "by type: value unit, decimals; gauge min, max, unit, decimals, "
            'ranges [{"from", "to", "color"}]; donut min, max, unit, decimals, color; led '
            "color, ranges, blink; map lat, lng (field names); switch on, off (the values "
            "written); slider min, max, step; chart unit",
        },
    },
    "additionalProperties": False,
}
_POSITION = {
    "type": "object",
    "required": ["x", "y", "w", "h"],
    "properties": {
        "x": {"type": "integer", "minimum": 0, "maximum": GRID_COLUMNS - 1},
        "y": {"type": "integer", "minimum": 0, "maximum": GRID_MAX_ROW},
        "w": {"type": "integer", "minimum": 1, "maximum": GRID_COLUMNS},
        "h": {"type": "integer", "minimum": 1, "maximum": GRID_MAX_HEIGHT},
    },
    "additionalProperties": False,
}
LAYOUT_SCHEMA = {
    "type": "object",
    "description": f"each widget's place on a grid of {GRID_COLUMNS} columns, by widget id "
    "(x + w at most 12); a widget without one goes below the others",
    "additionalProperties": _POSITION,
}


# Any JSON but null (numbers too large for a double refused): the service judges the rest.
class _JSONDocumentField(JSONValueField):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.allow_null = False


@extend_schema_field(
    {"type": "array", "items": WIDGET_SCHEMA, "maxItems": MAX_WIDGETS, "description": "widgets"}
)
class _WidgetsField(_JSONDocumentField):
    pass


@extend_schema_field(LAYOUT_SCHEMA)
class _LayoutField(_JSONDocumentField):
    pass


class DashboardCreateInput(ClosedSerializer):
    dashboard = IdentifierField()
    name = StrictCharField(max_length=255, allow_blank=True, required=False)
    description = StrictCharField(max_length=255, allow_blank=True, required=False)
    enabled = StrictBooleanField(required=False)
    widgets = _WidgetsField(required=False)
    layout = _LayoutField(required=False)
    device_from_selector = StrictBooleanField(
        required=False,
        help_text="a template: `.../data?device=` picks the device its widgets naming a device "
        "read (default: the first they name); buckets stay as they are",
    )
    share_controls = StrictBooleanField(
        required=False, help_text="whether the control widgets work on the shared link"
    )


class DashboardUpdateInput(DashboardCreateInput):
    dashboard = IdentifierField(required=False)
    widgets = _WidgetsField(
        required=False,
        help_text="replaces the whole list; positions of the widgets kept stay unless "
        "`layout` is given too",
    )


class DashboardOutput(serializers.Serializer):
    dashboard = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    widgets = _WidgetsField()
    layout = _LayoutField()
    device_from_selector = serializers.BooleanField()
    shared = serializers.BooleanField(help_text="whether it has a read-only link")
    share_controls = serializers.BooleanField()
    created = serializers.IntegerField()
    modified = serializers.IntegerField()


def dashboard_out(dashboard):
    return {
        "dashboard": dashboard.identifier,
        "name": dashboard.name,
        "description": dashboard.description,
        "enabled": dashboard.enabled,
        "widgets": dashboard.widgets,
        "layout": dashboard.layout,
        "device_from_selector": dashboard.device_from_selector,
        "shared": dashboard.share_token is not None,
        "share_controls": dashboard.share_controls,
        "created": to_ms(dashboard.created),
        "modified": to_ms(dashboard.modified),
    }


_DATA = inline_serializer(
    "DashboardData",
    {
        "ts": serializers.IntegerField(help_text="when it was read (ms)"),
        "widgets": serializers.DictField(
            child=serializers.DictField(),
            help_text='by widget id: {"value", "ts"}; a chart {"from", "to", "interval", '
            '"aggregation", "series": [{"field", "points": [[ts, value]]}]}; a map {"points": '
            '[{"lat", "lng", "ts"}]}; a device status {"status", "connected", "last_call", '
            '"calls_today"}; a source deleted since: {"value": null, "ts": null, "unavailable"}',
        ),
    },
)


def _fields(data):
    return {
        name: data[name]
        for name in (
            "name",
            "description",
            "enabled",
            "widgets",
            "layout",
            "device_from_selector",
            "share_controls",
        )
        if name in data
    }


class _DashboardView(AssetView):
    asset = resource_kwarg = "dashboard"
    parser_classes = [JSONParser]
    out = staticmethod(dashboard_out)

    def find(self, **path):
        return selectors.dashboard_by_path(**path)


@extend_schema_view(
    post=extend_schema(
        request=DashboardCreateInput,
        responses={200: DashboardOutput},
        operation_id="Dashboard_Create",
        description="Each widget reads one of your devices, properties or buckets: a widget or "
        "position that may not be saved is a 400 naming it, such as "
        "`widgets[0].source.device`.",
    )
)
class DashboardListView(AssetListView, _DashboardView):
    actions = {"GET": ("Dashboard", "ListDashboards"), "POST": ("Dashboard", "CreateDashboard")}
    create_input = DashboardCreateInput

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("name", str, description="part of the id or the name"),
        ],
        responses={200: DashboardOutput(many=True)},
        operation_id="Dashboard_List",
    )
    def get(self, request, user):
        owner = self.path_owner()
        rows = selectors.dashboards_of(
            username=owner.username, name=request.query_params.get("name", "").strip()
        )
        return ok([dashboard_out(dashboard) for dashboard in page(request, rows)])

    def create(self, owner, identifier, data):
        return services.dashboard_create(owner=owner, identifier=identifier, **_fields(data))


@extend_schema_view(
    get=extend_schema(responses={200: DashboardOutput}, operation_id="Dashboard_Read"),
    put=extend_schema(
        request=DashboardUpdateInput,
        responses={200: DashboardOutput},
        operation_id="Dashboard_Update",
        description="A partial update: absent fields keep their values; `widgets` and `layout` "
        "each replace the whole.",
    ),
    delete=extend_schema(
        responses={200: None}, operation_id="Dashboard_Delete", description="Deletes it."
    ),
)
class DashboardDetailView(AssetDetailView, _DashboardView):
    actions = {
        "GET": ("Dashboard", "ReadDashboard"),
        "PUT": ("Dashboard", "UpdateDashboard"),
        "DELETE": ("Dashboard", "DeleteDashboard"),
    }
    update_input = DashboardUpdateInput

    def update(self, dashboard, data):
        services.dashboard_update(dashboard=dashboard, **_fields(data))

    def remove(self, dashboard):
        services.dashboard_delete(dashboard=dashboard)


class DashboardDataView(_DashboardView):
    actions = {"GET": ("Dashboard", "ReadDashboardData")}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "device",
                str,
                description="on a dashboard with `device_from_selector`: the device its widgets "
                "naming a device read (one of the user's; default: the first they name)",
            )
        ],
        responses={200: _DATA},
        operation_id="Dashboard_ReadData",
        description="What each widget shows now, read in one request: property values, the "
        "last records or the series of buckets (a range of more than 1,000 records as means "
        "per interval, computed in the database), device status.",
    )
    def get(self, request, user, dashboard):
        found = self.found()
        device = request.query_params.get("device", "").strip() or None
        if device is not None and found.device_from_selector:
            if selectors.selectable_device(found, device) is None:
                raise Http404(f"device {device!r} not found")
        elif device is not None:
            raise exceptions.ValidationError(
                {"device": "this dashboard has no device selector (device_from_selector)"}
            )
        return ok(selectors.dashboard_data(found, device=device))


_SHARE = inline_serializer(
    "DashboardShare",
    {
        "token": serializers.CharField(help_text="the link's token: shown this once"),
        "url": serializers.CharField(help_text="the read-only link"),
    },
)


class DashboardShareView(_DashboardView):
    actions = {"POST": ("Dashboard", "UpdateDashboard"), "DELETE": ("Dashboard", "UpdateDashboard")}

    @extend_schema(
        request=None,
        responses={200: _SHARE},
        operation_id="Dashboard_Share",
        description="A new read-only link to the dashboard, opened without a login; the link "
        "made before stops working. Its token is in this answer only: it is not stored.",
    )
    def post(self, request, user, dashboard):
        token = services.dashboard_share(dashboard=self.found())
        url = request.build_absolute_uri(reverse("shared-dashboard", args=[token]))
        return ok({"token": token, "url": url})

    @extend_schema(
        responses={200: None},
        operation_id="Dashboard_Unshare",
        description="Revokes the read-only link.",
    )
    def delete(self, request, user, dashboard):
        services.dashboard_unshare(dashboard=self.found())
        return ok()

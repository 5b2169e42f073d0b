"""Reads of dashboards, and what their widgets show now (``dashboard_data``), for the API and
the console.

``dashboard_data`` reads every source of a dashboard in a bounded number of queries: one for its
devices, one for their calls today, one for its properties, one for its buckets with each one's
last record, whatever the number of widgets; then each chart or map reads its range (a chart:
the rule of ``buckets.aggregates.bucket_chart``: the records themselves when the range holds
few enough, else aggregates per interval computed in the database).
"""

import hashlib

from django.db.models import F, JSONField, OuterRef, Q, Subquery
from django.utils import timezone

from buckets.aggregates import bucket_chart
from buckets.api import interval_ms
from buckets.models import Bucket, BucketRecord
from buckets.selectors import bucket_records
from core.times import to_ms
from dashboards.models import Dashboard
from dashboards.widgets import DEFAULT_RANGE, KINDS, references
from devices.models import Device, DeviceDailyStats, Property

# A map shows at most this many records of its range, the newest.
MAP_POINTS = 500


def dashboards_of(*, username, name=""):
    """The user's dashboards by id; ``name``: only those with it in their id or name."""
    rows = Dashboard.objects.filter(owner__username=username).order_by("identifier")
    if name:
        rows = rows.filter(Q(identifier__icontains=name) | Q(name__icontains=name))
    return rows


def dashboard_by_path(*, username, identifier):
    """The dashboard ``{dashboard}`` of user ``{user}``, or None."""
    return (
        Dashboard.objects.select_related("owner")
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


def share_token_hash(token):
    """What a dashboard stores of its share token: the SHA-256 of it, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def dashboard_by_share_token(token):
    """The enabled dashboard whose read-only link has ``token``, or None (a wrong or revoked
    token, a disabled dashboard)."""
    if not isinstance(token, str) or not token:
        return None
    return (
        Dashboard.objects.select_related("owner")
        .filter(share_token=share_token_hash(token), enabled=True)
        .first()
    )


def default_device(dashboard):
    """The device a dashboard with a selector shows when none is picked: the first device its
    widgets name, or None."""
    for widget in dashboard.widgets:
        if widget["source"]["kind"] != "bucket":
            return widget["source"]["device"]
    return None


def selectable_device(dashboard, identifier):
    """The owner's device ``identifier`` picked in a dashboard's selector, or None when the owner
    has no such device."""
    return Device.objects.filter(owner_id=dashboard.owner_id, identifier=identifier).first()


def widgets_on_device(widgets, device):
    """``widgets`` with every source naming a device (a property's, a device's) reading
    ``device`` instead; bucket sources stay as they are."""
    return [
        {**widget, "source": {**widget["source"], "device": device}}
        if widget["source"]["kind"] != "bucket"
        else widget
        for widget in widgets
    ]


def field_value(value, path):
    """The field of a JSON value at a dotted path (``gps.lat``; a number indexes a list), or
    None when it has none; the whole value when ``path`` is empty."""
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _number(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def range_bounds(value, now_ms):
    """(from, to) in ms of a widget's range (``DEFAULT_RANGE`` when it has none)."""
    value = value or DEFAULT_RANGE
    if "last" in value:
        return now_ms - interval_ms(value["last"]), now_ms
    high = value.get("to")
    return value["from"], now_ms if high is None else high


class _Sources:
    """Everything a dashboard's widgets name, read at once: devices (with their calls today and
    the property their callback answers with), properties, and buckets with their last
    record."""

    def __init__(self, dashboard, widgets):
        devices, properties, buckets = references(widgets)
        owner = dashboard.owner_id
        self.devices = {}
        self.calls_today = {}
        if devices:
            self.devices = {
                device.identifier: device
                for device in Device.objects.filter(owner_id=owner, identifier__in=devices)
                .only("identifier", "connected", "last_call_at")
                .annotate(answers_with=F("callback__send_property__identifier"))
            }
            today = timezone.localdate(timezone.now(), timezone.get_default_timezone())
            self.calls_today = dict(
                DeviceDailyStats.objects.filter(
                    device__in=[device.pk for device in self.devices.values()], date=today
                ).values_list("device__identifier", "calls")
            )
        self.properties = {}
        if properties:
            rows = Property.objects.filter(
                device__owner_id=owner,
                device__identifier__in={device for device, _ in properties},
                identifier__in={prop for _, prop in properties},
            ).values_list("device__identifier", "identifier", "value", "modified")
            self.properties = {
                (device, prop): (value, modified) for device, prop, value, modified in rows
            }
        self.buckets = {}
        if buckets:
            last = BucketRecord.objects.filter(bucket=OuterRef("pk")).order_by("-ts")
            rows = (
                Bucket.objects.filter(owner_id=owner, identifier__in=buckets)
                .annotate(
                    last_ts=Subquery(last.values("ts")[:1]),
                    last_value=Subquery(last.values("value")[:1], output_field=JSONField()),
                )
                .only("identifier")
            )
            self.buckets = {bucket.identifier: bucket for bucket in rows}


def _gone(what):
    return {"value": None, "ts": None, "unavailable": f"{what} no longer exists"}


def _device_value(device, field, calls_today):
    if field == "status":
        return device.status
    if field == "last_call":
        return to_ms(device.last_call_at)
    return calls_today


def _device_status(device, calls_today):
    return {
        "status": device.status,
        "connected": device.connected,
        "last_call": to_ms(device.last_call_at),
        "calls_today": calls_today,
    }


def _chart(bucket, source, now_ms):
    """The series of a chart: ``{"from", "to", "interval", "aggregation", "series": [{"field",
    "points": [[ts, value], ...]}]}``, oldest first; ``interval`` is None for raw records. What
    it draws is the bucket chart's rule (``bucket_chart``), over the fields it names."""
    low, high = range_bounds(source.get("range"), now_ms)
    fields = source["fields"]
    step, agg_type = None, None
    aggregation = source.get("aggregation")
    if aggregation is not None:
        step, agg_type = interval_ms(aggregation["interval"]), aggregation.get("type", "mean")
    step, rows = bucket_chart(
        bucket=bucket, min_ts=low, max_ts=high, fields=fields, step_ms=step, agg_type=agg_type
    )
    if step is not None and agg_type is None:
        agg_type = "mean"
    points = {name: [] for name in fields}
    for row in rows:
        value = row["val"]
        for name in fields:
            if step is None:
                number = _number(field_value(value, name))
            else:
                number = _number(value.get(name)) if isinstance(value, dict) else None
            if number is not None:
                points[name].append([row["ts"], number])
    return {
        "from": low,
        "to": high,
        "interval": step,
        "aggregation": agg_type,
        "series": [{"field": name, "points": points[name]} for name in fields],
    }


def _point(value, options, ts):
    lat = _number(field_value(value, options.get("lat", "lat")))
    lng = _number(field_value(value, options.get("lng", "lng")))
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return {"lat": lat, "lng": lng, "ts": ts}


def _map_records(bucket, source, options, now_ms):
    low, high = range_bounds(source.get("range"), now_ms)
    rows = bucket_records(bucket=bucket, items=MAP_POINTS, min_ts=low, max_ts=high)
    points = [_point(value, options, ts) for ts, value, _ in reversed(rows)]
    return {"from": low, "to": high, "points": [point for point in points if point]}


def _pickup(device, prop, modified):
    """Whether the device has picked up its property's current value: ``{"state": "picked_up",
    "at": its call}`` when its callback answers with the property and it called since the value
    changed, ``{"state": "waiting"}`` until it calls, ``{"state": "not_answered"}`` when its
    callback answers with another property or none."""
    if device.answers_with != prop:
        return {"state": "not_answered", "at": None}
    called = device.last_call_at
    if called is not None and called >= modified:
        return {"state": "picked_up", "at": to_ms(called)}
    return {"state": "waiting", "at": None}


def _widget_data(widget, sources, now_ms):
    kind = KINDS[widget["type"]]
    source = widget["source"]
    options = widget.get("options", {})
    if source["kind"] == "bucket":
        bucket = sources.buckets.get(source["bucket"])
        if bucket is None:
            return _gone(f'bucket "{source["bucket"]}"')
        if kind.type == "chart":
            return _chart(bucket, source, now_ms)
        if kind.type == "map":
            return _map_records(bucket, source, options, now_ms)
        return {"value": field_value(bucket.last_value, source.get("field")), "ts": bucket.last_ts}
    device = sources.devices.get(source["device"])
    if device is None:
        return _gone(f'device "{source["device"]}"')
    if source["kind"] == "device":
        calls = sources.calls_today.get(device.identifier, 0)
        if kind.type == "device_status":
            return _device_status(device, calls)
        return {"value": _device_value(device, source["field"], calls), "ts": now_ms}
    found = sources.properties.get((source["device"], source["property"]))
    if found is None:
        return _gone(f'property "{source["property"]}" of device "{source["device"]}"')
    value, modified = found
    value = field_value(value, source.get("field"))
    if kind.type == "map":
        point = _point(value, options, to_ms(modified))
        return {"points": [point] if point else []}
    if kind.control:
        pickup = _pickup(device, source["property"], modified)
        return {"value": value, "ts": to_ms(modified), "pickup": pickup}
    return {"value": value, "ts": to_ms(modified)}


def dashboard_data(dashboard, *, now_ms=None, device=None, only=None):
    """What each widget of ``dashboard`` shows now: ``{"ts": now, "widgets": {id: data}}``;
    ``only``: of the widgets with these ids only (others unknown are left out).

    A widget's data is ``{"value", "ts"}`` (a property's field and when the property changed, a
    bucket's last record's field and its time, or a device's status, last call or calls today);
    for a chart ``{"from", "to", "interval", "aggregation", "series"}``; for a map
    ``{"points": [{"lat", "lng", "ts"}]}``; for a device status widget ``{"status",
    "connected", "last_call", "calls_today"}``; a control widget's has ``"pickup"`` too,
    whether the device has picked up the value (``_pickup``). A source deleted since the widget
    was saved gives ``{"value": null, "ts": null, "unavailable": why}``.

    ``device``: the device picked in the selector of a dashboard that has one; its widgets
    naming a device read it instead (the caller checks that the owner has it).
    """
    now_ms = to_ms(timezone.now()) if now_ms is None else now_ms
    widgets = dashboard.widgets
    if device is not None and dashboard.device_from_selector:
        widgets = widgets_on_device(widgets, device)
    if only is not None:
        widgets = [widget for widget in widgets if widget["id"] in only]
    sources = _Sources(dashboard, widgets)
    return {
        "ts": now_ms,
        "widgets": {widget["id"]: _widget_data(widget, sources, now_ms) for widget in widgets},
    }


def dashboard_for_live(*, user=None, username=None, identifier=None, token=None, device=None):
    """What a live socket (``dashboards.live``) may follow: ``(dashboard, its widgets as the
    page shows them)``, or None. The one check of who may open a dashboard's socket:

    - ``{user}``'s dashboard ``{dashboard}`` when ``user`` (the console's session) owns it, on
      the device its selector picked (``device``: one of the owner's, else None);
    - the dashboard of a read-only link's ``token``, on its own device.
    """
    if token is not None:
        dashboard = dashboard_by_share_token(token)
        return None if dashboard is None else (dashboard, dashboard.widgets)
    if user is None or user.username != username:
        return None
    dashboard = dashboard_by_path(username=username, identifier=identifier)
    if dashboard is None:
        return None
    if not device or not dashboard.device_from_selector:
        return dashboard, dashboard.widgets
    if selectable_device(dashboard, device) is None:
        return None
    return dashboard, widgets_on_device(dashboard.widgets, device)

"""Dashboards: create, change and delete them, with their widgets and layout checked.

``dashboards.widgets`` decides what the JSON may hold; here is the rule it cannot check alone:
each widget reads a device, property or bucket of the dashboard's owner, looked up in three
queries whatever the number of widgets.
"""

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction

from buckets.models import Bucket
from core.db import insert_unique, save_changes, updatable
from dashboards.models import Dashboard
from dashboards.selectors import share_token_hash
from dashboards.widgets import (
    KINDS,
    Errors,
    layout_errors,
    references,
    scale,
    widget_by_id,
    widget_errors,
)
from devices.models import Device, Property
from devices.services import property_update


def _reference_errors(owner, widgets):
    """Each source naming a device, property or bucket the owner does not have."""
    devices, properties, buckets = references(widgets)
    known_devices = set(
        Device.objects.filter(owner=owner, identifier__in=devices).values_list(
            "identifier", flat=True
        )
    )
    known_properties = set()
    if properties:
        known_properties = set(
            Property.objects.filter(
                device__owner=owner,
                device__identifier__in={device for device, _ in properties},
                identifier__in={prop for _, prop in properties},
            ).values_list("device__identifier", "identifier")
        )
    known_buckets = set()
    if buckets:
        known_buckets = set(
            Bucket.objects.filter(owner=owner, identifier__in=buckets).values_list(
                "identifier", flat=True
            )
        )
    errors = Errors()
    for index, widget in enumerate(widgets):
        where, source, named = (
            f"widgets[{index}].source",
            widget["source"],
            f'widget "{widget["id"]}"',
        )
        if source["kind"] == "bucket":
            if source["bucket"] not in known_buckets:
                errors.add(f"{where}.bucket", f'you have no bucket "{source["bucket"]}" ({named})')
        elif source["device"] not in known_devices:
            errors.add(f"{where}.device", f'you have no device "{source["device"]}" ({named})')
        elif source["kind"] == "property" and (source["device"], source["property"]) not in (
            known_properties
        ):
            errors.add(
                f"{where}.property",
                f'device "{source["device"]}" has no property "{source["property"]}" ({named})',
            )
    return errors


def dashboard_check(*, owner, widgets, layout, references=True):
    """Raise a ValidationError of ``{"widgets[0].source.device": [message]}`` (the widget by its
    position, the field by its path) when the widgets or the layout may not be saved for
    ``owner``; ``references``: whether to check that the sources name the owner's own
    devices, properties and buckets."""
    errors = widget_errors(widgets)
    if not errors:
        errors = layout_errors(layout, widgets)
        if not errors and references:
            errors = _reference_errors(owner, widgets)
    if errors:
        raise ValidationError(errors.found)


@transaction.atomic
def dashboard_create(
    *,
    owner,
    identifier,
    name="",
    description="",
    enabled=True,
    widgets=None,
    layout=None,
    device_from_selector=False,
    share_controls=False,
):
    """A new dashboard of ``owner``; its widgets must read the owner's own devices, properties
    and buckets."""
    dashboard = Dashboard(
        owner=owner,
        identifier=identifier,
        name=name,
        description=description,
        enabled=enabled,
        widgets=[] if widgets is None else widgets,
        layout={} if layout is None else layout,
        device_from_selector=device_from_selector,
        share_controls=share_controls,
    )
    dashboard.full_clean(validate_constraints=False)
    dashboard_check(owner=owner, widgets=dashboard.widgets, layout=dashboard.layout)
    return insert_unique(dashboard)


_UPDATABLE = {
    "name",
    "description",
    "enabled",
    "widgets",
    "layout",
    "device_from_selector",
    "share_controls",
}


@transaction.atomic
def dashboard_update(*, dashboard, **fields):
    """Change some of a dashboard's settings (a partial update); its id never changes.

    ``widgets`` replaces the whole list; its sources are checked against the owner's devices,
    properties and buckets (not when only the layout or the name change: a widget of a device
    deleted since shows that it is gone, and the dashboard can still be renamed). New widgets
    without a new ``layout`` keep the positions of the widgets that stay. On a ValidationError
    ``dashboard`` is left as it was.
    """
    updatable("dashboard_update", fields, _UPDATABLE)
    if isinstance(fields.get("widgets"), list) and "layout" not in fields:
        kept = {
            widget.get("id")
            for widget in fields["widgets"]
            if isinstance(widget, dict) and isinstance(widget.get("id"), str)
        }
        fields["layout"] = {
            ident: place for ident, place in dashboard.layout.items() if ident in kept
        }
    before = {name: getattr(dashboard, name) for name in fields}
    for name, value in fields.items():
        setattr(dashboard, name, value)
    try:
        dashboard.full_clean(validate_constraints=False)
        if "widgets" in fields or "layout" in fields:
            dashboard_check(
                owner=dashboard.owner,
                widgets=dashboard.widgets,
                layout=dashboard.layout,
                references="widgets" in fields,
            )
    except ValidationError:
        for name, value in before.items():
            setattr(dashboard, name, value)
        raise
    return save_changes(dashboard, fields)


@transaction.atomic
def dashboard_widgets_change(*, dashboard, change):
    """Change a dashboard's widget list to what ``change(widgets)`` returns, given the list as
    stored now, with the row locked: two changes at once (two tabs adding a widget) both land,
    neither made on a list read before the other saved. ``change`` may raise ValidationError
    (the widget it edits was removed meanwhile); then, as on any error, nothing is saved."""
    stored = Dashboard.objects.select_for_update().only("widgets", "layout").get(pk=dashboard.pk)
    dashboard.widgets, dashboard.layout = stored.widgets, stored.layout
    return dashboard_update(dashboard=dashboard, widgets=change(list(stored.widgets)))


@transaction.atomic
def dashboard_delete(*, dashboard):
    dashboard.delete()


TEXT_INPUT_MAX = 1000


def _control_value(widget, value):
    """What a control widget writes for ``value`` as a form sends it (text)."""
    options = widget.get("options", {})
    kind = widget["type"]
    if kind == "switch":
        if value not in ("on", "off"):
            raise ValidationError({"value": 'a switch is turned "on" or "off"'})
        return options.get(value, value == "on")
    if kind == "slider":
        low, high = scale(KINDS["slider"], options)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise ValidationError({"value": f"must be a number from {low} to {high}"})
        whole = all(isinstance(options.get(name, 1), int) for name in ("min", "max", "step"))
        return int(number) if whole and number.is_integer() else number
    if not isinstance(value, str) or len(value) > TEXT_INPUT_MAX:
        raise ValidationError({"value": f"must be text of at most {TEXT_INPUT_MAX} characters"})
    return value


def _with_field(current, path, value):
    """``current`` with the field at a dotted ``path`` set to ``value`` (objects made on the
    way; a value that is not an object becomes one)."""
    root = dict(current) if isinstance(current, dict) else {}
    node = root
    *parents, last = path.split(".")
    for part in parents:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[last] = value
    return root


@transaction.atomic
def dashboard_control_write(*, dashboard, widget_id, value, device=None):
    """Write what a control widget (switch, slider, text input) sends to its property and return
    the property: a switch's ``on`` or ``off`` value (its options', true and false by default),
    a slider's number within its min and max, a text input's text. A widget with a ``field``
    changes only that field of the property's value. With the device's callback answering
    with that property, the device gets the value in the answer to its next call.

    ``device``: the device picked in the selector of a dashboard that has one, whose property
    is written instead (one of the owner's: another's is not found)."""
    widget = widget_by_id(dashboard.widgets, widget_id)
    if widget is None or not KINDS[widget["type"]].control:
        raise ValidationError({"widget": f'this dashboard has no control widget "{widget_id}"'})
    written = _control_value(widget, value)
    source = widget["source"]
    if device is not None and dashboard.device_from_selector:
        source = {**source, "device": device}
    prop = (
        Property.objects.select_for_update(of=("self",))
        .select_related("device__owner")
        .filter(
            device__owner_id=dashboard.owner_id,
            device__identifier=source["device"],
            identifier=source["property"],
        )
        .first()
    )
    if prop is None:
        raise ValidationError(
            {
                "widget": f'property "{source["property"]}" of device "{source["device"]}" '
                "no longer exists"
            }
        )
    if source.get("field"):
        written = _with_field(prop.value, source["field"], written)
    return property_update(prop=prop, value=written)


@transaction.atomic
def dashboard_share(*, dashboard):
    """A new read-only link for ``dashboard``: returns its token, which is not stored (only its
    SHA-256 is) and cannot be shown again; the link it had before stops working."""
    token = secrets.token_urlsafe(32)
    dashboard.share_token = share_token_hash(token)
    dashboard.save(update_fields=["share_token", "modified"])
    return token


@transaction.atomic
def dashboard_unshare(*, dashboard):
    """Revoke the dashboard's read-only link."""
    dashboard.share_token = None
    dashboard.save(update_fields=["share_token", "modified"])

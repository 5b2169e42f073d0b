"""Console pages for devices: list, create, edit, delete, and the device dashboard with its tabs
(Overview, Callback with Overview and Settings, Properties). Reads go through selectors, changes
through services; these views only turn requests into calls and results into pages."""

import json
import shlex
from datetime import date
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from buckets.selectors import bucket_records, buckets_of
from core.console import (
    ObjectDeleteView,
    ObjectEditView,
    add_service_errors,
    owned_or_404,
    paginate,
    register_tab,
    tabs_for,
)
from devices import selectors, services
from devices.forms import (
    AlertSettingsForm,
    CallbackSettingsForm,
    DeviceEditForm,
    DeviceForm,
    PropertyForm,
    json_text,
)
from devices.models import CallbackSettings, Device
from devices.selectors import (
    device_callback_credentials,
    device_callback_url,
    device_stats,
    devices_for_owner,
)
from endpoints.selectors import endpoints_of

SECTION = "devices"
DEVICES_PER_PAGE = 50
RECENT_EVENTS = 10
SAMPLE_PAYLOAD = {"temperature": 21.5, "humidity": 48}

register_tab("device", "overview", "Overview", "console-device")
register_tab("device", "callback", "Callback", "console-device-callback")
register_tab(
    "device",
    "properties",
    "Properties",
    "console-device-properties",
    badge=lambda device: device.property_count,
)
register_tab("device", "alerts", "Alerts", "console-device-alerts")
register_tab("device-callback", "overview", "Overview", "console-device-callback")
register_tab("device-callback", "settings", "Settings", "console-device-callback-settings")


def _device(request, identifier):
    """The user's device with what every dashboard tab shows, in one query (404 otherwise)."""
    devices = (
        Device.objects.select_related(
            "owner",
            "callback__write_bucket",
            "callback__set_property",
            "callback__call_endpoint",
            "callback__send_property",
        )
        .annotate(property_count=Count("properties"))
        .order_by()
    )
    return owned_or_404(devices, request.user, identifier=identifier)


def _callback(device):
    try:
        return device.callback
    except CallbackSettings.DoesNotExist:
        return CallbackSettings(device=device)


def _dashboard(request, device, tab, **context):
    return {
        "section": SECTION,
        "device": device,
        "tab": tab,
        "tab_items": tabs_for("device", device, [device.identifier]),
        **context,
    }


# List.


def _listed_devices(request):
    query = request.GET.get("q", "").strip()
    devices = devices_for_owner(request.user)
    if query:
        devices = devices_for_owner(request.user, identifier=query) | devices_for_owner(
            request.user, name=query
        )
    devices = devices.order_by("identifier", "pk")
    return query, paginate(request, devices, DEVICES_PER_PAGE)


@login_required
def device_list(request):
    query, page = _listed_devices(request)
    search = urlencode({"q": query}) if query else ""
    return render(
        request,
        "console/devices/list.html",
        {
            "section": SECTION,
            "page": page,
            "q": query,
            "query": search,
            "status_url": reverse("console-device-list-status") + (f"?{request.GET.urlencode()}"),
        },
    )


@login_required
def device_list_status(request):
    """The list's status dots and last calls, as fragments the page swaps in every few seconds."""
    _, page = _listed_devices(request)
    fragments = {}
    for device in page:
        fragments[f"status-{device.identifier}"] = _render_status(device)
        fragments[f"last-{device.identifier}"] = _render_time(device.last_call_at, "Never")
    return JsonResponse({"fragments": fragments})


def _render(template, **context):
    return mark_safe(render_to_string(template, context).strip())  # noqa: S308 (a template)


def _render_status(device):
    return _render("console/partials/status_dot.html", device=device)


def _render_time(moment, empty):
    return _render("console/partials/time.html", t=moment, empty=empty)


# Create, edit, delete.


class _DevicePage:
    """A page of one of the user's devices, found as the dashboard finds it."""

    section = SECTION
    url_kwarg = "device"

    def find(self, identifier):
        return _device(self.request, identifier)


class DeviceEditView(_DevicePage, ObjectEditView):
    template_name = "console/devices/form.html"
    context_object_name = "device"
    form_class = DeviceForm
    created_message = (
        "Device {obj.identifier} created. Send its first call with the URL and token below."
    )
    saved_message = "Device {obj.identifier} saved."
    return_url_name = "console-device"

    def get_form(self, obj):
        """Editing has a form of its own: the identifier and the type never change."""
        if obj is None:
            return super().get_form(obj)
        return DeviceEditForm(self.request.POST or None, initial=self.initial(obj))

    def initial(self, obj):
        return {"name": obj.name, "description": obj.description, "enabled": obj.enabled}

    def save(self, obj, form):
        if obj is None:
            return services.device_create(
                owner=self.request.user,
                identifier=form.cleaned_data["identifier"],
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                enabled=True,
            )
        return services.device_update(device=obj, **form.cleaned_data)

    def get_return_url(self, obj, *, created):
        """A new device opens on its callback, where its URL and token are."""
        if created:
            return reverse("console-device-callback", args=[obj.identifier])
        return super().get_return_url(obj, created=created)


class DeviceDeleteView(_DevicePage, ObjectDeleteView):
    deleted_message = "Device {obj.identifier} deleted."
    return_url_name = "console-device-list"

    def delete_object(self, obj):
        services.device_delete(device=obj)


# Dashboard: Overview.


def _traffic_chart(stats):
    days = [(date.fromisoformat(day["date"]), day) for day in stats["daily"]]
    return {
        "labels": [f"{when:%b} {when.day}" for when, _ in days],
        "rx": [day["rx_bytes"] for _, day in days],
        "tx": [day["tx_bytes"] for _, day in days],
        "calls": [day["calls"] for _, day in days],
    }


def _overview_fragments(device, stats, events, activity):
    """The dashboard's live parts, rendered once for the page and again for each poll."""
    return {
        "status": _render_status(device),
        "status_note": _render("console/devices/_status_note.html", device=device),
        "last_call": _render_time(device.last_call_at, "Never"),
        "remote_ip": escape(device.remote_ip or "—"),
        "calls": escape(f"{stats['calls']:,}"),
        "rx": escape(filesizeformat(stats["rx_bytes"])),
        "tx": escape(filesizeformat(stats["tx_bytes"])),
        "events": _render("console/devices/_events.html", events=events),
        "activity": _render("console/devices/_activity.html", activity=activity),
    }


def _overview_data(device):
    stats = device_stats(device, days=30)
    events = list(device.connection_events.order_by("-at", "-id")[:RECENT_EVENTS])
    activity = list(selectors.device_activity(device)[:RECENT_EVENTS])
    return stats, events, activity


@login_required
def device_detail(request, device):
    device = _device(request, device)
    stats, events, activity = _overview_data(device)
    context = _dashboard(
        request,
        device,
        "overview",
        fragments=_overview_fragments(device, stats, events, activity),
        chart=_traffic_chart(stats),
        callback=_callback(device),
        status_url=reverse("console-device-status", args=[device.identifier]),
    )
    return render(request, "console/devices/overview.html", context)


@login_required
def device_status(request, device):
    """What the dashboard refreshes without a reload: fragments and the chart's series."""
    device = owned_or_404(
        Device.objects.select_related("callback").order_by(), request.user, identifier=device
    )
    stats, events, activity = _overview_data(device)
    return JsonResponse(
        {
            "status": device.status,
            "fragments": _overview_fragments(device, stats, events, activity),
            "charts": {"traffic": _traffic_chart(stats)},
        }
    )


# Dashboard: Callback.


def _example_body(callback):
    """(payload, where it comes from): the last record the device stored, else the value it set,
    else a sample."""
    if callback.write_bucket_id:
        latest = list(bucket_records(bucket=callback.write_bucket, items=1))
        if latest:
            return latest[0][1], f"The last record stored in bucket {callback.write_bucket}."
    if callback.set_property_id and callback.set_property.value is not None:
        return (
            callback.set_property.value,
            f"The current value of property {callback.set_property.identifier}.",
        )
    return SAMPLE_PAYLOAD, "A sample body: send any JSON your device has."


def _host(scheme, netloc):
    """``host[:port]`` as typed, lowercased, without the scheme's default port."""
    host = netloc.lower().rsplit("@", 1)[-1]
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return host.removesuffix(default) if default else host


def _other_address(request, device):
    """The console opened at another address than ``PUBLIC_URL``'s (say 127.0.0.1:8000 while
    PUBLIC_URL names the server's public name): that address and the callback URL on it, for
    the page to say which one devices are given; None when the hosts are the same."""
    public = urlsplit(settings.PUBLIC_URL)
    if _host(request.scheme, request.get_host()) == _host(public.scheme, public.netloc):
        return None
    base = f"{request.scheme}://{request.get_host()}"
    return {"base": base, "url": device_callback_url(device, base=base)}


@login_required
def device_callback(request, device):
    device = _device(request, device)
    callback = _callback(device)
    url, token, full_url = device_callback_credentials(device)
    body, body_source = _example_body(callback)
    compact = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    curl = (
        f"curl -i -X POST {shlex.quote(url)} \\\n"
        f"  -H {shlex.quote('Authorization: Bearer ' + token)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(compact)}"
    )
    context = _dashboard(
        request,
        device,
        "callback",
        subtab="overview",
        subtab_items=tabs_for("device-callback", device, [device.identifier]),
        callback=callback,
        url=url,
        token=token,
        full_url=full_url,
        curl=curl,
        body=json.dumps(body, indent=2, ensure_ascii=False),
        body_source=body_source,
        public_url=settings.PUBLIC_URL,
        other_address=_other_address(request, device),
    )
    return render(request, "console/devices/callback.html", context)


@login_required
@require_POST
def device_token_rotate(request, device):
    device = _device(request, device)
    services.device_rotate_token(device=device)
    messages.success(
        request,
        "A new token was created. The old one stops working now: update your devices.",
    )
    return redirect("console-device-callback", device.identifier)


@login_required
def device_callback_settings(request, device):
    device = _device(request, device)
    callback = _callback(device)
    choices = {
        "buckets": buckets_of(username=request.user.username),
        "endpoints": endpoints_of(username=request.user.username),
        "properties": selectors.device_properties(device),
    }
    form = CallbackSettingsForm(
        request.POST or None, initial=CallbackSettingsForm.initial_for(callback), **choices
    )
    # Back from creating a bucket, endpoint or property for an action (_create_url).
    form.choose(request.GET.get("choose"), request.GET.get("created"))
    if request.method == "POST" and form.is_valid():
        try:
            services.callback_settings_update(
                device=device, actions=form.actions(), timeout=form.cleaned_data["timeout"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Callback settings saved.")
            return redirect("console-device-callback-settings", device.identifier)
    context = _dashboard(
        request,
        device,
        "callback",
        subtab="settings",
        subtab_items=tabs_for("device-callback", device, [device.identifier]),
        form=form,
        rows=[
            {**row, "create_url": _create_url(device, row["action"], row["kind"])}
            for row in form.bound_rows()
        ],
    )
    return render(request, "console/devices/callback_settings.html", context)


def _create_url(device, action, kind):
    """The page creating a bucket, endpoint or property for ``action``, which comes back to the
    settings with it chosen (``?next=...?choose=<action>``, then ``&created=<id>``)."""
    create = {
        "bucket": reverse("console-bucket-create"),
        "endpoint": reverse("console-endpoint-create"),
        "property": reverse("console-property-create", args=[device.identifier]),
    }[kind]
    back = reverse("console-device-callback-settings", args=[device.identifier])
    return f"{create}?{urlencode({'next': f'{back}?choose={action}'})}"


# Dashboard: Properties.


@login_required
def device_properties(request, device):
    device = _device(request, device)
    properties = selectors.device_properties(device)
    rows = [(prop, json.dumps(prop.value, ensure_ascii=False)) for prop in properties]
    context = _dashboard(request, device, "properties", rows=rows)
    return render(request, "console/devices/properties.html", context)


def _property(device, identifier):
    prop = selectors.device_property(device, identifier)
    if prop is None:
        raise Http404("No such property.")
    return prop


class _PropertyPage:
    """A page of a property, on its device's Properties tab: the device is the user's or 404,
    then the property is the device's or 404."""

    section = SECTION
    url_kwarg = "prop"

    def get_object(self):
        self.device = _device(self.request, self.kwargs["device"])
        return super().get_object()

    def find(self, identifier):
        return _property(self.device, identifier)

    def get_return_url(self, obj, **kwargs):
        return reverse("console-device-properties", args=[self.device.identifier])


class PropertyEditView(_PropertyPage, ObjectEditView):
    template_name = "console/devices/property_form.html"
    context_object_name = "prop"
    form_class = PropertyForm
    created_message = "Property {obj.identifier} created."
    saved_message = "Property {obj.identifier} saved."

    def initial(self, obj):
        return {"name": obj.name, "description": obj.description, "value": json_text(obj.value)}

    def save(self, obj, form):
        if obj is None:
            return services.property_create(device=self.device, **form.cleaned_data)
        return services.property_update(prop=obj, **form.cleaned_data)

    def extra_context(self, obj):
        return _dashboard(self.request, self.device, "properties")


class PropertyDeleteView(_PropertyPage, ObjectDeleteView):
    deleted_message = "Property {obj.identifier} deleted."

    def delete_object(self, obj):
        services.property_delete(prop=obj)


# Alerts on disconnect and reconnect (devices.alerts): a device's, and the user's default.


def _alert_form(request, rule, *, per_device):
    return AlertSettingsForm(
        request.POST or None,
        initial=AlertSettingsForm.initial_for(rule, per_device=per_device),
        endpoints=endpoints_of(username=request.user.username),
        per_device=per_device,
    )


def _save_alerts(request, form, device=None):
    data = form.cleaned_data
    mode = data.get("mode", "custom")
    if mode == "default":
        services.alert_settings_clear(device=device)
        return True
    try:
        services.alert_settings_save(
            owner=request.user,
            device=device,
            enabled=mode == "custom" and data.get("enabled", True),
            on_disconnect=data["on_disconnect"],
            on_reconnect=data["on_reconnect"],
            endpoints=list(data["endpoints"]),
            quiet_minutes=15 if data["quiet_minutes"] is None else data["quiet_minutes"],
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        return False
    return True


@login_required
def device_alerts(request, device):
    device = _device(request, device)
    form = _alert_form(request, selectors.alert_settings(request.user, device), per_device=True)
    if request.method == "POST" and form.is_valid() and _save_alerts(request, form, device):
        messages.success(request, "Alerts saved.")
        return redirect("console-device-alerts", device.identifier)
    context = _dashboard(
        request, device, "alerts", form=form, default=selectors.alert_settings(request.user)
    )
    return render(request, "console/devices/alerts.html", context)


@login_required
def alert_defaults(request):
    form = _alert_form(request, selectors.alert_settings(request.user), per_device=False)
    if request.method == "POST" and form.is_valid() and _save_alerts(request, form):
        messages.success(request, "Default alerts saved.")
        return redirect("console-alerts")
    return render(
        request, "console/devices/alert_defaults.html", {"section": "alerts", "form": form}
    )

from datetime import timedelta

from django.conf import settings
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from devices.models import CallbackSettings, Device, DeviceDailyStats, Property
from devices.tokens import callback_token_for


def device_for_callback(*, username, identifier):
    """The device with its owner and callback settings (and what they reference) in one query."""
    return (
        Device.objects.select_related(
            "owner",
            "callback__write_bucket",
            "callback__set_property",
            "callback__send_property",
            "callback__call_endpoint",
        )
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


def device_by_path(*, username, identifier):
    return (
        Device.objects.select_related("owner")
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


def device_callback_url(device):
    """The URL a device posts to, on the public base URL administrators configured."""
    path = reverse(
        "device-callback-data",
        kwargs={"user": device.owner.username, "device": device.identifier},
    )
    return f"{settings.PUBLIC_URL}{path}"


def device_callback_credentials(device):
    """(url, token, url with ?authorization=) as the console and the commands show them."""
    url = device_callback_url(device)
    token = callback_token_for(device)
    return url, token, f"{url}?authorization={token}"


def _ms(moment):
    return int(moment.timestamp() * 1000) if moment else None


def devices_for_owner(owner, *, name=None, type=None, identifier=None):
    """The owner's devices by id; ``name`` and ``identifier`` match any part (case-insensitive),
    ``type`` the whole type. Empty filters are no filters."""
    devices = Device.objects.filter(owner=owner)
    if name:
        devices = devices.filter(name__icontains=name)
    if type:
        devices = devices.filter(type__iexact=type)
    if identifier:
        devices = devices.filter(identifier__icontains=identifier)
    return devices.order_by("identifier")


def device_connection(device):
    """``{active, ts}``: ``ts`` is when the current state began (connected, or the deadline that
    disconnected it); None for a device that never called."""
    if device.connected:
        since = device.connected_at
    else:
        since = device.timeout_at if device.last_call_at else None
    return {"active": device.connected, "ts": _ms(since)}


def device_stats(device, days=30):
    """Connection state, totals since the device was created, and ``daily``: one entry per day
    of the last ``days`` days up to today (oldest first), zeros for days without calls."""
    rows = DeviceDailyStats.objects.filter(device=device)
    totals = rows.aggregate(calls=Sum("calls"), rx_bytes=Sum("rx_bytes"), tx_bytes=Sum("tx_bytes"))
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    by_date = {
        row["date"]: row
        for row in rows.filter(date__gte=first, date__lte=today).values(
            "date", "calls", "rx_bytes", "tx_bytes"
        )
    }
    daily = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_date.get(day, {})
        daily.append(
            {
                "date": day.isoformat(),
                "calls": row.get("calls", 0),
                "rx_bytes": row.get("rx_bytes", 0),
                "tx_bytes": row.get("tx_bytes", 0),
            }
        )
    return {
        "connected": device.connected,
        "connected_ts": _ms(device.connected_at),
        "ip_address": device.remote_ip,
        "rx_bytes": totals["rx_bytes"] or 0,
        "tx_bytes": totals["tx_bytes"] or 0,
        "calls": totals["calls"] or 0,
        "last_call_ts": _ms(device.last_call_at),
        "daily": daily,
    }


CALLBACK_ACTIONS = ("write_bucket", "set_property", "call_endpoint", "send_property")


def device_callback_settings(device):
    """The device's callback settings with what they reference (unsaved defaults if none)."""
    found = CallbackSettings.objects.select_related(*CALLBACK_ACTIONS).filter(device=device).first()
    return found or CallbackSettings(device=device)


def device_callback_settings_out(device):
    """``{"actions": {...}, "properties": {"timeout": minutes}}`` as the API reads and writes it:
    an action that is off is absent, so what GET returns is a valid PUT body."""
    callback = device_callback_settings(device)
    actions = {}
    for action in CALLBACK_ACTIONS:
        target = getattr(callback, action)
        if target is not None:
            actions[action] = target.identifier
    return {"actions": actions, "properties": {"timeout": callback.timeout}}


def device_properties(device):
    return Property.objects.filter(device=device).order_by("identifier")


def device_property(device, identifier):
    """The property ``identifier`` of the device, or None."""
    return Property.objects.filter(device=device, identifier=identifier).first()

from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from accounts.models import AccessToken
from buckets.models import Bucket, BucketRecord
from core.times import to_ms
from devices.models import (
    CALLBACK_ACTIONS,
    DEFAULT_TIMEOUT_MINUTES,
    AlertSettings,
    CallbackActivity,
    CallbackSettings,
    Device,
    DeviceDailyStats,
    Property,
)
from devices.tokens import callback_token_for
from endpoints.models import Endpoint


@dataclass(frozen=True)
class CallbackDevice:
    """What a device callback needs to know about its device, read in one query."""

    id: int
    token_generation: int
    enabled: bool
    connected: bool
    timeout_minutes: int
    write_bucket_id: int | None  # None when off or when the bucket is disabled
    write_bucket_identifier: str | None
    set_property_id: int | None
    set_property_identifier: str | None
    call_endpoint_id: int | None  # None when off or when the endpoint is disabled
    send_property_id: int | None
    send_property_value: str | None  # JSON text as the database stores it, None for null


def device_for_callback(*, username, identifier):
    """The device with its callback settings and the state of what they reference, or None: one
    query, its text built once, only the columns the callback uses."""
    with connection.cursor() as cursor:
        cursor.execute(device_callback_sql(), {"user": username, "identifier": identifier})
        row = cursor.fetchone()
    return None if row is None else callback_device_from_row(row)


def callback_device_from_row(row):
    """A ``CallbackDevice`` from a row of ``device_callback_sql``'s columns, in their order."""
    (
        pk,
        generation,
        enabled,
        connected,
        timeout,
        bucket,
        bucket_name,
        prop,
        prop_name,
        endpoint,
        send,
        value,
    ) = row
    return CallbackDevice(
        id=pk,
        token_generation=generation,
        enabled=bool(enabled),
        connected=bool(connected),
        timeout_minutes=DEFAULT_TIMEOUT_MINUTES if timeout is None else timeout,
        write_bucket_id=bucket,
        write_bucket_identifier=bucket_name,
        set_property_id=prop,
        set_property_identifier=prop_name,
        call_endpoint_id=endpoint,
        send_property_id=send,
        send_property_value=value,
    )


@cache
def device_callback_sql():
    """The device of ``%(user)s`` with id ``%(identifier)s``, as a callback sees it (the
    database function of the callback on PostgreSQL reads the same)."""

    def table(model):
        return connection.ops.quote_name(model._meta.db_table)

    user = get_user_model()
    username = connection.ops.quote_name(user._meta.get_field(user.USERNAME_FIELD).column)
    # Table names are the only interpolated values (S608).
    return (
        "SELECT d.id, d.token_generation, d.enabled, d.connected, s.timeout, "  # noqa: S608
        "CASE WHEN b.enabled THEN s.write_bucket_id END AS bucket, "
        "CASE WHEN b.enabled THEN b.identifier END AS bucket_identifier, "
        "s.set_property_id AS set_id, "
        "sp.identifier AS set_identifier, "
        "CASE WHEN e.enabled THEN s.call_endpoint_id END AS endpoint, "
        "s.send_property_id AS send_id, CAST(p.value AS TEXT) AS send_value "
        f"FROM {table(Device)} d "
        f"JOIN {table(user)} u ON u.id = d.owner_id "
        f"LEFT JOIN {table(CallbackSettings)} s ON s.device_id = d.id "
        f"LEFT JOIN {table(Bucket)} b ON b.id = s.write_bucket_id "
        f"LEFT JOIN {table(Endpoint)} e ON e.id = s.call_endpoint_id "
        f"LEFT JOIN {table(Property)} p ON p.id = s.send_property_id "
        f"LEFT JOIN {table(Property)} sp ON sp.id = s.set_property_id "
        f"WHERE u.{username} = %(user)s AND d.identifier = %(identifier)s"
    )


def device_by_path(*, username, identifier):
    return (
        Device.objects.select_related("owner")
        .filter(owner__username=username, identifier=identifier)
        .first()
    )


def device_callback_url(device, *, base=None):
    """The URL a device posts to, on the public base URL administrators configured
    (``PUBLIC_URL``), or on ``base`` (``scheme://host``)."""
    path = reverse(
        "device-callback-data",
        kwargs={"user": device.owner.username, "device": device.identifier},
    )
    return f"{base or settings.PUBLIC_URL}{path}"


def device_callback_credentials(device):
    """(url, token, url with ?authorization=) as the console and the commands show them."""
    url = device_callback_url(device)
    token = callback_token_for(device)
    return url, token, f"{url}?authorization={token}"


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
    return {"active": device.connected, "ts": to_ms(since)}


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
        "connected_ts": to_ms(device.connected_at),
        "ip_address": device.remote_ip,
        "rx_bytes": totals["rx_bytes"] or 0,
        "tx_bytes": totals["tx_bytes"] or 0,
        "calls": totals["calls"] or 0,
        "last_call_ts": to_ms(device.last_call_at),
        "daily": daily,
    }


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


def users_owned_counts(users):
    """What ``users_delete`` deletes besides the users, as (model, count) pairs, those with none
    left out: counted, not listed, as a user may own millions of records."""
    owned = [
        (Device, Device.objects.filter(owner__in=users).count()),
        (Bucket, Bucket.objects.filter(owner__in=users).count()),
        (BucketRecord, BucketRecord.objects.filter(bucket__owner__in=users).count()),
        (Endpoint, Endpoint.objects.filter(owner__in=users).count()),
        (AccessToken, AccessToken.objects.filter(owner__in=users).count()),
    ]
    return [(model, count) for model, count in owned if count]


def device_buckets(device):
    """The buckets a device's callback writes to (none, or its ``write_bucket``)."""
    written = CallbackSettings.objects.filter(device=device).values("write_bucket_id")
    return Bucket.objects.filter(pk__in=written).order_by("identifier")


def alert_settings(owner, device=None):
    """The alert settings of ``device`` (None: it has none of its own), or the owner's default
    (``device`` None), with their endpoints."""
    return (
        AlertSettings.objects.filter(owner=owner, device=device)
        .prefetch_related("endpoints")
        .first()
    )


def device_activity(device):
    """The device's activity log (``devices.activity``), newest first."""
    return CallbackActivity.objects.filter(device=device).order_by("-last_at", "-id")


def device_activity_out(device):
    return [
        {
            "ts": to_ms(row.last_at),
            "first_ts": to_ms(row.first_at),
            "status": row.status,
            "reason": row.reason,
            "count": row.count,
            "ip_address": row.remote_ip,
            "rx_bytes": row.size,
        }
        for row in device_activity(device)
    ]

import ipaddress
import json
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from buckets.services import bucket_write_records
from devices.models import CallbackSettings, ConnectionEvent, Device, DeviceDailyStats, Property
from devices.selectors import device_for_callback
from devices.tokens import InvalidToken, callback_token_decode
from endpoints.services import endpoint_call_record

# Timestamps are milliseconds since the epoch; anything outside this range is a client error
# rather than something to store (it also keeps ts within a 64-bit column).
MAX_TS = 2**53 - 1


class CallbackError(Exception):
    """A callback refused with an HTTP status and a message for the JSON error body."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class CallbackResponse:
    body: bytes = b""
    headers: dict = field(default_factory=dict)


@dataclass
class _Record:
    ts: int | None  # the client's timestamp, or None for the server's time
    value: object


_NOT_JSON = object()


def _parse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _parse_body(body: bytes):
    if not body.strip():
        return _NOT_JSON, "empty body"
    try:
        return json.loads(body, parse_constant=_parse_constant), None
    except (ValueError, RecursionError):
        return _NOT_JSON, "body is not JSON"


def _record_ts(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not -MAX_TS <= value <= MAX_TS:
        raise CallbackError(400, f"ts {value!r} is not a time in milliseconds since the epoch")
    return int(value) or None


def _is_batch(data):
    return isinstance(data, list) and bool(data) and all(isinstance(item, dict) for item in data)


def _records(data, default_ts):
    """Split a parsed body into records: an array of objects is a batch, else one record."""
    items = data if _is_batch(data) else [data]
    records = []
    for item in items:
        ts = default_ts
        if isinstance(item, dict) and "ts" in item:
            own = _record_ts(item["ts"])
            if own is not None:
                item = {key: value for key, value in item.items() if key != "ts"}
                ts = own
        records.append(_Record(ts=ts, value=item))
    return records


def parse_query_ts(raw):
    """The ``ts`` query parameter: milliseconds, ``0`` or empty meaning 'now' (None)."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise CallbackError(400, "ts must be an integer of milliseconds since the epoch") from None
    if not 0 <= value <= MAX_TS:
        raise CallbackError(400, "ts must be an integer of milliseconds since the epoch")
    return value or None


def parse_remote_ip(forwarded, fallback):
    """The device's address: a gateway's ``ip`` parameter when valid, else the peer's."""
    for candidate in (forwarded, fallback):
        if not candidate:
            continue
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return str(address)
    return None


def callback_authenticate(*, token, username, identifier):
    """Check a callback token against the path; returns the claims (401 or 403 otherwise).

    Runs before any query: a forged or foreign token costs no database work.
    """
    try:
        claims = callback_token_decode(token)
    except InvalidToken as exc:
        message = "missing token" if not token else f"invalid token: {exc}"
        raise CallbackError(401, message) from None
    if not claims.matches(user=username, device=identifier):
        raise CallbackError(403, "this token is for another device")
    return claims


def callback_ingest(*, claims, username, identifier, body, store, query_ts, remote_ip):
    """Everything a device callback does, in one transaction, in SPEC order.

    ``store`` is False for GET (answer the response property, store nothing). Returns the response
    to send; raises CallbackError for refusals. Connection state and statistics are updated on
    every accepted call, including ones whose body is ignored.
    """
    device = device_for_callback(username=username, identifier=identifier)
    if device is None:
        raise CallbackError(404, f"device {identifier!r} of user {username!r} not found")
    if not claims.current_for(device):
        raise CallbackError(401, "invalid token: it was rotated")
    if not device.enabled:
        raise CallbackError(403, "device is disabled")

    now = timezone.now()
    now_ms = int(now.timestamp() * 1000)
    try:
        actions = device.callback
    except CallbackSettings.DoesNotExist:
        actions = CallbackSettings(device=device)

    headers = {}
    records, payload = [], _NOT_JSON
    if store:
        payload, ignored = _parse_body(body)
        if payload is _NOT_JSON:
            headers["X-Callback-Ignored"] = ignored
        else:
            records = _records(payload, parse_query_ts(query_ts))
            if _is_batch(payload):
                payload = payload[-1]

    with transaction.atomic():
        if records and actions.write_bucket_id and actions.write_bucket.enabled:
            _write_bucket(actions.write_bucket_id, records, now_ms)
        if payload is not _NOT_JSON and actions.set_property_id:
            Property.objects.filter(pk=actions.set_property_id).update(value=payload, modified=now)
            actions.set_property.value = payload
        if payload is not _NOT_JSON and actions.call_endpoint_id and actions.call_endpoint.enabled:
            endpoint_call_record(
                endpoint=actions.call_endpoint, device=device, payload=payload, ts=now_ms
            )
        response = CallbackResponse(headers=headers)
        if actions.send_property_id:
            response.body = json.dumps(actions.send_property.value, separators=(",", ":")).encode()
            response.headers["Content-Type"] = "application/json"
        device_record_activity(
            device=device,
            at=now,
            remote_ip=remote_ip,
            timeout=actions.timeout_delta,
            rx_bytes=len(body),
            tx_bytes=len(response.body),
        )
    return response


def _write_bucket(bucket_id, records, now_ms):
    explicit, server = {}, []
    for record in records:
        if record.ts is None:
            server.append((now_ms + len(server), record.value))
        else:
            explicit[record.ts] = record.value
    bucket_write_records(bucket_id=bucket_id, explicit=explicit, server=server)


def device_record_activity(*, device, at, remote_ip, timeout, rx_bytes, tx_bytes):
    """Mark the device connected until ``at + timeout`` and count the call in today's statistics.

    The state change is a compare-and-swap on ``connected``, so a concurrent sweep or callback can
    never record the same change twice; a "connected" event is written only by the call that flips
    it.
    """
    fields = {"last_call_at": at, "remote_ip": remote_ip, "timeout_at": at + timeout}
    rows = Device.objects.filter(pk=device.pk)
    flipped = False
    if device.connected:
        updated = rows.filter(connected=True).update(**fields)
        if not updated:
            flipped = rows.filter(connected=False).update(connected=True, connected_at=at, **fields)
    else:
        flipped = rows.filter(connected=False).update(connected=True, connected_at=at, **fields)
        if not flipped:
            rows.filter(connected=True).update(**fields)
    if flipped:
        ConnectionEvent.objects.create(
            device=device, kind=ConnectionEvent.Kind.CONNECTED, at=at, remote_ip=remote_ip
        )
    _stats_add(device_id=device.pk, date=timezone.localdate(at), rx=rx_bytes, tx=tx_bytes)


def _stats_add(*, device_id, date, rx, tx):
    table = connection.ops.quote_name(DeviceDailyStats._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (device_id, date, calls, rx_bytes, tx_bytes) "  # noqa: S608 (table names only)
            "VALUES (%s, %s, 1, %s, %s) ON CONFLICT (device_id, date) DO UPDATE SET "
            f"calls = {table}.calls + 1, rx_bytes = {table}.rx_bytes + excluded.rx_bytes, "
            f"tx_bytes = {table}.tx_bytes + excluded.tx_bytes",
            [device_id, date, rx, tx],
        )


@transaction.atomic
def device_create(*, owner, identifier, name="", description="", enabled=True):
    """A new HTTP device with its (empty) callback settings."""
    device = Device(
        owner=owner, identifier=identifier, name=name, description=description, enabled=enabled
    )
    device.full_clean()
    device.save()
    CallbackSettings.objects.create(device=device)
    return device


def device_rotate_token(*, device):
    """Give the device a new token generation: every token issued before fails from now on."""
    from devices.models import new_token_generation

    generation = new_token_generation()
    while generation == device.token_generation:
        generation = new_token_generation()
    Device.objects.filter(pk=device.pk).update(token_generation=generation, modified=timezone.now())
    device.token_generation = generation
    return device

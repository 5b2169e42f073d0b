import ipaddress
import json
import math
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from buckets.models import Bucket
from buckets.services import bucket_write_records
from devices.models import (
    TIMEOUT_MAX_MINUTES,
    CallbackSettings,
    ConnectionEvent,
    Device,
    DeviceDailyStats,
    Property,
)
from devices.selectors import device_for_callback
from devices.tokens import InvalidToken, callback_token_decode
from endpoints.models import Endpoint
from endpoints.services import endpoint_call_record
from thinger_http.auth import authenticate_bearer
from thinger_http.db import save_changes

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


class _NumberOutOfRange(ValueError):
    pass


def _parse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _parse_float(text):
    value = float(text)
    if math.isinf(value):
        raise _NumberOutOfRange(text)
    return value


def _parse_body(body: bytes):
    if not body.strip():
        return _NOT_JSON, "empty body"
    try:
        data = json.loads(body, parse_constant=_parse_constant, parse_float=_parse_float)
    except _NumberOutOfRange as exc:
        raise CallbackError(400, f"number {str(exc)[:40]} is too large to store") from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        return _NOT_JSON, "body is not JSON"
    # A body cannot nest deeper than it has brackets: most bodies skip the walk.
    limit = settings.CALLBACK_MAX_DEPTH
    if body.count(b"[") + body.count(b"{") > limit and _deeper_than(data, limit):
        raise _too_deep()
    return data, None


def _too_deep():
    return CallbackError(400, f"JSON nested deeper than {settings.CALLBACK_MAX_DEPTH} levels")


def _deeper_than(data, limit):
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return False


def _record_ts(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not -MAX_TS <= value <= MAX_TS:
        raise CallbackError(400, f"ts {value!r} is not a time in milliseconds since the epoch")
    return int(value)


def _is_batch(data):
    return isinstance(data, list) and bool(data) and all(isinstance(item, dict) for item in data)


def _records(data, query_ts):
    """Split a parsed body into records: an array of objects is a batch, else one record.

    A record's own numeric ``ts`` wins (``0``: the server's time) and leaves the stored value.
    Records without one take the query's ``ts``, one millisecond apart within a batch, so that a
    batch keeps all its records and a retried batch replaces the same ones.
    """
    items = data if _is_batch(data) else [data]
    if len(items) > settings.CALLBACK_MAX_RECORDS:
        raise CallbackError(
            413, f"{len(items)} records in one call, more than {settings.CALLBACK_MAX_RECORDS}"
        )
    records = []
    for index, item in enumerate(items):
        ts = None if query_ts is None else query_ts + index
        if isinstance(item, dict) and "ts" in item:
            own = _record_ts(item["ts"])
            if own is not None:
                item = {key: value for key, value in item.items() if key != "ts"}
                ts = own or None
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


class _OwnerClaims:
    """The owner's API access token: good for every device of that user (gateways, plugins)."""

    def current_for(self, device):
        return True


def callback_authenticate(*, token, username, identifier):
    """Check a callback token against the path; returns the claims (401 or 403 otherwise).

    A device token is checked before any query, so a forged or foreign one costs no database
    work. The owner's API access tokens are accepted too, within their scope.
    """
    if not token:
        raise CallbackError(401, "missing token")
    try:
        claims = callback_token_decode(token)
    except InvalidToken as exc:
        claims, problem = None, str(exc)
    if claims is None:
        return _owner_token_claims(token, username, identifier, problem)
    if not claims.matches(user=username, device=identifier):
        raise CallbackError(403, "this token is for another device")
    return claims


def _owner_token_claims(token, username, identifier, problem):
    found = authenticate_bearer(token)
    if found is None:
        raise CallbackError(401, f"invalid token: {problem}")
    user, grant = found
    if user.username != username:
        raise CallbackError(403, "this token is for another user")
    if not grant.permits("Device", identifier, "CallDeviceCallback"):
        raise CallbackError(403, "this token does not allow CallDeviceCallback")
    return _OwnerClaims()


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
            if actions.send_property_id == actions.set_property_id:
                actions.send_property.value = payload
        if payload is not _NOT_JSON and actions.call_endpoint_id and actions.call_endpoint.enabled:
            endpoint_call_record(
                endpoint=actions.call_endpoint,
                device=device,
                payload=payload,
                ts=records[-1].ts or now_ms,
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


_DEVICE_FIELDS = {"name", "description", "enabled"}


@transaction.atomic
def device_update(*, device, **fields):
    """Change a device's name, description or enabled flag (a partial update).

    Only those columns are written, so a callback or sweep changing the connection state at the
    same time keeps its change.
    """
    unknown = set(fields) - _DEVICE_FIELDS
    if unknown:
        raise TypeError(f"device_update() got unexpected fields {sorted(unknown)}")
    if not fields:
        return device
    for name, value in fields.items():
        setattr(device, name, value)
    device.full_clean()
    return save_changes(device, fields)


@transaction.atomic
def device_delete(*, device):
    """Delete a device with its callback settings, properties, statistics and events; its
    endpoint call log stays, detached. Its token fails from now on (404, then 401 if an
    identical device is created: a new token generation)."""
    device.delete()


# The object each callback action references: a bucket or endpoint of the device's owner, or a
# property of the device.
_ACTION_TARGETS = {
    "write_bucket": ("bucket", lambda device: Bucket.objects.filter(owner_id=device.owner_id)),
    "set_property": ("property", lambda device: Property.objects.filter(device=device)),
    "call_endpoint": ("endpoint", lambda device: Endpoint.objects.filter(owner_id=device.owner_id)),
    "send_property": ("property", lambda device: Property.objects.filter(device=device)),
}
CALLBACK_TIMEOUT_MAX = TIMEOUT_MAX_MINUTES


def _action_target(device, action, identifier):
    if identifier is None or identifier == "":
        return None
    kind, candidates = _ACTION_TARGETS[action]
    if not isinstance(identifier, str):
        raise ValidationError({action: f"must be the id of a {kind}, or null for none"})
    found = candidates(device).filter(identifier=identifier).first()
    if found is None:
        raise ValidationError({action: f"there is no {kind} {identifier!r}"})
    return found


@transaction.atomic
def callback_settings_update(*, device, actions=None, timeout=None):
    """Set what the device's callback does.

    ``actions`` maps action names to ids (None or "" for off) and, when given, replaces the whole
    set: an absent action is off. ``timeout`` (minutes) is kept when None. A reference to a
    bucket, endpoint or property that does not exist is a ValidationError naming the action.
    A connected device's deadline moves with a new timeout, counted from its last call.
    """
    callback, _ = CallbackSettings.objects.select_for_update().get_or_create(device=device)
    if actions is not None:
        unknown = sorted(set(actions) - set(_ACTION_TARGETS))
        if unknown:
            raise ValidationError({unknown[0]: "unknown callback action"})
        for action in _ACTION_TARGETS:
            setattr(callback, action, _action_target(device, action, actions.get(action)))
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise ValidationError({"timeout": "must be a whole number of minutes"})
        if not 1 <= timeout <= CALLBACK_TIMEOUT_MAX:
            raise ValidationError({"timeout": f"must be from 1 to {CALLBACK_TIMEOUT_MAX} minutes"})
        callback.timeout = timeout
        if device.connected and device.last_call_at:
            device.timeout_at = device.last_call_at + callback.timeout_delta
            Device.objects.filter(pk=device.pk, connected=True).update(timeout_at=device.timeout_at)
    callback.save()
    return callback


def _check_json_value(value):
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValidationError({"value": "must be JSON (numbers finite)"}) from None


def _property_exists_error():
    return ValidationError({"identifier": [Property._meta.constraints[0].violation_error_message]})


@transaction.atomic
def property_create(*, device, identifier, name="", description="", value=None):
    """A new property of the device; a duplicate id is a ValidationError."""
    _check_json_value(value)
    prop = Property(
        device=device, identifier=identifier, name=name, description=description, value=value
    )
    prop.full_clean()
    try:
        with transaction.atomic():
            prop.save()
    except IntegrityError:  # created at the same time by another request
        raise _property_exists_error() from None
    return prop


_PROPERTY_FIELDS = {"value", "name", "description"}


@transaction.atomic
def property_update(*, prop, **fields):
    """Replace a property's value and optionally its name or description; its id never changes.

    Only the given columns are written, so a callback's ``set_property`` meanwhile is not undone
    unless ``value`` is given.
    """
    unknown = set(fields) - _PROPERTY_FIELDS
    if unknown:
        raise TypeError(f"property_update() got unexpected fields {sorted(unknown)}")
    if not fields:
        return prop
    if "value" in fields:
        _check_json_value(fields["value"])
    for name, value in fields.items():
        setattr(prop, name, value)
    prop.full_clean()
    return save_changes(prop, fields)


def json_merge_patch(target, patch):
    """RFC 7396: an object patch merges into an object (recursively; a null member removes that
    key); any other patch replaces the target."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = json_merge_patch(merged.get(key), value)
    return merged


@transaction.atomic
def property_merge(*, prop, value):
    """Merge ``value`` into the property's value (a JSON merge patch); returns the property.

    The row is locked while merging, so two merges at the same time both take effect.
    """
    _check_json_value(value)
    locked = Property.objects.select_for_update().get(pk=prop.pk)
    locked.value = json_merge_patch(locked.value, value)
    locked.save(update_fields=["value", "modified"])
    prop.value, prop.modified = locked.value, locked.modified
    return prop


@transaction.atomic
def property_delete(*, prop):
    """Delete a property; callback actions referencing it are switched off (SET NULL)."""
    prop.delete()


SWEEP_CHUNK = 5000


def device_sweep_timeouts(*, now=None):
    """Disconnect every connected device whose deadline has passed; returns how many.

    Works in chunks of at most ``SWEEP_CHUNK`` devices, each flipped by one ``UPDATE ...
    RETURNING`` whose own ``WHERE connected AND timeout_at <= now`` is the compare-and-swap: a
    concurrent sweep finds those rows already flipped (on PostgreSQL it skips the rows another
    sweep has locked), and a callback that moved ``timeout_at`` forward keeps its device
    connected. Only the rows a statement changed get a "disconnected" event, dated at their
    deadline, written by the same statement on PostgreSQL and in the same transaction elsewhere.
    When nothing is due this is one query on the partial index ``device_timeout_due``.
    """
    now = now or timezone.now()
    total = 0
    while True:
        flipped = _sweep_chunk(now)
        total += flipped
        if flipped < SWEEP_CHUNK:
            return total


def _sweep_chunk(now):
    """Flip at most ``SWEEP_CHUNK`` due devices and record their events; returns how many."""
    devices = connection.ops.quote_name(Device._meta.db_table)
    events = connection.ops.quote_name(ConnectionEvent._meta.db_table)
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    # Table names are the only interpolated values (S608).
    update = (
        f"UPDATE {devices} SET connected = %s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {devices} WHERE connected AND timeout_at <= %s "
        f"ORDER BY timeout_at LIMIT %s{lock}"
        ") AND connected AND timeout_at <= %s RETURNING id, timeout_at"
    )
    insert = f"INSERT INTO {events} (device_id, kind, at) SELECT id, %s, timeout_at FROM"  # noqa: S608
    deadline = connection.ops.adapt_datetimefield_value(now)
    params = [False, deadline, SWEEP_CHUNK, deadline]
    kind = ConnectionEvent.Kind.DISCONNECTED.value

    if connection.vendor == "postgresql":
        # One statement is atomic on its own: no BEGIN and COMMIT round trips around it.
        with connection.cursor() as cursor:
            cursor.execute(f"WITH flipped AS ({update}) {insert} flipped", [*params, kind])
            return cursor.rowcount

    # The flipped ids go back as one JSON parameter, whatever their number. No savepoint: within
    # a caller's transaction the chunk adds no query of its own.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(update, params)
        flipped = [pk for pk, _ in cursor.fetchall()]
        if flipped:
            cursor.execute(
                f"{insert} {devices} WHERE id IN (SELECT value FROM json_each(%s))",  # noqa: S608
                [kind, json.dumps(flipped)],
            )
    return len(flipped)

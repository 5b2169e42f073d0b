import hashlib
import ipaddress
import json
import math
import re
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache, lru_cache

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from buckets.models import Bucket, BucketRecord
from buckets.services import (
    bucket_insert_params,
    bucket_insert_sql,
    bucket_write_records,
    claim_server_ts,
)
from devices.models import (
    DEFAULT_TIMEOUT_MINUTES,
    TIMEOUT_MAX_MINUTES,
    CallbackSettings,
    ConnectionEvent,
    Device,
    DeviceDailyStats,
    Property,
)
from devices.selectors import callback_device_from_row, device_callback_sql, device_for_callback
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


# orjson keeps integers to 64 bits (a longer one becomes a float): a body with a run of 19 digits
# or more, like every body orjson refuses, is decided by the standard library.
_LONG_NUMBER = re.compile(rb"\d{19}")


def _parse_body(body: bytes):
    if not body.strip():
        return _NOT_JSON, "empty body"
    data = _NOT_JSON
    if not _LONG_NUMBER.search(body):
        with suppress(orjson.JSONDecodeError):
            data = orjson.loads(body)
    strict = data is not _NOT_JSON  # orjson refuses lone surrogates
    if data is _NOT_JSON:
        try:
            data = json.loads(body, parse_constant=_parse_constant, parse_float=_parse_float)
        except _NumberOutOfRange as exc:
            raise CallbackError(400, f"number {str(exc)[:40]} is too large to store") from None
        except RecursionError:
            raise _too_deep() from None
        except ValueError:
            return _NOT_JSON, "body is not JSON"
    if (not strict or _NUL_ESCAPE in body) and _unstorable_text(data):
        raise CallbackError(
            400, "text with a NUL character (\\u0000) or a lone surrogate cannot be stored"
        )
    # A body cannot nest deeper than it has brackets: most bodies skip the walk.
    limit = settings.CALLBACK_MAX_DEPTH
    if body.count(b"[") + body.count(b"{") > limit and _deeper_than(data, limit):
        raise _too_deep()
    return data, None


# Text a JSON column cannot hold on every database (PostgreSQL's jsonb refuses both), refused
# alike everywhere. A NUL can only come escaped, so most bodies skip the walk.
_NUL_ESCAPE = b"\\u0000"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable_text(data):
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


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


def _json_text(value):
    """A value parsed from a body as JSON text for a JSON column (None: SQL NULL, as the ORM
    stores it). Its numbers are finite: orjson writes them as the standard library would."""
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, lone surrogates: as the ORM writes them
        return json.dumps(value)


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
        if candidate:
            address = _normalized_ip(candidate)
            if address is not None:
                return address
    return None


# Devices call from a limited set of addresses: parse each once (per process).
@lru_cache(maxsize=4096)
def _normalized_ip(text):
    """``text`` as an address in its usual form (an IPv4-mapped IPv6 as IPv4), None if invalid."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


@lru_cache(maxsize=4096)
def _ip_param(address):
    """An address (or None) as the ORM writes it to the ``remote_ip`` column: IPv6 compressed,
    without a zone."""
    return _REMOTE_IP.get_db_prep_save(address, connection)


def _stats_date(at):
    """The day a call counts for: its date in the server's time zone (``TIME_ZONE``)."""
    return timezone.localdate(at, timezone.get_default_timezone())


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
    """Everything a device callback does, atomically, in SPEC order.

    ``store`` is False for GET (answer the response property, store nothing). Returns the response
    to send; raises CallbackError for refusals. Connection state and statistics are updated on
    every accepted call, including ones whose body is ignored.

    On PostgreSQL a call that stores at most one record, at the server's time, and calls no
    endpoint (what a device sends) is one round trip, a function (``callback_function_sql``): it
    reads the device and its settings, checks the token's generation and writes everything, or
    writes nothing when the device refuses the call. Other calls read the device first and then
    write.
    """
    try:
        payload, records, ignored = _parse_call(body, store=store, query_ts=query_ts)
    except CallbackError:
        # The device's own refusals (404, 401, 403) come before a refused body.
        _callback_device(claims, username, identifier)
        raise
    now = timezone.now()
    response = CallbackResponse()
    if ignored:
        response.headers["X-Callback-Ignored"] = ignored
    device = None
    if _ONE_STATEMENT and _one_server_record_at_most(records):
        device, text = _callback_fused(
            claims=claims,
            username=username,
            identifier=identifier,
            at=now,
            records=records,
            payload=payload,
            remote_ip=remote_ip,
            rx_bytes=len(body),
        )
        if text is not _NOT_WRITTEN:
            return _respond(response, text)
    if device is None:
        device = _callback_device(claims, username, identifier)
    text = _response_text(device, payload)
    _callback_write(
        device,
        at=now,
        records=records,
        payload=payload,
        remote_ip=remote_ip,
        rx_bytes=len(body),
        tx_bytes=0 if text is None else len(text.encode()),
    )
    return _respond(response, text)


def _parse_call(body, *, store, query_ts):
    """(payload, records, why the body is ignored or None); a GET has no payload."""
    if not store:
        return _NOT_JSON, [], None
    payload, ignored = _parse_body(body)
    if payload is _NOT_JSON:
        return payload, [], ignored
    records = _records(payload, parse_query_ts(query_ts))
    if _is_batch(payload):
        payload = payload[-1]
    return payload, records, None


def _callback_device(claims, username, identifier):
    """The device of a call, read with its settings; 404, 401 or 403 when it refuses the call."""
    device = device_for_callback(username=username, identifier=identifier)
    _check_device(claims, username, identifier, device)
    return device


def _check_device(claims, username, identifier, device):
    if device is None:
        raise CallbackError(404, f"device {identifier!r} of user {username!r} not found")
    if not claims.current_for(device):
        raise CallbackError(401, "invalid token: it was rotated")
    if not device.enabled:
        raise CallbackError(403, "device is disabled")


def _response_text(device, payload):
    """The response body as text, None for none: the ``send_property`` value as the database
    stores it, or the payload when that property is the one the call sets."""
    if not device.send_property_id:
        return None
    if payload is not _NOT_JSON and device.send_property_id == device.set_property_id:
        return _echo_text(payload)
    return "null" if device.send_property_value is None else device.send_property_value


def _echo_text(payload):
    """The payload as the response to a call that sets the property it answers with."""
    return json.dumps(payload)


def _respond(response, text):
    if text is not None:
        response.body = text.encode()
        response.headers["Content-Type"] = "application/json"
    return response


def _one_server_record_at_most(records):
    return not records or (len(records) == 1 and records[0].ts is None)


_NOT_WRITTEN = object()


def _callback_fused(*, claims, username, identifier, at, records, payload, remote_ip, rx_bytes):
    """PostgreSQL: the whole call as one round trip, the function ``callback_function_sql``
    defines; returns (device, response text or None).

    The text is ``_NOT_WRITTEN`` when the call goes on the general path with the device the
    function read: it calls an endpoint (nothing was written), or its record's millisecond stayed
    taken (only the device's connection state was written, which the general path writes again).
    Raises the device's refusals (404, 401, 403), for which nothing was written.
    """
    params = {
        "user": username,
        "identifier": identifier,
        "generation": getattr(claims, "generation", None),
        "at": at,
        "ip": _ip_param(remote_ip),
        "connected": ConnectionEvent.Kind.CONNECTED.value,
        "date": _stats_date(at),
        "rx": rx_bytes,
        "has_payload": payload is not _NOT_JSON,
        "echo": None,
        "value": None,
        "default_timeout": DEFAULT_TIMEOUT_MINUTES,
        "has_record": bool(records),
        "record": None,
        "ts": None,
    }
    if payload is not _NOT_JSON:
        params["echo"] = _echo_text(payload)
        params["value"] = _json_text(payload)
    if records:
        # Without a ts of its own the record is the payload itself: its text is written once.
        value = records[0].value
        params["record"] = params["value"] if value is payload else _json_text(value)
        params["ts"] = int(at.timestamp() * 1000)
    for _ in range(_SERVER_TS_ATTEMPTS):
        with connection.cursor() as cursor:
            cursor.execute(_CALLBACK_CALL, params)
            row = cursor.fetchone()
        device = None if row is None else callback_device_from_row(row[:10])
        _check_device(claims, username, identifier, device)
        body, written = row[10:]
        if written:
            return device, body
        if device.call_endpoint_id or not records or not device.write_bucket_id:
            break
        # A record stored with its own ts (or by another writer) held the millisecond the device
        # gave; the call wrote only the device's row, and the next one claims the next.
    return device, _NOT_WRITTEN


# PostgreSQL: the function of the one-round-trip callback. Its arguments are (name, type):
# ``p_<name>`` in the function, ``%(<name>)s`` in the query that calls it.
CALLBACK_FUNCTION = "thinger_device_callback"
_CALLBACK_ARGS = (
    ("user", "text"),
    ("identifier", "text"),
    ("generation", "bigint"),  # the token's generation; NULL for the owner's access tokens
    ("at", "timestamptz"),
    ("ip", "inet"),
    ("connected", "text"),  # ConnectionEvent.Kind.CONNECTED
    ("date", "date"),  # of the statistics
    ("rx", "bigint"),
    ("has_payload", "boolean"),  # the body was JSON: set_property sets ``value``
    ("echo", "text"),  # the payload as the response when send_property is set_property
    ("value", "text"),  # JSON text, or NULL for JSON null
    ("default_timeout", "integer"),
    ("has_record", "boolean"),  # one record to store at the server's time: ``record``
    ("record", "text"),
    ("ts", "bigint"),  # the server's time in ms, the least ts the record can get
)
_CALLBACK_RESULT = (
    "id bigint, token_generation integer, enabled boolean, connected boolean, timeout integer, "
    "bucket bigint, set_id bigint, endpoint bigint, send_id bigint, send_value text, "
    "body text, written boolean"
)
_CALLBACK_CALL = (
    f"SELECT * FROM {CALLBACK_FUNCTION}("  # noqa: S608 (names and types only)
    + ", ".join(f"p_{name} => %({name})s::{kind}" for name, kind in _CALLBACK_ARGS)
    + ")"
)


def callback_function_sql():
    """The ``CREATE FUNCTION`` of the one-round-trip callback (PostgreSQL), what ``migrate``
    installs (``install_callback_function``).

    It takes the device's advisory lock first, as every callback's writes do (``_QUEUE``), and
    then runs its statement, which therefore starts after the call before it committed: it reads
    the device's rows as that call left them, and its updates never find them changed since
    (a single statement that waits for the lock would, and PostgreSQL rechecks each such row,
    which was a third of its time per call with a busy device).

    The statement: ``dev`` is the device as ``device_callback_sql`` reads it. ``ok`` is the
    device when the call is accepted (current token generation, device enabled, no endpoint to
    call). ``device`` writes its connection state and claims the record's millisecond from its
    counter, as ``claim_server_ts`` does; ``go`` is the accepted device once its record, if
    any, was written, and the property and statistics are written only from ``go``. When a
    record stored with its own ts holds that millisecond, only the device's row changed, and
    the next call claims the following one. It returns the device's columns, the response body
    and whether the call was written.
    """
    # Table names and the text built here are the only interpolated values (S608).
    ctes = [
        f"dev AS ({device_callback_sql()})",
        "ok AS (SELECT dev.*, CASE WHEN send_id IS NULL THEN NULL "
        "WHEN send_id = set_id AND %(has_payload)s THEN %(echo)s "
        "ELSE COALESCE(send_value, 'null') END AS body FROM dev "
        "WHERE enabled AND endpoint IS NULL "
        "AND (%(generation)s IS NULL OR token_generation = %(generation)s))",
        *_device_state_ctes(
            device_id="SELECT id FROM ok",
            deadline="%(at)s + make_interval(mins => COALESCE(ok.timeout, %(default_timeout)s))",
            source="ok",
            claim=", last_server_ts = CASE WHEN %(has_record)s "
            "THEN GREATEST(d.last_server_ts + 1, %(ts)s) ELSE d.last_server_ts END",
        ),
        f"records AS (INSERT INTO {_table(BucketRecord)} (bucket_id, ts, value) "  # noqa: S608
        "SELECT ok.bucket, device.last_server_ts, %(record)s::jsonb FROM ok, device "
        "WHERE %(has_record)s AND ok.bucket IS NOT NULL "
        "ON CONFLICT (bucket_id, ts) DO NOTHING RETURNING ts)",
        "go AS (SELECT ok.* FROM ok "
        "WHERE NOT %(has_record)s OR ok.bucket IS NULL OR EXISTS (SELECT FROM records))",
        f"set_property AS (UPDATE {_table(Property)} AS p "  # noqa: S608
        "SET value = %(value)s::jsonb, modified = %(at)s FROM go "
        "WHERE %(has_payload)s AND p.id = go.set_id)",
        f"stats AS ({_STATS_INSERT} "  # noqa: S608
        "SELECT go.id, %(date)s, 1, %(rx)s, COALESCE(octet_length(go.body), 0) FROM go "
        f"{_STATS_CONFLICT} RETURNING 1)",
    ]
    statement = (
        f"WITH {', '.join(ctes)} SELECT dev.id, dev.token_generation, dev.enabled, "  # noqa: S608
        "dev.connected, dev.timeout, dev.bucket, dev.set_id, dev.endpoint, dev.send_id, "
        "dev.send_value, (SELECT body FROM go), EXISTS (SELECT FROM stats) FROM dev"
    )
    arguments = ", ".join(f"p_{name} {kind}" for name, kind in _CALLBACK_ARGS)
    result = ", ".join(f"out_{column}" for column in _CALLBACK_RESULT.split(", "))
    return _as_function_body(
        f"CREATE FUNCTION {CALLBACK_FUNCTION}({arguments}) RETURNS TABLE ({result}) "
        "LANGUAGE plpgsql VOLATILE AS $body$ BEGIN "
        f"PERFORM pg_advisory_xact_lock(dev.id) FROM ({device_callback_sql()}) AS dev; "
        f"RETURN QUERY {statement}; END $body$"
    )


def _as_function_body(sql):
    """``%(name)s`` placeholders as the function's arguments, ``p_name``."""
    return re.sub(r"%\((\w+)\)s", r"p_\1", sql)


def install_callback_function(*, using):
    """Create or replace ``CALLBACK_FUNCTION`` on a PostgreSQL database when it is missing or
    differs from ``callback_function_sql`` (its body, or the hash of its definition, the
    function's comment); run after every ``migrate``, so that the function always matches the
    code, which keeps its definition."""
    db = connections[using]
    if db.vendor != "postgresql":
        return
    definition = callback_function_sql()
    body = definition.split("$body$")[1]
    tag = f"thinger-http {hashlib.sha256(definition.encode()).hexdigest()}"
    with transaction.atomic(using=using), db.cursor() as cursor:
        cursor.execute(
            "SELECT p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc'), p.prosrc "
            "FROM pg_proc p WHERE p.proname = %s AND pg_function_is_visible(p.oid)",
            [CALLBACK_FUNCTION],
        )
        found = cursor.fetchall()
        if [(comment, source) for _, comment, source in found] == [(tag, body)]:
            return
        for signature, _, _ in found:
            cursor.execute(f"DROP FUNCTION {signature}")
        cursor.execute(definition)
        # The tag is hexadecimal: a literal, since a utility statement takes no parameters.
        cursor.execute(f"COMMENT ON FUNCTION {CALLBACK_FUNCTION} IS '{tag}'")


def _callback_write(device, *, at, records, payload, remote_ip, rx_bytes, tx_bytes):
    """Write what a call changes, all of it or nothing, committed before the call is answered.

    On PostgreSQL a call that calls no endpoint and stores no record at the server's time is one
    statement, committed on its own: no BEGIN and COMMIT round trips, and the device's rows stay
    locked only while the statement runs and commits, which is what bounds the calls per second
    of one busy device. Everything else is one transaction.
    """
    now_ms = int(at.timestamp() * 1000)
    explicit, server = {}, []
    if records and device.write_bucket_id:
        explicit, server = _timestamped(records)
    new_value = None  # set_property: (property id, value)
    if payload is not _NOT_JSON and device.set_property_id:
        new_value = (device.set_property_id, payload)
    call_endpoint = payload is not _NOT_JSON and device.call_endpoint_id

    if _ONE_STATEMENT and not server and not call_endpoint:
        _callback_statement(
            device=device,
            at=at,
            remote_ip=remote_ip,
            new_value=new_value,
            counts=(rx_bytes, tx_bytes),
            bucket_id=device.write_bucket_id,
            rows=list(explicit.items()),
        )
        return

    with transaction.atomic():
        if _ONE_STATEMENT:
            with connection.cursor() as cursor:
                cursor.execute(_QUEUE, {"device": device.id})
        if explicit or server:
            bucket_write_records(
                bucket_id=device.write_bucket_id,
                explicit=explicit,
                server=server,
                claim=lambda count: claim_server_ts(Device, device.id, count=count, now_ms=now_ms),
            )
        if call_endpoint:
            # Instances standing for the rows, to reference them without reading them.
            endpoint_call_record(
                endpoint=Endpoint(pk=device.call_endpoint_id),
                device=Device(pk=device.id),
                payload=payload,
                ts=records[-1].ts or now_ms,
            )
        device_record_activity(
            device=device,
            at=at,
            remote_ip=remote_ip,
            rx_bytes=rx_bytes,
            tx_bytes=tx_bytes,
            new_value=new_value,
        )


def _timestamped(records):
    """Records as ({explicit ts: value}, [values to store at the server's time])."""
    explicit, server = {}, []
    for record in records:
        if record.ts is None:
            server.append(record.value)
        else:
            explicit[record.ts] = record.value
    return explicit, server


def device_record_activity(*, device, at, remote_ip, rx_bytes, tx_bytes, new_value=None):
    """Count a call: the device is connected until ``at`` plus its timeout, and today's
    statistics grow by one call and its bytes. ``new_value`` is the callback's ``set_property``,
    (property id, value), written here because it is a row of the same device.

    A "connected" event is written only by the call that changes the state, whatever the
    concurrent callbacks and sweeps. On PostgreSQL the property, the device and its event are
    one statement. The rows are locked in the order of the one-statement callback (statistics,
    then the property and the device), so that concurrent calls of a device never deadlock.
    """
    _stats_add(device_id=device.id, date=_stats_date(at), rx=rx_bytes, tx=tx_bytes)
    if _ONE_STATEMENT:
        _callback_statement(device=device, at=at, remote_ip=remote_ip, new_value=new_value)
    else:
        _record_activity_portably(device, at, remote_ip, new_value)


def _record_activity_portably(device, at, remote_ip, new_value):
    if new_value:
        Property.objects.filter(pk=new_value[0]).update(value=new_value[1], modified=at)
    fields = {"last_call_at": at, "remote_ip": remote_ip, "timeout_at": at + device.timeout}
    rows = Device.objects.filter(pk=device.id)
    flipped = False
    # A compare-and-swap on ``connected``, trying first the state the device was read in.
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
            device_id=device.id, kind=ConnectionEvent.Kind.CONNECTED, at=at, remote_ip=remote_ip
        )


def _stats_add(*, device_id, date, rx, tx):
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_STATS_INSERT} VALUES (%s, %s, 1, %s, %s) {_STATS_CONFLICT}",
            [device_id, date, rx, tx],
        )


_ONE_STATEMENT = connection.vendor == "postgresql"
_SERVER_TS_ATTEMPTS = 3


def _callback_statement(*, device, at, remote_ip, new_value, counts=None, bucket_id=None, rows=()):
    """PostgreSQL: a call's writes as one statement of data-modifying CTEs.

    The property (``new_value``), the device and its "connected" event; with ``counts`` (bytes
    received and sent) today's statistics; with ``rows``, (ts, value) records with their own
    times for the bucket ``bucket_id``, each replacing a stored one with its ts.
    """
    params = {
        "device": device.id,
        "at": at,
        "ip": _ip_param(remote_ip),
        "deadline": at + device.timeout,
        "connected": ConnectionEvent.Kind.CONNECTED.value,
    }
    if rows:
        params.update(bucket_insert_params(bucket_id=bucket_id, rows=rows))
    if new_value:
        params["property"], params["property_value"] = new_value[0], _json_text(new_value[1])
    if counts:
        params["date"], (params["rx"], params["tx"]) = _stats_date(at), counts
    with connection.cursor() as cursor:
        cursor.execute(_callback_sql(bool(rows), bool(new_value), bool(counts)), params)


@cache
def _callback_sql(records, set_property, stats):
    """The statement's text: a few variants, each built once and planned once per connection.

    Every write waits first for the device's advisory lock (``queue``, see ``_QUEUE``).
    """
    ctes = [f"queue AS ({_QUEUE})"]
    if records:
        ctes.append(f"records AS ({bucket_insert_sql(replace=True, after='queue')})")
    # Table names are the only interpolated values (S608).
    if set_property:
        ctes.append(
            f"set_property AS (UPDATE {_table(Property)} "  # noqa: S608
            "SET value = %(property_value)s::jsonb, modified = %(at)s "
            "FROM queue WHERE id = %(property)s)"
        )
    ctes += _device_state_ctes(
        device_id="SELECT %(device)s::bigint FROM queue", deadline="%(deadline)s"
    )
    if not stats:
        return f"WITH {', '.join(ctes)} SELECT 1"
    return (
        f"WITH {', '.join(ctes)} {_STATS_INSERT} "  # noqa: S608 (table names only)
        f"SELECT %(device)s, %(date)s, 1, %(rx)s, %(tx)s FROM queue {_STATS_CONFLICT}"
    )


def _device_state_ctes(*, device_id, deadline, source=None, claim=""):
    """The ``device`` and ``event`` CTEs of a callback's statement: the device (``device_id``, a
    query giving its id) is connected, called at ``%(at)s`` from ``%(ip)s``, until ``deadline``;
    ``source`` names another FROM item of the update, ``claim`` adds assignments. ``device``
    returns the device's id, whether it was connected before and its ``last_server_ts``.

    The state before the call comes from a row-locking subquery: under concurrent calls it is
    the state this update replaces, so exactly one call sees the device disconnected and writes
    the "connected" event.
    """
    # Table names and the caller's SQL are the only interpolated values (S608).
    return [
        f"device AS (UPDATE {_table(Device)} AS d SET connected = TRUE, "  # noqa: S608
        "connected_at = CASE WHEN before.connected THEN d.connected_at ELSE %(at)s END, "
        f"last_call_at = %(at)s, remote_ip = %(ip)s, timeout_at = {deadline}{claim} "
        f"FROM {f'{source}, ' if source else ''}(SELECT id, connected FROM {_table(Device)} "
        f"WHERE id = ({device_id}) FOR UPDATE) AS before "
        "WHERE d.id = before.id RETURNING d.id, before.connected, d.last_server_ts)",
        f"event AS (INSERT INTO {_table(ConnectionEvent)} (device_id, kind, at, remote_ip) "  # noqa: S608
        "SELECT device.id, %(connected)s, %(at)s, %(ip)s FROM device WHERE NOT device.connected)",
    ]


# PostgreSQL: every callback's writes start by taking its device's transaction-level advisory
# lock, so the calls of one device queue for it in order and then find its rows free. Without
# it they all wait on each row the call before them locked, PostgreSQL wakes them together and
# they race, which costs CPU and leaves some calls waiting much longer than the others. It also
# fixes the order in which calls of one device lock its rows, whichever path they take.
_QUEUE = "SELECT pg_advisory_xact_lock(%(device)s)"


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


_REMOTE_IP = Device._meta.get_field("remote_ip")


_STATS_INSERT = (
    f"INSERT INTO {_table(DeviceDailyStats)} AS s (device_id, date, calls, rx_bytes, tx_bytes)"
)
_STATS_CONFLICT = (
    "ON CONFLICT (device_id, date) DO UPDATE SET calls = s.calls + 1, "
    "rx_bytes = s.rx_bytes + excluded.rx_bytes, tx_bytes = s.tx_bytes + excluded.tx_bytes"
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


DELETE_CHUNK = 5000


def device_delete_many(*, devices):
    """Delete the devices of a queryset as ``device_delete`` does, ``DELETE_CHUNK`` at a time:
    the ORM lists the devices' ids in its queries (all of them in one, to detach their endpoint
    calls), and a PostgreSQL statement takes at most 65,535 parameters. Returns how many."""
    ids = list(devices.values_list("pk", flat=True))
    with transaction.atomic():
        for start in range(0, len(ids), DELETE_CHUNK):
            Device.objects.filter(pk__in=ids[start : start + DELETE_CHUNK]).delete()
    return len(ids)


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

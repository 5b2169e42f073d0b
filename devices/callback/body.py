"""What a callback's request carries: its body (the DRF parser), its records and parameters.

A body that parses as JSON is data: an object is one record, an array whose elements are all
objects is a batch, any other JSON value is one record. A body that is not JSON (or is empty) is
ignored, and says why. Refused: a body over ``CALLBACK_MAX_BYTES`` (413), more records than
``CALLBACK_MAX_RECORDS`` (413), JSON nested deeper than ``CALLBACK_MAX_DEPTH``, a number too large
to store, text no database stores (a NUL character, a lone surrogate), a bad ``ts`` (400).
"""

import ipaddress
import json
import math
import re
import sys
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser

from core.text import UNSTORABLE_MESSAGE, has_unstorable_text
from devices.callback.errors import CallbackError

# Timestamps are milliseconds since the epoch; anything outside this range is a client error
# rather than something to store (it also keeps ts within a 64-bit column).
MAX_TS = 2**53 - 1

NOT_JSON = object()


@dataclass(frozen=True)
class Body:
    """A request's body: its size, the parsed payload (``NOT_JSON`` when there is none), and why
    it is ignored (None when it is data)."""

    size: int
    payload: object = NOT_JSON
    ignored: str | None = None


EMPTY = Body(size=0, ignored="empty body")


class CallbackParser(BaseParser):
    """Reads a callback's body, whatever its content type, within ``CALLBACK_MAX_BYTES``, and
    parses it as JSON: a ``Body``. DRF calls it for a body with a length; ``EMPTY`` is the rest."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.CALLBACK_MAX_BYTES
        request = parser_context["request"]
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        raw = b"" if declared > limit else stream.read(limit + 1)
        if declared > limit or len(raw) > limit:
            raise CallbackError(413, f"body is larger than {limit} bytes")
        payload, ignored = parse_json(raw)
        return Body(size=len(raw), payload=payload, ignored=ignored)


class _NumberOutOfRange(ValueError):
    pass


def _parse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _parse_int(text):
    # Python refuses to convert integers longer than its limit (4,300 digits): too large to store.
    if len(text) - text.startswith("-") > sys.get_int_max_str_digits() > 0:
        raise _NumberOutOfRange(text)
    return int(text)


def _parse_float(text):
    value = float(text)
    if math.isinf(value):
        raise _NumberOutOfRange(text)
    return value


# orjson keeps integers to 64 bits (a longer one becomes a float): a body with a run of 19 digits
# or more, like every body orjson refuses, is decided by the standard library.
_LONG_NUMBER = re.compile(rb"\d{19}")


def parse_json(body: bytes):
    """(payload, None), or (``NOT_JSON``, why the body is ignored); raises CallbackError 400 for
    JSON that cannot be stored."""
    if not body.strip():
        return NOT_JSON, "empty body"
    data = NOT_JSON
    if not _LONG_NUMBER.search(body):
        with suppress(orjson.JSONDecodeError):
            data = orjson.loads(body)
    strict = data is not NOT_JSON  # orjson refuses lone surrogates
    if data is NOT_JSON:
        try:
            data = json.loads(
                body,
                parse_constant=_parse_constant,
                parse_float=_parse_float,
                parse_int=_parse_int,
            )
        except _NumberOutOfRange as exc:
            raise CallbackError(400, f"number {str(exc)[:40]} is too large to store") from None
        except RecursionError:
            raise _too_deep() from None
        except ValueError:
            return NOT_JSON, "body is not JSON"
    if (not strict or _NUL_ESCAPE in body) and has_unstorable_text(data):
        raise CallbackError(400, UNSTORABLE_MESSAGE)
    # A body cannot nest deeper than it has brackets: most bodies skip the walk.
    limit = settings.CALLBACK_MAX_DEPTH
    if body.count(b"[") + body.count(b"{") > limit and _deeper_than(data, limit):
        raise _too_deep()
    return data, None


# A NUL can only come escaped, so most bodies skip the walk.
_NUL_ESCAPE = b"\\u0000"


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


def is_batch(data):
    return isinstance(data, list) and bool(data) and all(isinstance(item, dict) for item in data)


def _own_ts(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not -MAX_TS <= value <= MAX_TS:
        raise CallbackError(400, f"ts {value!r} is not a time in milliseconds since the epoch")
    return int(value)


@dataclass(frozen=True)
class Records:
    """A payload's records: ``explicit`` maps a record's ts to its value (the last of a ts wins),
    ``server`` lists in order the values to store at the server's time; ``last_ts`` is the last
    record's ts (None: the server's time)."""

    explicit: dict
    server: list
    last_ts: int | None


def split_records(payload, query_ts):
    """Split a parsed body into records: an array of objects is a batch, else one record.

    A record's own numeric ``ts`` wins (``0``: the server's time) and leaves the stored value.
    Records without one take the query's ``ts``, one millisecond apart within a batch, so that a
    batch keeps all its records and a retried batch replaces the same ones.
    """
    items = payload if is_batch(payload) else [payload]
    if len(items) > settings.CALLBACK_MAX_RECORDS:
        raise CallbackError(
            413, f"{len(items)} records in one call, more than {settings.CALLBACK_MAX_RECORDS}"
        )
    explicit, server, ts = {}, [], None
    for index, item in enumerate(items):
        ts = None if query_ts is None else query_ts + index
        if isinstance(item, dict) and "ts" in item:
            own = _own_ts(item["ts"])
            if own is not None:
                item = {key: value for key, value in item.items() if key != "ts"}
                ts = own or None
        if ts is None:
            server.append(item)
        else:
            explicit[ts] = item
    return Records(explicit=explicit, server=server, last_ts=ts)


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


def remote_ip(forwarded, fallback):
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
    """``text`` as an address in its usual form (an IPv4-mapped IPv6 as IPv4, IPv6 compressed,
    without a zone), None if invalid."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        address = ipaddress.IPv6Address(address.packed)  # without its scope (zone)
    return str(address)

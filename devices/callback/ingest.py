"""``callback_ingest``: everything a device's call does, as one transaction, in SPEC order.

The call is prepared here once (its records, the payload as JSON text, the times); a writer then
reads the device and writes everything, or nothing when the device refuses the call: on
PostgreSQL one round trip to a database function (``postgresql.py``), elsewhere the ORM
(``portable.py``). Both apply the rules of ``rules.py``.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property

from django.db import connection
from django.utils import timezone

from buckets.events import RECORDS_WRITE
from core.db import json_dumps
from core.events import publish
from devices.callback import portable, postgresql
from devices.callback.body import NOT_JSON, Records, is_batch, parse_query_ts, split_records
from devices.callback.errors import CallbackError
from devices.callback.rules import refusal, refusal_error
from devices.events import PROPERTY_UPDATE, STATE_CHANGE
from devices.selectors import device_for_callback


@dataclass(frozen=True)
class Call:
    """A call to write: who it is for, what it stores, when."""

    username: str
    identifier: str
    generation: int | None  # the device token's generation; None for the owner's tokens
    at: datetime
    remote_ip: str | None
    size: int = 0  # bytes received
    payload: object = NOT_JSON  # what set_property and call_endpoint take; NOT_JSON: nothing
    records: Records | None = None

    @property
    def stores(self):
        """The body is data: the actions run (else only the device's activity is counted)."""
        return self.payload is not NOT_JSON

    @cached_property
    def now_ms(self):
        return int(self.at.timestamp() * 1000)

    @cached_property
    def value_text(self):
        """The payload as JSON text for a JSON column (None: SQL NULL for JSON null)."""
        return None if self.payload is None else json_dumps(self.payload)

    @cached_property
    def echo(self):
        """The payload as the answer of a call that sets the property it answers with."""
        return json.dumps(self.payload)

    @property
    def call_ts(self):
        """The ts of the endpoint call: the last record's, else the server's time."""
        return self.records.last_ts or self.now_ms

    @property
    def stats_date(self):
        """The day a call counts for: its date in the server's time zone (``TIME_ZONE``)."""
        return timezone.localdate(self.at, timezone.get_default_timezone())


@dataclass
class Answer:
    """What a call is answered: a JSON body (None for an empty 200) and headers."""

    body: str | None = None
    headers: dict = field(default_factory=dict)


def callback_ingest(*, claims, username, identifier, body=None, query_ts=None, remote_ip=None):
    """Write a call and return its answer; raise CallbackError when it is refused.

    ``body`` is the request's ``Body`` (None for a GET, which stores nothing and answers the
    response property). Connection state and statistics are written on every accepted call,
    including one whose body is ignored, which gets an ``X-Callback-Ignored`` header.
    """
    answer = Answer()
    payload, records = NOT_JSON, None
    if body is not None and body.payload is NOT_JSON:
        answer.headers["X-Callback-Ignored"] = body.ignored
    elif body is not None:
        try:
            records = split_records(body.payload, parse_query_ts(query_ts))
        except CallbackError:
            callback_refusal(claims=claims, username=username, identifier=identifier)
            raise
        payload = body.payload[-1] if is_batch(body.payload) else body.payload
    call = Call(
        username=username,
        identifier=identifier,
        generation=claims.generation,
        at=timezone.now(),
        remote_ip=remote_ip,
        size=0 if body is None else body.size,
        payload=payload,
        records=records,
    )
    written = writer()(call)
    if written.reason is not None:
        raise refusal_error(written.reason, username=username, identifier=identifier)
    answer.body = written.body
    announce(call, written)
    return answer


def announce(call, written):
    """The live events of a written call: the device connected, a property changed, records
    were stored."""
    events = []
    if written.came_online:
        events.append(
            STATE_CHANGE(call.identifier, ts=call.now_ms, state="connected", ip=call.remote_ip)
        )
    if written.set_property is not None:
        events.append(
            PROPERTY_UPDATE(call.identifier, ts=call.now_ms, property=written.set_property)
        )
    if written.wrote_bucket is not None:
        records = call.records
        events.append(
            RECORDS_WRITE(
                written.wrote_bucket,
                ts=call.now_ms,
                device=call.identifier,
                records=len(records.explicit) + len(records.server),
            )
        )
    publish(call.username, *events)


@cache
def writer():
    """The write path of this database: one function call on PostgreSQL, the ORM elsewhere."""
    return postgresql.write if connection.vendor == "postgresql" else portable.write


def callback_refusal(*, claims, username, identifier):
    """Raise the device's own refusal of a call (404, 401 or 403), if any: it comes before the
    refusal of the call's body."""
    device = device_for_callback(username=username, identifier=identifier)
    reason = refusal(device, claims.generation)
    if reason is not None:
        raise refusal_error(reason, username=username, identifier=identifier)

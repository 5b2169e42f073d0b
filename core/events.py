"""The live events' catalogue: each kind of event, named with its asset kind first
(``device_...``, ``bucket_...``, ``endpoint_...``), with the fields a subscription may filter on.

Each app declares the events it raises (its ``events.py``, imported when the app is ready);
``GET /v1/server/events`` lists them, and Thinger.io's Node-RED and n8n nodes build their
subscription forms from each filter's ``field`` and ``hints``.

``publish`` sends events to the owner's subscribers once the transaction that caused them
commits (``core.event_bus`` carries them to the events process).
"""

import logging
import re
import time
from dataclasses import dataclass

from django.db import transaction

from core import event_bus
from core.identifiers import IDENTIFIER_PATTERN

logger = logging.getLogger(__name__)
_USERNAME = re.compile(IDENTIFIER_PATTERN)
# What a long-lived token's ``allow`` must grant to read the events: (resource type, action).
PERMISSION = ("Events", "ReadEvents")
# Events travel in messages of at most this many (a sweep may disconnect thousands at once).
EVENTS_PER_MESSAGE = 100


@dataclass(frozen=True)
class Filter:
    field: str
    hints: tuple[str, ...] = ()

    def out(self):
        return (
            {"field": self.field, "hints": list(self.hints)}
            if self.hints
            else {"field": self.field}
        )


@dataclass(frozen=True)
class EventKind:
    name: str
    filters: tuple[Filter, ...]
    description: str

    @property
    def asset(self):
        """The asset kind the event is about, the first part of its name."""
        return self.name.split("_", 1)[0]

    def __call__(self, asset_id, *, ts=None, **fields):
        """One event of this kind about ``asset_id``: ``event``, the asset's id, ``ts`` (ms; now
        by default) and the event's own fields."""
        return {
            "event": self.name,
            self.asset: asset_id,
            "ts": int(time.time() * 1000) if ts is None else ts,
            **fields,
        }

    def out(self):
        return {
            "event": self.name,
            "asset": self.asset,
            "description": self.description,
            "filters": [item.out() for item in self.filters],
        }


_KINDS: dict[str, EventKind] = {}


def declare(name, *filters, description):
    """Declare a kind of event: ``filters`` are field names, or (field, hints) pairs; the asset's
    id field comes first."""
    kind = EventKind(
        name=name,
        filters=tuple(
            Filter(item) if isinstance(item, str) else Filter(item[0], tuple(item[1]))
            for item in filters
        ),
        description=description,
    )
    if not name.startswith(f"{kind.asset}_") or kind.filters[0].field != kind.asset:
        raise ValueError(f"event {name!r} must start with its asset and filter on it first")
    _KINDS[name] = kind
    return kind


def catalogue():
    """Every kind of event, by name."""
    return [_KINDS[name].out() for name in sorted(_KINDS)]


def kind(name):
    return _KINDS.get(name)


def group(username):
    """The channel group of a user's subscribers; None for a name the API has no route for."""
    return f"events.{username}" if _USERNAME.fullmatch(username or "") else None


def publish(username, *events):
    """Send ``events`` (made by calling an ``EventKind``) to ``username``'s subscribers when the
    current transaction commits, at once outside one. Never fails its caller: live events are
    best effort."""
    name = group(username)
    if name is None or not events:
        return
    batches = [
        list(events[at : at + EVENTS_PER_MESSAGE])
        for at in range(0, len(events), EVENTS_PER_MESSAGE)
    ]

    def send():
        for batch in batches:
            event_bus.send(name, batch)

    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(send, robust=True)
        return
    # Nothing to wait for; and no question to the database, which may be the very thing down.
    try:
        send()
    except Exception:
        logger.exception("live events dropped")

"""The live events' catalogue: each kind of event, named with its asset kind first
(``device_...``, ``bucket_...``, ``endpoint_...``), with the fields a subscription may filter on.

Each app declares the events it raises (its ``events.py``, imported when the app is ready);
``GET /v1/server/events`` lists them, and Thinger.io's Node-RED and n8n nodes build their
subscription forms from each filter's ``field`` and ``hints``.
"""

from dataclasses import dataclass


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

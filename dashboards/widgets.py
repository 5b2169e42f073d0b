"""What a dashboard's ``widgets`` and ``layout`` may hold: the kinds of widget, the sources each
reads, their options, and the grid. These checks read only the JSON; ``dashboards.services``
adds the one that needs the database (each source names a device, property or bucket of the
dashboard's owner).

A widget is ``{"id", "type", "title"?, "subtitle"?, "background"?, "source", "options"?}``;
its source is one of

- ``{"kind": "property", "device", "property", "field"?}``: a device property's value (a field
  of it, by a dotted path, when ``field`` is given);
- ``{"kind": "bucket", "bucket", "field"?}``: the field of the bucket's last record; for a chart,
  ``{"kind": "bucket", "bucket", "fields": [...], "range"?, "aggregation"?}``, and for a map
  ``{"kind": "bucket", "bucket", "range"?}``: the records of a range;
- ``{"kind": "device", "device", "field"}``: the device's ``status``, ``last_call`` or
  ``calls_today`` (a device status widget shows all three and needs no field).

A range is ``{"last": "1h"}`` (an interval as bucket reads write ``agg``) or
``{"from": ms, "to": ms?}``; an aggregation is ``{"interval": "5m", "type": "mean"}``.

Every object is closed: an unknown key is an error, so a misspelt option is told, not ignored.
Errors are ``{"widgets[0].source.device": [message, ...]}``: the widget by its position and the
field by its path, the widget's id in the message.
"""

import math
import re
from dataclasses import dataclass, field

from buckets.aggregates import AGG_TYPES
from buckets.api import interval_ms
from buckets.selectors import READ_MAX_ITEMS
from core.identifiers import IDENTIFIER_PATTERN

GRID_COLUMNS = 12
GRID_MAX_ROW = 999
GRID_MAX_HEIGHT = 24
MAX_WIDGETS = 48
MAX_SERIES = 8
TEXT_MAX = 255
UNIT_MAX = 16
MAX_DECIMALS = 6
MAX_RANGES = 8
FIELD_MAX = 255
# A range reaches back at most this far (ten years).
RANGE_MAX_MS = 3660 * 86_400_000
# The records a chart or a map shows when its source names no range.
DEFAULT_RANGE = {"last": "1d"}
DEVICE_FIELDS = ("status", "last_call", "calls_today")
SOURCE_KINDS = ("property", "bucket", "device")

_ID = re.compile(rf"{IDENTIFIER_PATTERN}")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class Errors:
    """Errors by the path of what is wrong (``widgets[2].options.max``), in the order found."""

    def __init__(self):
        self.found = {}

    def add(self, key, message):
        self.found.setdefault(key, []).append(message)

    def __bool__(self):
        return bool(self.found)


def _number(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def field_path_error(value):
    """Why ``value`` is not a field path (``temperature``, ``gps.lat``), or None."""
    if not isinstance(value, str) or not value:
        return "must be a field name, such as temperature or gps.lat"
    if len(value) > FIELD_MAX:
        return f"must be at most {FIELD_MAX} characters"
    if any(part == "" for part in value.split(".")):
        return "must be field names joined by dots, such as gps.lat"
    return None


# --- Options ----------------------------------------------------------------------------------
# Each option is checked by a function of its value returning why it is wrong, or None.


def _text(limit):
    def check(value):
        if not isinstance(value, str):
            return "must be text"
        return f"must be at most {limit} characters" if len(value) > limit else None

    return check


def _any_number(value):
    return None if _number(value) else "must be a number"


def _decimals(value):
    if not _integer(value) or not 0 <= value <= MAX_DECIMALS:
        return f"must be a whole number from 0 to {MAX_DECIMALS}"
    return None


def _colour(value):
    if not isinstance(value, str) or not _COLOUR.fullmatch(value):
        return "must be a colour written #rrggbb, such as #16a34a"
    return None


def _flag(value):
    return None if isinstance(value, bool) else "must be true or false"


def _any_json(value):
    return None


def _field_option(value):
    return field_path_error(value)


def _ranges(value):
    """Colour ranges ``[{"from", "to", "color"}]``: ``from`` up to ``to``, inclusive."""
    if not isinstance(value, list) or len(value) > MAX_RANGES:
        return f'must be a list of at most {MAX_RANGES} {{"from", "to", "color"}} objects'
    for index, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"from", "to", "color"}:
            return f'[{index}] must be an object with "from", "to" and "color"'
        if not (_number(item["from"]) and _number(item["to"])) or item["from"] > item["to"]:
            return f'[{index}]: "from" and "to" must be numbers, "from" not above "to"'
        problem = _colour(item["color"])
        if problem:
            return f"[{index}].color {problem}"
    return None


_UNIT = _text(UNIT_MAX)
_SCALE = {"min": _any_number, "max": _any_number}


@dataclass(frozen=True)
class Kind:
    """A kind of widget: the sources it reads and the options it takes. ``series``: a bucket
    source gives the records of a range (a chart, a map) rather than the last record;
    ``control``: it writes its property."""

    type: str
    label: str
    sources: tuple
    options: dict = field(default_factory=dict)
    series: bool = False
    control: bool = False
    # Options whose (default) values must keep min below max.
    scale: tuple = ()


KINDS = {
    kind.type: kind
    for kind in (
        Kind("chart", "Time series chart", ("bucket",), {"unit": _UNIT}, series=True),
        Kind("value", "Value", SOURCE_KINDS, {"unit": _UNIT, "decimals": _decimals}),
        Kind("text", "Text", SOURCE_KINDS),
        Kind(
            "gauge",
            "Gauge",
            SOURCE_KINDS,
            {**_SCALE, "unit": _UNIT, "decimals": _decimals, "ranges": _ranges},
            scale=(0, 100),
        ),
        Kind(
            "donut",
            "Donut",
            SOURCE_KINDS,
            {**_SCALE, "unit": _UNIT, "decimals": _decimals, "color": _colour},
            scale=(0, 100),
        ),
        Kind("led", "LED", SOURCE_KINDS, {"color": _colour, "ranges": _ranges, "blink": _flag}),
        Kind(
            "map",
            "Map",
            ("property", "bucket"),
            {"lat": _field_option, "lng": _field_option},
            series=True,
        ),
        Kind("device_status", "Device status", ("device",)),
        Kind("switch", "Switch", ("property",), {"on": _any_json, "off": _any_json}, control=True),
        Kind(
            "slider",
            "Slider",
            ("property",),
            {**_SCALE, "step": _any_number},
            control=True,
            scale=(0, 100),
        ),
        Kind("text_input", "Text input", ("property",), control=True),
    )
}
WIDGET_KEYS = ("id", "type", "title", "subtitle", "background", "source", "options")


# --- Sources ----------------------------------------------------------------------------------


def _closed(errors, where, value, allowed):
    """Whether ``value`` is an object of ``allowed`` keys only (errors added otherwise)."""
    if not isinstance(value, dict):
        errors.add(where, "must be an object")
        return False
    unknown = [key for key in value if key not in allowed]
    for key in unknown:
        errors.add(f"{where}.{key}", "unknown field")
    return not unknown


def _identifier(errors, where, source, key, what):
    value = source.get(key)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        errors.add(f"{where}.{key}", f"must be the id of one of your {what}")


def _optional_field(errors, where, source):
    if "field" in source:
        problem = field_path_error(source["field"])
        if problem:
            errors.add(f"{where}.field", problem)


def range_span_ms(value):
    """The span of a valid range: ``last``'s interval, or ``to - from`` (None when it runs to
    now)."""
    if "last" in value:
        return interval_ms(value["last"])
    if value.get("to") is None:
        return None
    return value["to"] - value["from"]


def _range(errors, where, value):
    if not _closed(errors, where, value, ("last", "from", "to")):
        return False
    if "last" in value:
        if set(value) != {"last"}:
            errors.add(where, 'is either {"last": interval} or {"from": ms, "to": ms}')
            return False
        span = interval_ms(value["last"])
        if span is None:
            errors.add(f"{where}.last", "must be an interval such as 15m, 1h, 1d, 1w or 30d")
            return False
        if span > RANGE_MAX_MS:
            errors.add(f"{where}.last", "must be at most ten years")
            return False
        return True
    low, high = value.get("from"), value.get("to")
    if not _integer(low) or low < 0:
        errors.add(f"{where}.from", "must be milliseconds since the epoch")
        return False
    if high is not None and (not _integer(high) or high < low):
        errors.add(f"{where}.to", 'must be milliseconds since the epoch, not before "from"')
        return False
    return True


def _aggregation(errors, where, value, span):
    if not _closed(errors, where, value, ("interval", "type")):
        return
    step = interval_ms(value.get("interval"))
    if step is None:
        errors.add(f"{where}.interval", "must be an interval such as 1m, 5m, 1h or 1d")
    elif span is not None and span // step > READ_MAX_ITEMS:
        errors.add(
            f"{where}.interval",
            f"makes more than {READ_MAX_ITEMS} points over the range: choose a longer one",
        )
    if "type" in value and value["type"] not in AGG_TYPES:
        errors.add(f"{where}.type", f"must be one of {', '.join(AGG_TYPES)}")


def _source(errors, where, kind, source):
    if not isinstance(source, dict):
        errors.add(where, "must be an object with a kind: property, bucket or device")
        return
    what = source.get("kind")
    if what not in kind.sources:
        errors.add(f"{where}.kind", f"a {kind.type} widget reads {' or '.join(kind.sources)}")
        return
    if what == "property":
        if _closed(errors, where, source, ("kind", "device", "property", "field")):
            _identifier(errors, where, source, "device", "devices")
            _identifier(errors, where, source, "property", "device's properties")
            _optional_field(errors, where, source)
    elif what == "device":
        if _closed(errors, where, source, ("kind", "device", "field")):
            _identifier(errors, where, source, "device", "devices")
            needed = kind.type != "device_status"
            if (needed or "field" in source) and source.get("field") not in DEVICE_FIELDS:
                errors.add(f"{where}.field", f"must be one of {', '.join(DEVICE_FIELDS)}")
    elif kind.type == "chart":
        keys = ("kind", "bucket", "fields", "range", "aggregation")
        if _closed(errors, where, source, keys):
            _identifier(errors, where, source, "bucket", "buckets")
            fields = source.get("fields")
            if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_SERIES:
                errors.add(f"{where}.fields", f"must list 1 to {MAX_SERIES} fields to draw")
            else:
                for index, name in enumerate(fields):
                    problem = field_path_error(name)
                    if problem:
                        errors.add(f"{where}.fields[{index}]", problem)
                if len(set(fields)) != len(fields):
                    errors.add(f"{where}.fields", "names a field twice")
            span = range_span_ms(DEFAULT_RANGE)
            if "range" in source:
                span = (
                    range_span_ms(source["range"])
                    if _range(errors, f"{where}.range", source["range"])
                    else None
                )
            if "aggregation" in source:
                _aggregation(errors, f"{where}.aggregation", source["aggregation"], span)
    elif kind.series:
        if _closed(errors, where, source, ("kind", "bucket", "range")):
            _identifier(errors, where, source, "bucket", "buckets")
            if "range" in source:
                _range(errors, f"{where}.range", source["range"])
    elif _closed(errors, where, source, ("kind", "bucket", "field")):
        _identifier(errors, where, source, "bucket", "buckets")
        _optional_field(errors, where, source)


def _options(errors, where, kind, options):
    if not _closed(errors, where, options, tuple(kind.options)):
        return
    for name, value in options.items():
        problem = kind.options[name](value)
        if problem:
            errors.add(f"{where}.{name}", problem)
    if errors:
        return
    if kind.scale:
        low, high = scale(kind, options)
        if low >= high:
            errors.add(f"{where}.max", f"must be above min ({low})")
    if kind.type == "slider" and "step" in options and options["step"] <= 0:
        errors.add(f"{where}.step", "must be above 0")


def _widget(errors, where, widget):
    if not _closed(errors, where, widget, WIDGET_KEYS):
        return
    kind = KINDS.get(widget.get("type")) if isinstance(widget.get("type"), str) else None
    if kind is None:
        errors.add(f"{where}.type", f"must be one of {', '.join(KINDS)}")
        return
    for name in ("title", "subtitle"):
        if name in widget:
            problem = _text(TEXT_MAX)(widget[name])
            if problem:
                errors.add(f"{where}.{name}", problem)
    if "background" in widget:
        problem = _colour(widget["background"])
        if problem:
            errors.add(f"{where}.background", problem)
    if "source" not in widget:
        errors.add(f"{where}.source", "is required: what the widget shows")
    else:
        _source(errors, f"{where}.source", kind, widget["source"])
    if "options" in widget:
        options_errors = Errors()
        _options(options_errors, f"{where}.options", kind, widget["options"])
        for key, messages in options_errors.found.items():
            for message in messages:
                errors.add(key, message)


def widget_errors(widgets):
    """The errors of a widget list (an empty ``Errors`` when it is valid)."""
    errors = Errors()
    if not isinstance(widgets, list):
        errors.add("widgets", "must be a list of widgets")
        return errors
    if len(widgets) > MAX_WIDGETS:
        errors.add("widgets", f"must hold at most {MAX_WIDGETS} widgets")
        return errors
    seen = set()
    for index, widget in enumerate(widgets):
        where = f"widgets[{index}]"
        if not isinstance(widget, dict):
            errors.add(where, "must be an object")
            continue
        ident = widget.get("id")
        if not isinstance(ident, str) or not _ID.fullmatch(ident):
            errors.add(f"{where}.id", "must be 1 to 32 letters, digits, '_' or '-'")
        elif ident in seen:
            errors.add(f"{where}.id", f'another widget has the id "{ident}"')
        else:
            seen.add(ident)
        _widget(errors, where, widget)
    return errors


def layout_errors(layout, widgets):
    """The errors of a layout ``{widget id: {x, y, w, h}}`` for these (valid) widgets: positions
    on a grid of 12 columns; a widget without one is placed below the others."""
    errors = Errors()
    if not isinstance(layout, dict):
        errors.add("layout", "must be an object of {widget id: {x, y, w, h}}")
        return errors
    ids = {widget["id"] for widget in widgets}
    bounds = {
        "x": (0, GRID_COLUMNS - 1),
        "y": (0, GRID_MAX_ROW),
        "w": (1, GRID_COLUMNS),
        "h": (1, GRID_MAX_HEIGHT),
    }
    for ident, position in layout.items():
        where = f"layout.{ident}"
        if ident not in ids:
            errors.add(where, "no widget has this id")
            continue
        if not isinstance(position, dict) or set(position) != set(bounds):
            errors.add(where, "must be an object with x, y, w and h")
            continue
        fits = True
        for name, (low, high) in bounds.items():
            value = position[name]
            if not _integer(value) or not low <= value <= high:
                errors.add(f"{where}.{name}", f"must be a whole number from {low} to {high}")
                fits = False
        if fits and position["x"] + position["w"] > GRID_COLUMNS:
            errors.add(f"{where}.w", f"x + w must be at most {GRID_COLUMNS} (the grid's columns)")
    return errors


def scale(kind, options):
    """(min, max) of a gauge, donut or slider: its options', else the kind's defaults."""
    return options.get("min", kind.scale[0]), options.get("max", kind.scale[1])


def widget_by_id(widgets, ident):
    return next((widget for widget in widgets if widget.get("id") == ident), None)


def references(widgets):
    """What valid ``widgets`` name: (device ids, (device id, property id) pairs, bucket ids)."""
    devices, properties, buckets = set(), set(), set()
    for widget in widgets:
        source = widget["source"]
        if source["kind"] == "bucket":
            buckets.add(source["bucket"])
        else:
            devices.add(source["device"])
            if source["kind"] == "property":
                properties.add((source["device"], source["property"]))
    return devices, properties, buckets

"""How the console draws a dashboard's widgets: each widget and its data (``dashboard_data``)
become a tile, with its place on the grid and what its template needs (text formatted, SVG
paths of gauges and donuts, colours), so the templates only print."""

import json
import math
from datetime import UTC, datetime

from dashboards.widgets import GRID_COLUMNS, KINDS, scale

DEFAULT_SIZE = {"chart": (6, 4), "map": (6, 4), "text": (4, 2), "text_input": (4, 2)}
SMALL_SIZE = (3, 3)
ON_COLOUR = "#16a34a"
OFF_COLOUR = "#cbd5e1"
ACCENT = "#2563eb"
GAUGE_RADIUS = 80


def places(widgets, layout):
    """Each widget's (x, y, w, h): its own in ``layout``, else the next free place in rows
    below the placed ones, in the order of the list."""
    placed = {}
    bottom = 0
    for widget in widgets:
        place = layout.get(widget["id"])
        if place:
            placed[widget["id"]] = (place["x"], place["y"], place["w"], place["h"])
            bottom = max(bottom, place["y"] + place["h"])
    x, y, row_height = 0, bottom, 0
    for widget in widgets:
        if widget["id"] in placed:
            continue
        w, h = DEFAULT_SIZE.get(widget["type"], SMALL_SIZE)
        if x + w > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed[widget["id"]] = (x, y, w, h)
        x, row_height = x + w, max(row_height, h)
    return placed


def moment(ms):
    """A time in ms as an aware datetime for the templates, or None."""
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def display(value, decimals=None):
    """A value as a widget prints it: numbers with ``decimals`` (else as they are, at most
    three decimals), text as it is, anything else as JSON; None as a dash."""
    if value is None:
        return "—"
    if _is_number(value):
        if decimals is not None:
            return f"{value:.{decimals}f}"
        if isinstance(value, float) and not value.is_integer():
            return f"{value:.3f}".rstrip("0").rstrip(".")
        return str(int(value)) if isinstance(value, float) and abs(value) < 2**53 else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _dark(colour):
    """Whether text on ``colour`` (#rrggbb) reads better light."""
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5


def _fraction(value, low, high):
    return min(1.0, max(0.0, (value - low) / (high - low)))


def _arc_point(fraction):
    """A point of the gauge's half circle (centre 100, 100): fraction 0 left, 1 right."""
    angle = math.pi * (1 - fraction)
    x = 100 + GAUGE_RADIUS * math.cos(angle)
    y = 100 - GAUGE_RADIUS * math.sin(angle)
    return f"{x:.2f} {y:.2f}"


def _arc(start, end):
    return f"M {_arc_point(start)} A {GAUGE_RADIUS} {GAUGE_RADIUS} 0 0 1 {_arc_point(end)}"


def _range_colour(value, ranges):
    if not _is_number(value):
        return None
    return next((r["color"] for r in ranges if r["from"] <= value <= r["to"]), None)


def _gauge(data, options):
    value = data.get("value")
    low, high = scale(KINDS["gauge"], options)
    ranges = options.get("ranges", [])
    out = {
        "track": _arc(0, 1),
        "ranges": [
            {"path": _arc(_fraction(r["from"], low, high), _fraction(r["to"], low, high)), **r}
            for r in ranges
        ],
        "text": display(value, options.get("decimals")),
        "unit": options.get("unit", ""),
        "min": display(low),
        "max": display(high),
        "arc": None,
    }
    if _is_number(value):
        fraction = _fraction(value, low, high)
        out["arc"] = _arc(0, fraction) if fraction > 0 else None
        out["colour"] = _range_colour(value, ranges) or ACCENT
        out["needle"] = _arc_point(fraction).split()
    return out


def _donut(data, options):
    value = data.get("value")
    low, high = scale(KINDS["donut"], options)
    circumference = 2 * math.pi * 40
    fraction = _fraction(value, low, high) if _is_number(value) else 0
    return {
        "dash": f"{fraction * circumference:.2f} {circumference:.2f}",
        "colour": options.get("color", ACCENT),
        "text": display(value, options.get("decimals")),
        "unit": options.get("unit", ""),
        "percent": round(fraction * 100),
    }


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() not in ("", "off", "false", "0", "no")
    return bool(value)


def _led(data, options):
    value = data.get("value")
    ranges = options.get("ranges")
    if ranges:
        colour = _range_colour(value, ranges)
    else:
        colour = options.get("color", ON_COLOUR) if _truthy(value) else None
    return {
        "on": colour is not None,
        "colour": colour or OFF_COLOUR,
        "blink": colour is not None and options.get("blink", False),
        "text": display(value),
    }


def _chart(widget, data):
    series = [
        {"label": one["field"], "points": one["points"]} for one in data["series"] if one["points"]
    ]
    background = widget.get("background")
    return {
        "dark": bool(background) and _dark(background),
        "series": series,
        "first": data["from"],
        "span": data["to"] - data["from"],
        "interval": data["interval"],
        "aggregation": data["aggregation"],
        "unit": widget.get("options", {}).get("unit", ""),
    }


def _map(data):
    points = data.get("points", [])
    if not points:
        return {"points": [], "last": None}
    lats = [p["lat"] for p in points]
    lngs = [p["lng"] for p in points]
    pad = 0.0005
    south, north = min(lats) - pad, max(lats) + pad
    west, east = min(lngs) - pad, max(lngs) + pad
    width, height = 300, 160

    def xy(point):
        x = 10 + (point["lng"] - west) / (east - west) * (width - 20)
        y = 10 + (north - point["lat"]) / (north - south) * (height - 20)
        return round(x, 1), round(y, 1)

    coords = [xy(p) for p in points]
    last = points[-1]
    return {
        "points": coords,
        "line": " ".join(f"{x},{y}" for x, y in coords),
        "last": {**last, "x": coords[-1][0], "y": coords[-1][1], "at": moment(last["ts"])},
        "osm": f"https://www.openstreetmap.org/?mlat={last['lat']}&mlon={last['lng']}"
        f"#map=16/{last['lat']}/{last['lng']}",
    }


def _control(kind, data, options):
    out = _control_value(kind, data, options)
    pickup = data.get("pickup") or {}
    out["pickup"] = {**pickup, "at": moment(pickup.get("at"))}
    return out


def _control_value(kind, data, options):
    value = data.get("value")
    if kind == "switch":
        on_value = options.get("on", True)
        return {"on": value == on_value, "text": display(value)}
    if kind == "slider":
        low, high = scale(KINDS["slider"], options)
        number = value if _is_number(value) else None
        return {
            "min": low,
            "max": high,
            "step": options.get("step", 1),
            "value": number,
            "text": display(value),
            "percent": round(_fraction(number, low, high) * 100) if number is not None else 0,
        }
    return {"text": display(value)}


def tile(widget, data, place):
    """What the page draws for one widget."""
    kind = KINDS[widget["type"]]
    x, y, w, h = place
    style = f"--col: {x + 1} / span {w}; --row: {y + 1} / span {h}; --h: {h};"
    background = widget.get("background")
    if background:
        style += f" background: {background};"
    options = widget.get("options", {})
    out = {
        "id": widget["id"],
        "type": kind.type,
        "label": kind.label,
        "title": widget.get("title") or kind.label,
        "subtitle": widget.get("subtitle", ""),
        "style": style,
        "dark": bool(background) and _dark(background),
        "unavailable": data.get("unavailable"),
        "source": widget["source"],
        "at": moment(data.get("ts")),
    }
    if out["unavailable"]:
        return out
    if kind.type in ("value", "text"):
        field = widget["source"].get("field")
        value = data.get("value")
        if field == "last_call" and widget["source"]["kind"] == "device":
            out["time"] = moment(value)
        out["text"] = display(value, options.get("decimals"))
        out["unit"] = options.get("unit", "") if value is not None else ""
    elif kind.type == "gauge":
        out["gauge"] = _gauge(data, options)
    elif kind.type == "donut":
        out["donut"] = _donut(data, options)
    elif kind.type == "led":
        out["led"] = _led(data, options)
    elif kind.type == "chart":
        out["chart"] = _chart(widget, data)
        out["json_id"] = f"widget-{widget['id']}-data"
    elif kind.type == "map":
        out["map"] = _map(data)
    elif kind.type == "device_status":
        out["device"] = {**data, "last_call_at": moment(data["last_call"])}
    else:
        out["control"] = _control(kind.type, data, options)
    return out


def tiles(dashboard, data, widgets=None):
    """The tiles of a dashboard in the order a phone shows them, one under the other: by row,
    then by column; those of the widgets ``data`` has (all, or the ones asked for).
    ``widgets``: the dashboard's as they read another device (its selector's)."""
    widgets = dashboard.widgets if widgets is None else widgets
    placed = places(widgets, dashboard.layout)
    drawn = [
        tile(widget, data["widgets"][widget["id"]], placed[widget["id"]])
        for widget in widgets
        if widget["id"] in data["widgets"]
    ]
    order = {ident: (y, x) for ident, (x, y, _, _) in placed.items()}
    return sorted(drawn, key=lambda one: order[one["id"]])

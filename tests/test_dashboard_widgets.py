"""The widget rules (``dashboards.widgets``) and how tiles are drawn (``dashboards.tiles``):
every widget type's valid form is accepted; anything else shaped like a widget is an error
naming where, never an exception (Hypothesis); and what a valid widget stores can always be
read and drawn."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.selectors import field_value
from dashboards.tiles import display, places, tile
from dashboards.widgets import KINDS, MAX_WIDGETS, layout_errors, widget_errors

PROPERTY = {"kind": "property", "device": "d1", "property": "p"}
VALID = {
    "chart": {"kind": "bucket", "bucket": "b1", "fields": ["t"]},
    "value": PROPERTY,
    "text": {"kind": "bucket", "bucket": "b1"},
    "gauge": {"kind": "device", "device": "d1", "field": "calls_today"},
    "donut": PROPERTY,
    "led": {**PROPERTY, "field": "on"},
    "map": {"kind": "bucket", "bucket": "b1", "range": {"last": "1w"}},
    "device_status": {"kind": "device", "device": "d1"},
    "switch": PROPERTY,
    "slider": PROPERTY,
    "text_input": PROPERTY,
}
OPTIONS = {
    "chart": {"unit": "°C"},
    "value": {"unit": "°C", "decimals": 2},
    "text": {},
    "gauge": {"min": -10, "max": 50, "ranges": [{"from": -10, "to": 0, "color": "#2563eb"}]},
    "donut": {"min": 0, "max": 1.5, "color": "#0891b2"},
    "led": {"color": "#ff0000", "blink": True, "ranges": []},
    "map": {"lat": "gps.lat", "lng": "gps.lng"},
    "device_status": {},
    "switch": {"on": {"led": "on"}, "off": {"led": "off"}},
    "slider": {"min": 0, "max": 10, "step": 0.5},
    "text_input": {},
}


def test_every_type_has_a_valid_form():
    assert set(VALID) == set(KINDS)
    widgets = [
        {
            "id": kind,
            "type": kind,
            "title": kind,
            "subtitle": "",
            "background": "#FFFFFF",
            "source": VALID[kind],
            "options": OPTIONS[kind],
        }
        for kind in KINDS
    ]

    assert widget_errors(widgets).found == {}
    assert layout_errors({"map": {"x": 11, "y": 999, "w": 1, "h": 24}}, widgets).found == {}


def test_at_most_48_widgets():
    widgets = [{"id": f"w{i}", "type": "value", "source": PROPERTY} for i in range(49)]

    assert widget_errors(widgets[:MAX_WIDGETS]).found == {}
    assert widget_errors(widgets).found == {"widgets": ["must hold at most 48 widgets"]}


def test_errors_name_every_mistake_by_its_path():
    widgets = [
        {"id": "a", "type": "value", "source": {**PROPERTY, "field": "x..y"}, "extra": 1},
        {"type": "gauge", "source": PROPERTY, "options": {"min": "low"}},
        "not an object",
    ]

    assert widget_errors(widgets).found == {
        "widgets[0].extra": ["unknown field"],
        "widgets[1].id": ["must be 1 to 32 letters, digits, '_' or '-'"],
        "widgets[1].options.min": ["must be a number"],
        "widgets[2]": ["must be an object"],
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
words = st.sampled_from(
    [
        "kind", "device", "property", "bucket", "field", "fields", "range", "aggregation", "last",
        "from", "to", "interval", "type", "min", "max", "step", "unit", "decimals", "ranges",
        "color", "blink", "lat", "lng", "on", "off", "x", "y", "w", "h",
    ]
)  # fmt: skip
nearly = st.recursive(
    json_values | st.sampled_from([*KINDS, "property", "bucket", "device", "1h", "d1", 0, 12]),
    lambda inner: st.dictionaries(words, inner, max_size=5) | st.lists(inner, max_size=3),
    max_leaves=12,
)
widgets_like = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(["a", "b", "c"]) | json_values,
            "type": st.sampled_from([*KINDS, 1, None]),
        },
        optional={
            "source": nearly,
            "options": nearly,
            "title": json_values,
            "background": st.sampled_from(["#000000", "#12345g", 7]),
        },
    )
    | nearly,
    max_size=4,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widgets=widgets_like, layout=nearly)
def test_anything_shaped_like_widgets_is_judged_never_raised(widgets, layout):
    errors = widget_errors(widgets)
    if errors:
        for key, messages in errors.found.items():
            assert key.startswith("widgets") and messages
        return
    layout_errors(layout, widgets)
    placed = places(
        widgets, layout if isinstance(layout, dict) and not layout_errors(layout, widgets) else {}
    )
    for widget in widgets:
        assert tile(widget, {"value": None, "ts": None, "series": [], "from": 0, "to": 1,
                             "interval": None, "aggregation": None, "points": [],
                             "status": "never", "connected": False, "last_call": None,
                             "calls_today": 0}, placed[widget["id"]])  # fmt: skip


option_values = st.sampled_from(
    [
        0, 1, -5, 2.5, 100, 1e300, "°C", "", "gps.lat", "#16a34a", True, False, None, [],
        [{"from": 0, "to": 10, "color": "#ff0000"}], [{"from": 5, "to": 1, "color": "#ff0000"}],
    ]
)  # fmt: skip


@st.composite
def valid_looking(draw):
    """A widget of a real type with its valid source and options drawn from plausible values,
    and data of any value: most pass the rules, and each that does is drawn."""
    kind = draw(st.sampled_from(list(KINDS)))
    names = list(KINDS[kind].options)
    options = draw(st.dictionaries(st.sampled_from(names), option_values)) if names else {}
    widget = {"id": "w", "type": kind, "source": VALID[kind], "options": options}
    data = {
        "value": draw(json_values),
        "ts": draw(st.none() | st.integers(0, 2**42)),
        "series": [{"field": "t", "points": [[1, 2.5], [2, 3]]}],
        "from": 0,
        "to": 60_000,
        "interval": None,
        "aggregation": None,
        "points": draw(st.lists(st.fixed_dictionaries({
            "lat": st.floats(-90, 90), "lng": st.floats(-180, 180), "ts": st.integers(0, 9)
        }), max_size=3)),
        "status": "connected",
        "connected": True,
        "last_call": 1,
        "calls_today": 3,
    }  # fmt: skip
    return widget, data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=valid_looking())
def test_every_valid_widget_is_drawn_whatever_its_value(case):
    widget, data = case
    if widget_errors([widget]):
        return
    drawn = tile(widget, data, (0, 0, 3, 3))
    assert drawn["id"] == "w" and drawn["title"]


def test_widgets_without_a_place_go_below_in_rows_of_twelve_columns():
    kinds = [("a", "value"), ("b", "chart"), ("c", "value"), ("d", "value"), ("e", "text")]
    widgets = [{"id": ident, "type": kind} for ident, kind in kinds]

    placed = places(widgets, {"a": {"x": 0, "y": 0, "w": 12, "h": 2}})

    assert placed == {
        "a": (0, 0, 12, 2),
        "b": (0, 2, 6, 4),
        "c": (6, 2, 3, 3),
        "d": (9, 2, 3, 3),
        "e": (0, 6, 4, 2),
    }


@pytest.mark.parametrize(
    ("value", "decimals", "shown"),
    [
        (21.456, None, "21.456"),
        (21.45678, None, "21.457"),
        (21.0, None, "21"),
        (21.456, 1, "21.5"),
        (7, 2, "7.00"),
        ("on", None, "on"),
        (True, None, "true"),
        ({"a": [1, 2]}, None, '{"a": [1, 2]}'),
        (None, None, "—"),
    ],
)
def test_values_are_shown_readably(value, decimals, shown):
    assert display(value, decimals) == shown


def test_a_field_path_reads_objects_and_lists():
    value = {"gps": {"lat": 1.5}, "list": [10, {"x": 2}]}

    assert field_value(value, "gps.lat") == 1.5
    assert field_value(value, "list.1.x") == 2
    assert field_value(value, "list.5") is None
    assert field_value(value, "gps.lat.deeper") is None
    assert field_value(value, None) == value


def test_a_gauge_and_an_led_take_their_colour_from_the_range_holding_the_value():
    ranges = [
        {"from": 0, "to": 10, "color": "#00ff00"},
        {"from": 10.01, "to": 20, "color": "#ff0000"},
    ]
    gauge = {
        "id": "g",
        "type": "gauge",
        "source": PROPERTY,
        "options": {"max": 20, "ranges": ranges},
    }
    led = {"id": "l", "type": "led", "source": PROPERTY, "options": {"ranges": ranges}}

    hot = tile(gauge, {"value": 15, "ts": None}, (0, 0, 3, 3))["gauge"]
    off = tile(led, {"value": 25, "ts": None}, (0, 0, 3, 3))["led"]

    assert hot["colour"] == "#ff0000" and hot["arc"].startswith("M 20.00 100.00 A 80 80")
    assert (off["on"], off["colour"]) == (False, "#cbd5e1")
    assert tile(led, {"value": 5, "ts": None}, (0, 0, 3, 3))["led"]["colour"] == "#00ff00"


def test_a_dark_background_gets_light_text():
    widget = {"id": "v", "type": "value", "source": PROPERTY}

    assert tile({**widget, "background": "#0f172a"}, {"value": 1}, (0, 0, 3, 3))["dark"]
    assert not tile({**widget, "background": "#fef9c3"}, {"value": 1}, (0, 0, 3, 3))["dark"]

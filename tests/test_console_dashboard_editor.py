"""The dashboard editor in the console (issue 17, item 4): widgets added, changed and removed
through forms instead of JSON (every kind, the service's errors on the form's fields), and the
layout the grid editor saves (bad positions refused, nothing saved)."""

import html
import json
from datetime import datetime

import pytest
from django.utils import timezone

from core.times import to_ms
from dashboards.models import Dashboard
from dashboards.widgets import KINDS
from tests.factories import (
    BucketFactory,
    DashboardFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    sensor = DeviceFactory(owner=user, identifier="sensor1", name="Greenhouse sensor")
    PropertyFactory(device=sensor, identifier="state", value={"temperature": 21.5, "led": "on"})
    PropertyFactory(device=sensor, identifier="config", value={"interval": 60})
    BucketFactory(owner=user, identifier="readings")
    return user


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def board(alice):
    return DashboardFactory(owner=alice, identifier="greenhouse")


def text(response):
    return html.unescape(response.content.decode())


def add(console, kind, **data):
    return console.post(f"/dashboards/greenhouse/widgets/new?type={kind}", data)


def _ms(text):
    return to_ms(timezone.make_aware(datetime.fromisoformat(text)))


# Each kind: what its form is sent, and the widget it makes.
EVERY_KIND = {
    "chart": (
        {
            "title": "Climate",
            "subtitle": "Last hour",
            "source_kind": "bucket",
            "bucket": "readings",
            "fields": "temperature, humidity",
            "range_mode": "last",
            "range_last": "1h",
            "agg_interval": "5m",
            "agg_type": "max",
            "unit": "°C",
        },
        {
            "title": "Climate",
            "subtitle": "Last hour",
            "source": {
                "kind": "bucket",
                "bucket": "readings",
                "fields": ["temperature", "humidity"],
                "range": {"last": "1h"},
                "aggregation": {"interval": "5m", "type": "max"},
            },
            "options": {"unit": "°C"},
        },
    ),
    "value": (
        {
            "title": "Temperature",
            "background": "#f0fdf4",
            "source_kind": "property",
            "device": "sensor1",
            "property": "state",
            "field": "temperature",
            "unit": "°C",
            "decimals": "1",
        },
        {
            "title": "Temperature",
            "background": "#f0fdf4",
            "source": {
                "kind": "property",
                "device": "sensor1",
                "property": "state",
                "field": "temperature",
            },
            "options": {"unit": "°C", "decimals": 1},
        },
    ),
    "text": (
        {"source_kind": "bucket", "bucket": "readings", "field": "note"},
        {"source": {"kind": "bucket", "bucket": "readings", "field": "note"}},
    ),
    "gauge": (
        {
            "source_kind": "property",
            "device": "sensor1",
            "property": "state",
            "field": "temperature",
            "min": "-10",
            "max": "40.5",
            "range_0_from": "-10",
            "range_0_to": "5",
            "range_0_color": "#2563eb",
            "range_2_from": "30",
            "range_2_to": "40.5",
            "range_2_color": "#dc2626",
        },
        {
            "source": {
                "kind": "property",
                "device": "sensor1",
                "property": "state",
                "field": "temperature",
            },
            "options": {
                "min": -10,
                "max": 40.5,
                "ranges": [
                    {"from": -10, "to": 5, "color": "#2563eb"},
                    {"from": 30, "to": 40.5, "color": "#dc2626"},
                ],
            },
        },
    ),
    "donut": (
        {
            "source_kind": "device",
            "device": "sensor1",
            "device_field": "calls_today",
            "max": "1000",
            "color": "#9333ea",
        },
        {
            "source": {"kind": "device", "device": "sensor1", "field": "calls_today"},
            "options": {"max": 1000, "color": "#9333ea"},
        },
    ),
    "led": (
        {
            "source_kind": "property",
            "device": "sensor1",
            "property": "state",
            "field": "led",
            "color": "#16a34a",
            "blink": "on",
        },
        {
            "source": {
                "kind": "property",
                "device": "sensor1",
                "property": "state",
                "field": "led",
            },
            "options": {"color": "#16a34a", "blink": True},
        },
    ),
    "map": (
        {
            "source_kind": "bucket",
            "bucket": "readings",
            "range_mode": "between",
            "range_from": "2024-01-01T00:00",
            "range_to": "2024-01-02T12:30",
            "lat": "gps.lat",
            "lng": "gps.lng",
        },
        {
            "source": {
                "kind": "bucket",
                "bucket": "readings",
                "range": {"from": _ms("2024-01-01T00:00"), "to": _ms("2024-01-02T12:30")},
            },
            "options": {"lat": "gps.lat", "lng": "gps.lng"},
        },
    ),
    "device_status": (
        {"title": "Sensor", "source_kind": "device", "device": "sensor1"},
        {"title": "Sensor", "source": {"kind": "device", "device": "sensor1"}},
    ),
    "switch": (
        {
            "source_kind": "property",
            "device": "sensor1",
            "property": "state",
            "field": "led",
            "on": '"on"',
            "off": '"off"',
        },
        {
            "source": {
                "kind": "property",
                "device": "sensor1",
                "property": "state",
                "field": "led",
            },
            "options": {"on": "on", "off": "off"},
        },
    ),
    "slider": (
        {
            "source_kind": "property",
            "device": "sensor1",
            "property": "config",
            "field": "interval",
            "min": "10",
            "max": "600",
            "step": "10",
        },
        {
            "source": {
                "kind": "property",
                "device": "sensor1",
                "property": "config",
                "field": "interval",
            },
            "options": {"min": 10, "max": 600, "step": 10},
        },
    ),
    "text_input": (
        {"source_kind": "property", "device": "sensor1", "property": "config"},
        {"source": {"kind": "property", "device": "sensor1", "property": "config"}},
    ),
}


def test_the_scenarios_cover_every_kind():
    assert set(EVERY_KIND) == set(KINDS)


def test_add_widget_offers_every_kind(console, board):
    page = console.get("/dashboards/greenhouse/widgets/new")

    assert page.status_code == 200
    for kind in KINDS.values():
        assert f'href="?type={kind.type}"' in text(page)
        assert kind.label in text(page)


@pytest.mark.parametrize("kind", EVERY_KIND)
def test_every_kind_is_created_through_its_form(console, board, kind):
    sent, made = EVERY_KIND[kind]
    form = console.get(f"/dashboards/greenhouse/widgets/new?type={kind}")
    assert form.status_code == 200
    assert 'name="source_kind"' in text(form)

    answer = add(console, kind, **sent)

    ident = kind.replace("_", "-")
    assert answer.status_code == 302, answer.context["form"].errors
    assert answer["Location"] == f"/dashboards/greenhouse/#tile-{ident}"
    board.refresh_from_db()
    assert board.widgets == [{"id": ident, "type": kind, **made}]
    page = console.get("/dashboards/greenhouse/")
    assert f'id="tile-{ident}"' in text(page)


def test_the_edit_form_starts_from_the_widget_and_saves_it_in_place(console, board):
    for kind in ("gauge", "map", "switch"):
        assert add(console, kind, **EVERY_KIND[kind][0]).status_code == 302
    board.refresh_from_db()
    board.layout = {"gauge": {"x": 6, "y": 2, "w": 3, "h": 3}}
    board.save()

    form = console.get("/dashboards/greenhouse/widgets/gauge/edit")
    assert form.status_code == 200
    shown = text(form)
    assert 'value="40.5"' in shown
    assert 'value="#dc2626"' in shown
    map_form = text(console.get("/dashboards/greenhouse/widgets/map/edit"))
    assert 'value="2024-01-02T12:30"' in map_form
    assert 'value="gps.lat"' in map_form
    assert (
        'value="&quot;on&quot;"'
        in console.get("/dashboards/greenhouse/widgets/switch/edit").content.decode()
    )

    sent = {**EVERY_KIND["gauge"][0], "title": "Inside", "max": "35", "range_2_to": "35"}
    answer = console.post("/dashboards/greenhouse/widgets/gauge/edit", sent)

    assert answer.status_code == 302
    board.refresh_from_db()
    assert [widget["id"] for widget in board.widgets] == ["gauge", "map", "switch"]
    gauge = board.widgets[0]
    assert gauge["title"] == "Inside"
    assert gauge["options"]["max"] == 35
    assert gauge["options"]["ranges"][1] == {"from": 30, "to": 35, "color": "#dc2626"}
    assert board.layout == {"gauge": {"x": 6, "y": 2, "w": 3, "h": 3}}


def test_a_second_widget_of_a_kind_gets_its_own_id_and_goes_below(console, board):
    add(console, "value", **EVERY_KIND["value"][0])
    board.refresh_from_db()
    board.layout = {"value": {"x": 0, "y": 0, "w": 12, "h": 5}}
    board.save()

    add(console, "value", **EVERY_KIND["value"][0])

    board.refresh_from_db()
    assert [widget["id"] for widget in board.widgets] == ["value", "value-2"]
    page = text(console.get("/dashboards/greenhouse/"))
    assert 'id="tile-value-2"' in page
    assert "--row: 6 / span" in page  # the first free row, below the 5 rows of the first


# Bad input: (kind, what changes in the form, the field the error is on, part of the message).
ERRORS = [
    ("gauge", {"min": "50", "max": "10"}, "max", "must be above min"),
    ("value", {"property": "config", "device": ""}, "device", "one of your devices"),
    ("value", {"background": "green"}, "background", "#rrggbb"),
    ("chart", {"range_last": "2x"}, "range_last", "interval"),
    ("chart", {"fields": ""}, "fields", "1 to 8 fields"),
    ("chart", {"agg_type": "median"}, "agg_type", "Select a valid choice"),
    ("chart", {"range_last": "1d", "agg_interval": "10s"}, "agg_interval", "more than 1000"),
    ("map", {"range_from": ""}, "range_from", "start from"),
    ("map", {"range_to": "2023-01-01T00:00"}, "range_to", "not before"),
    ("gauge", {"range_0_color": ""}, "range_0_from", "a from, a to and a colour"),
    ("gauge", {"range_0_color": "blue"}, "range_0_from", "colour written #rrggbb"),
    ("switch", {"on": "on"}, "on", "double quotes"),
    ("slider", {"step": "0"}, "step", "above 0"),
    ("donut", {"device_field": ""}, "device_field", "status, last_call, calls_today"),
    ("led", {"source_kind": "bucket", "bucket": ""}, "bucket", "one of your buckets"),
    ("device_status", {"source_kind": "property"}, "source_kind", "valid choice"),
]


@pytest.mark.parametrize(("kind", "changed", "field", "message"), ERRORS)
def test_bad_input_is_told_on_its_field_and_nothing_is_saved(
    console, board, kind, changed, field, message
):
    sent = {**EVERY_KIND[kind][0], **changed}

    answer = add(console, kind, **sent)

    assert answer.status_code == 400
    errors = answer.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert f'id="field-{field}"' in text(answer) or field.startswith("range_0")
    board.refresh_from_db()
    assert board.widgets == []


def test_a_property_the_device_does_not_have_is_told_on_the_property(console, alice, board):
    DeviceFactory(owner=alice, identifier="pump")

    answer = add(console, "value", **{**EVERY_KIND["value"][0], "device": "pump"})

    assert answer.status_code == 400
    assert 'device "pump" has no property "state"' in " ".join(
        answer.context["form"].errors["property"]
    )


def test_the_selects_list_only_the_users_own_objects(console, board):
    stranger = UserFactory(username="mallory")
    device = DeviceFactory(owner=stranger, identifier="mallory_dev")
    PropertyFactory(device=device, identifier="mallory_prop")
    BucketFactory(owner=stranger, identifier="mallory_bucket")

    page = text(console.get("/dashboards/greenhouse/widgets/new?type=value"))

    assert "sensor1" in page and "readings" in page
    assert "mallory" not in page
    answer = add(
        console, "text", source_kind="bucket", bucket="mallory_bucket", field="temperature"
    )
    assert answer.status_code == 400
    assert "bucket" in answer.context["form"].errors


def test_remove_takes_the_widget_and_its_place(console, board):
    add(console, "value", **EVERY_KIND["value"][0])
    add(console, "led", **EVERY_KIND["led"][0])
    board.refresh_from_db()
    board.layout = {
        "value": {"x": 0, "y": 0, "w": 3, "h": 3},
        "led": {"x": 3, "y": 0, "w": 3, "h": 3},
    }
    board.save()

    assert console.get("/dashboards/greenhouse/widgets/value/remove").status_code == 405
    answer = console.post("/dashboards/greenhouse/widgets/value/remove")

    assert answer.status_code == 302
    board.refresh_from_db()
    assert [widget["id"] for widget in board.widgets] == ["led"]
    assert board.layout == {"led": {"x": 3, "y": 0, "w": 3, "h": 3}}
    assert console.post("/dashboards/greenhouse/widgets/value/remove").status_code == 404


def test_an_unknown_widget_or_kind_is_404(console, board):
    assert console.get("/dashboards/greenhouse/widgets/nothing/edit").status_code == 404
    assert console.post("/dashboards/greenhouse/widgets/new?type=nothing").status_code == 404
    # An unknown kind on GET: the kinds to choose from.
    assert 'id="widget-kinds"' in text(console.get("/dashboards/greenhouse/widgets/new?type=x"))


def test_another_users_dashboard_is_404_everywhere(client, alice, board):
    add_widget = EVERY_KIND["value"][0]
    client.force_login(alice)
    add(client, "value", **add_widget)
    client.force_login(UserFactory(username="bob"))
    before = Dashboard.objects.values_list("widgets", "layout").get(pk=board.pk)

    assert client.get("/dashboards/greenhouse/widgets/new").status_code == 404
    assert client.get("/dashboards/greenhouse/widgets/new?type=value").status_code == 404
    assert add(client, "value", **add_widget).status_code == 404
    assert client.get("/dashboards/greenhouse/widgets/value/edit").status_code == 404
    assert client.post("/dashboards/greenhouse/widgets/value/edit", add_widget).status_code == 404
    assert client.post("/dashboards/greenhouse/widgets/value/remove").status_code == 404
    layout = {"layout": {"value": {"x": 0, "y": 0, "w": 2, "h": 2}}}
    answer = client.post(
        "/dashboards/greenhouse/layout", json.dumps(layout), content_type="application/json"
    )
    assert answer.status_code == 404
    assert Dashboard.objects.values_list("widgets", "layout").get(pk=board.pk) == before


def test_anonymous_callers_go_to_the_login_page(client, board):
    for url in ("/dashboards/greenhouse/widgets/new", "/dashboards/greenhouse/widgets/x/edit"):
        answer = client.get(url)
        assert answer.status_code == 302
        assert answer["Location"].startswith("/login")


# --- The layout the grid editor saves ---------------------------------------------------------


def save_layout(console, body):
    return console.post(
        "/dashboards/greenhouse/layout",
        body if isinstance(body, str) else json.dumps(body),
        content_type="application/json",
    )


@pytest.fixture
def two_widgets(console, board):
    add(console, "value", **EVERY_KIND["value"][0])
    add(console, "device_status", **EVERY_KIND["device_status"][0])
    board.refresh_from_db()
    return board


def test_the_layout_is_saved(console, two_widgets):
    layout = {
        "value": {"x": 4, "y": 0, "w": 8, "h": 2},
        "device-status": {"x": 0, "y": 2, "w": 12, "h": 4},
    }

    answer = save_layout(console, {"layout": layout})

    assert answer.status_code == 200
    assert answer.json() == {"layout": layout}
    two_widgets.refresh_from_db()
    assert two_widgets.layout == layout
    assert "--col: 5 / span 8; --row: 1 / span 2;" in text(console.get("/dashboards/greenhouse/"))


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"layout": {"value": {"x": 10, "y": 0, "w": 4, "h": 2}}}, "layout.value.w"),
        ({"layout": {"value": {"x": -1, "y": 0, "w": 4, "h": 2}}}, "layout.value.x"),
        ({"layout": {"value": {"x": 0, "y": 0, "w": 4, "h": 99}}}, "layout.value.h"),
        ({"layout": {"value": {"x": 0, "y": 0, "w": 4}}}, "layout.value"),
        ({"layout": {"ghost": {"x": 0, "y": 0, "w": 4, "h": 2}}}, "layout.ghost"),
        ({"layout": []}, "layout"),
        ({"positions": {}}, "layout"),
        ("not json", "layout"),
    ],
)
def test_bad_positions_are_refused_and_nothing_is_saved(console, two_widgets, body, key):
    two_widgets.layout = {"value": {"x": 0, "y": 0, "w": 3, "h": 3}}
    two_widgets.save()

    answer = save_layout(console, body)

    assert answer.status_code == 400
    assert key in answer.json()["errors"]
    two_widgets.refresh_from_db()
    assert two_widgets.layout == {"value": {"x": 0, "y": 0, "w": 3, "h": 3}}


def test_the_layout_is_saved_by_post_only_and_with_the_csrf_token(alice, two_widgets):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    body = json.dumps({"layout": {"value": {"x": 0, "y": 0, "w": 2, "h": 2}}})

    assert strict.get("/dashboards/greenhouse/layout").status_code == 405
    answer = strict.post("/dashboards/greenhouse/layout", body, content_type="application/json")
    assert answer.status_code == 403
    two_widgets.refresh_from_db()
    assert two_widgets.layout == {}


def test_the_dashboard_page_offers_the_editor(console, two_widgets):
    page = text(console.get("/dashboards/greenhouse/"))

    assert 'href="/dashboards/greenhouse/widgets/new"' in page
    assert "data-layout-edit" in page
    assert 'data-layout-url="/dashboards/greenhouse/layout"' in page
    assert "vendor/gridstack/gridstack-all.js" in page


def test_the_json_edit_page_points_to_the_forms(console, board):
    page = text(console.get("/dashboards/greenhouse/edit"))

    assert "Advanced: its widgets and their places, as JSON." in page
    assert 'href="/dashboards/greenhouse/widgets/new"' in page


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_widgets_added_from_two_tabs_at_once_all_land(alice):
    """Each add reads the widget list as stored, with the row locked: none is lost to another
    add made at the same moment (PostgreSQL: two requests in two threads, ten rounds)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection
    from django.test import Client

    DashboardFactory(owner=alice, identifier="greenhouse")
    rounds, tabs = 10, 2
    barrier = Barrier(tabs)

    def tab(number):
        client = Client()
        client.force_login(alice)
        answers = []
        try:
            for turn in range(rounds):
                barrier.wait(timeout=30)
                answers.append(
                    add(
                        client,
                        "value",
                        title=f"tab {number} turn {turn}",
                        source_kind="property",
                        device="sensor1",
                        property="state",
                    ).status_code
                )
        finally:
            connection.close()
        return answers

    with ThreadPoolExecutor(max_workers=tabs) as pool:
        statuses = [status for answers in pool.map(tab, range(tabs)) for status in answers]

    assert statuses == [302] * (rounds * tabs)
    widgets = Dashboard.objects.get(identifier="greenhouse").widgets
    assert sorted(widget["title"] for widget in widgets) == sorted(
        f"tab {number} turn {turn}" for number in range(tabs) for turn in range(rounds)
    )
    assert len({widget["id"] for widget in widgets}) == rounds * tabs

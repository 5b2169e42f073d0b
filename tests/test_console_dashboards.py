"""Dashboards in the console (issue 17): the list, create and edit with the widgets and layout
as JSON (the services' errors on the boxes), delete, the dashboard drawn with what each widget
shows now, and the control widgets writing their property."""

import html
import json
import re

import pytest
from django.urls import reverse

from dashboards import services
from dashboards.models import Dashboard
from devices.models import Property
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DashboardFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    sensor = DeviceFactory(owner=user, identifier="sensor1", name="Greenhouse sensor")
    PropertyFactory(
        device=sensor, identifier="state", value={"temperature": 21.5, "led": "on", "level": 30}
    )
    PropertyFactory(device=sensor, identifier="config", value={"interval": 60})
    bucket = BucketFactory(owner=user, identifier="readings")
    BucketRecordFactory(bucket=bucket, ts=1_704_067_200_000, value={"temperature": 19.25})
    return user


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


def text(response):
    return html.unescape(response.content.decode())


def state(field=None, ident="temp", kind="value", **extra):
    source = {"kind": "property", "device": "sensor1", "property": "state"}
    if field:
        source["field"] = field
    return {"id": ident, "type": kind, "source": source, **extra}


def form(widgets=None, layout=None, **fields):
    data = {"identifier": "greenhouse", "name": "Greenhouse", "description": "", "enabled": "on"}
    data.update(fields)
    data["widgets"] = widgets if isinstance(widgets, str) else json.dumps(widgets or [])
    data["layout"] = layout if isinstance(layout, str) else json.dumps(layout or {})
    return data


def test_the_sidebar_links_to_dashboards(console):
    page = console.get("/devices/")

    assert 'href="/dashboards/"' in page.content.decode()


def test_an_empty_list_says_what_a_dashboard_is(console):
    page = console.get("/dashboards/")

    assert page.status_code == 200
    assert "No dashboards yet" in text(page)


def test_the_list_shows_the_users_dashboards_only(console, alice):
    DashboardFactory(owner=alice, identifier="mine", name="My board")
    DashboardFactory(owner=UserFactory(), identifier="theirs", name="Their board")

    page = text(console.get("/dashboards/"))

    assert "My board" in page
    assert "theirs" not in page and "Their board" not in page


def test_create_a_dashboard_with_widgets_as_json(console, alice):
    widgets = [state("temperature", options={"unit": "°C"})]
    layout = {"temp": {"x": 0, "y": 0, "w": 4, "h": 3}}

    response = console.post("/dashboards/new", form(widgets, layout))

    assert response.status_code == 302
    assert response["Location"] == "/dashboards/greenhouse/"
    dashboard = Dashboard.objects.get(owner=alice)
    assert (dashboard.name, dashboard.widgets, dashboard.layout) == ("Greenhouse", widgets, layout)


def test_the_create_page_offers_an_example_on_the_users_own_device(console):
    page = text(console.get("/dashboards/new"))

    assert '"device": "sensor1"' in page
    assert '"property": "config"' in page or '"property": "state"' in page


def test_json_that_does_not_parse_is_an_error_on_its_box(console):
    response = console.post("/dashboards/new", form('[{"id": "a",'))

    assert response.status_code == 200
    assert response.context["form"].errors["widgets"][0].startswith("This is not valid JSON")
    assert not Dashboard.objects.exists()


def test_the_services_errors_go_on_the_widgets_and_layout_boxes(console):
    bad_source = {"kind": "property", "device": "nothere", "property": "state"}
    response = console.post("/dashboards/new", form([state("temperature", source=bad_source)]))
    bad_place = console.post(
        "/dashboards/new", form([state()], {"temp": {"x": 10, "y": 0, "w": 4, "h": 1}})
    )

    errors = response.context["form"].errors
    assert errors["widgets"] == [
        'widgets[0].source.device: you have no device "nothere" (widget "temp")'
    ]
    assert bad_place.context["form"].errors["layout"] == [
        "layout.temp.w: x + w must be at most 12 (the grid's columns)"
    ]
    assert 'you have no device "nothere"' in text(response)
    assert not Dashboard.objects.exists()


def test_a_duplicate_id_is_an_error_on_the_id(console, alice):
    DashboardFactory(owner=alice, identifier="greenhouse")

    response = console.post("/dashboards/new", form())

    assert response.context["form"].errors["identifier"] == [
        "You already have a dashboard with this ID."
    ]


def test_edit_shows_the_json_and_saves_changes(console, alice):
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=[state()])

    page = console.get("/dashboards/greenhouse/edit")
    assert '"id": "temp"' in text(page)
    assert "identifier" not in page.context["form"].fields

    data = form([state("temperature"), state("led", ident="lamp", kind="led")], name="Renamed")
    data.pop("identifier")
    response = console.post("/dashboards/greenhouse/edit", data)

    assert response.status_code == 302
    dashboard = Dashboard.objects.get()
    assert dashboard.name == "Renamed"
    assert [w["id"] for w in dashboard.widgets] == ["temp", "lamp"]


def test_delete_asks_then_deletes(console, alice):
    DashboardFactory(owner=alice, identifier="greenhouse")

    page = text(console.get("/dashboards/greenhouse/"))
    assert 'data-dialog="delete-dashboard"' in page
    assert 'action="/dashboards/greenhouse/delete"' in page
    assert console.get("/dashboards/greenhouse/delete").status_code == 405

    response = console.post("/dashboards/greenhouse/delete")

    assert response["Location"] == "/dashboards/"
    assert not Dashboard.objects.exists()


ALL_KINDS = [
    state("temperature", options={"unit": "°C", "decimals": 1}, title="Temperature"),
    state("led", ident="words", kind="text"),
    state("level", ident="tank", kind="gauge", options={"max": 50, "unit": "%"}),
    state("level", ident="ring", kind="donut", options={"min": 0, "max": 60}),
    state("led", ident="lamp", kind="led", options={"blink": True}),
    {
        "id": "history",
        "type": "chart",
        "source": {
            "kind": "bucket",
            "bucket": "readings",
            "fields": ["temperature"],
            "range": {"from": 1_704_067_000_000},
        },
    },
    {"id": "box", "type": "device_status", "source": {"kind": "device", "device": "sensor1"}},
    {
        "id": "last",
        "type": "value",
        "source": {"kind": "bucket", "bucket": "readings", "field": "temperature"},
    },
    state(
        ident="toggle",
        kind="switch",
        options={"on": "on", "off": "off"},
        source={"kind": "property", "device": "sensor1", "property": "state", "field": "led"},
    ),
    state("level", ident="knob", kind="slider", options={"min": 0, "max": 50, "step": 5}),
    state(
        ident="note",
        kind="text_input",
        source={"kind": "property", "device": "sensor1", "property": "config", "field": "label"},
    ),
    {
        "id": "where",
        "type": "map",
        "source": {"kind": "property", "device": "sensor1", "property": "state"},
        "options": {"lat": "level", "lng": "level"},
    },
]


def tile(page, ident):
    """The HTML of one widget's tile."""
    match = re.search(
        rf'<section class="tile[^"]*"[^>]*data-widget="{ident}".*?</section>', page, re.S
    )
    assert match, ident
    return match.group(0)


def test_the_dashboard_draws_each_widget_with_its_value(console, alice):
    services.dashboard_create(
        owner=alice,
        identifier="greenhouse",
        name="Greenhouse",
        widgets=ALL_KINDS,
        layout={"temp": {"x": 0, "y": 0, "w": 3, "h": 2}},
    )

    page = text(console.get("/dashboards/greenhouse/"))

    assert "21.5" in tile(page, "temp") and "°C" in tile(page, "temp")
    assert "Temperature" in tile(page, "temp")
    assert 'style="--col: 1 / span 3; --row: 1 / span 2; --h: 2;"' in tile(page, "temp")
    assert ">on<" in tile(page, "words")
    assert '<svg class="gauge"' in tile(page, "tank") and ">30<" in tile(page, "tank")
    assert 'aria-label="Donut: 30 (50%)"' in tile(page, "ring")
    assert 'data-led="on"' in tile(page, "lamp") and "led-blink" in tile(page, "lamp")
    assert 'data-chart-source="widget-history-data"' in tile(page, "history")
    assert '<script id="widget-history-data" type="application/json">' in page
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert 'data-status="never"' in tile(page, "box")
    assert "19.25" in tile(page, "last")
    assert ">On<" in tile(page, "toggle") and "Turn off" in tile(page, "toggle")
    assert 'type="range"' in tile(page, "knob") and 'value="30"' in tile(page, "knob")
    assert 'name="value"' in tile(page, "note")
    assert "30, 30" in tile(page, "where")


def test_a_widget_whose_source_was_deleted_says_so(console, alice):
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=[state("temperature")])
    Property.objects.filter(identifier="state").delete()

    page = text(console.get("/dashboards/greenhouse/"))

    assert 'Property "state" of device "sensor1" no longer exists' in tile(page, "temp")


def test_a_dashboard_without_widgets_invites_to_add_some(console, alice):
    DashboardFactory(owner=alice, identifier="greenhouse")

    page = text(console.get("/dashboards/greenhouse/"))

    assert "No widgets yet" in page
    assert "chart.umd.min.js" not in page


def test_the_page_costs_the_same_queries_with_more_widgets(
    console, alice, django_assert_max_num_queries
):
    values = [state("temperature", ident=f"t{i}") for i in range(24)]
    services.dashboard_create(owner=alice, identifier="few", widgets=values[:2])
    services.dashboard_create(owner=alice, identifier="many", widgets=values)
    console.get("/dashboards/few/")  # the session, once

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        console.get("/dashboards/few/")
    with django_assert_max_num_queries(len(few)):
        console.get("/dashboards/many/")


# --- Control widgets ---------------------------------------------------------------------------


def control(console, ident, value, dashboard="greenhouse"):
    return console.post(f"/dashboards/{dashboard}/widgets/{ident}/write", {"value": value})


def test_a_switch_writes_its_property_and_the_device_gets_it_in_its_next_answer(
    console, alice, callback_client
):
    sensor = alice.devices.get()
    callback_configure(sensor, send_property=sensor.properties.get(identifier="state"))
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=ALL_KINDS)

    response = control(console, "toggle", "off")

    assert response.status_code == 302
    assert response["Location"] == "/dashboards/greenhouse/#tile-toggle"
    answer = callback_client.post(sensor, {"temperature": 22})
    assert answer.json() == {"temperature": 21.5, "led": "off", "level": 30}
    page = text(console.get("/dashboards/greenhouse/"))
    # (the keys in the database's order: PostgreSQL's jsonb has its own)
    assert re.search(r'Property state of sensor1 set to \{[^}]*"led": "off"', page)
    assert ">Off<" in tile(page, "toggle")


def test_a_switch_writes_true_and_false_by_default(console, alice):
    widget = state(
        ident="power",
        kind="switch",
        source={"kind": "property", "device": "sensor1", "property": "config"},
    )
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=[widget])

    control(console, "power", "on")

    assert Property.objects.get(identifier="config").value is True


def test_a_slider_writes_a_number_within_its_range(console, alice):
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=ALL_KINDS)

    control(console, "knob", "45")
    refused = control(console, "knob", "70")

    assert Property.objects.get(identifier="state").value["level"] == 45
    assert refused.status_code == 302
    page = text(console.get("/dashboards/greenhouse/"))
    assert "must be a number from 0 to 50" in page
    assert Property.objects.get(identifier="state").value["level"] == 45


def test_a_text_input_writes_a_field_into_an_object(console, alice):
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=ALL_KINDS)

    control(console, "note", "north wall")

    assert Property.objects.get(identifier="config").value == {
        "interval": 60,
        "label": "north wall",
    }


def test_only_control_widgets_write(console, alice):
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=ALL_KINDS)
    before = Property.objects.get(identifier="state").value

    control(console, "temp", "99")
    control(console, "nothere", "99")

    assert Property.objects.get(identifier="state").value == before
    assert 'this dashboard has no control widget "temp"' in text(
        console.get("/dashboards/greenhouse/")
    )


# --- Who may ------------------------------------------------------------------------------------


def test_another_users_dashboard_is_a_404_on_every_page(client, alice):
    services.dashboard_create(owner=alice, identifier="greenhouse", widgets=ALL_KINDS)
    before = Property.objects.get(identifier="state").value
    client.force_login(UserFactory(username="bob"))

    for method, url in [
        ("get", "/dashboards/greenhouse/"),
        ("get", "/dashboards/greenhouse/edit"),
        ("post", "/dashboards/greenhouse/edit"),
        ("post", "/dashboards/greenhouse/delete"),
        ("post", "/dashboards/greenhouse/widgets/toggle/write"),
    ]:
        assert getattr(client, method)(url, {"value": "off"}).status_code == 404, url
    assert Dashboard.objects.filter(owner=alice).count() == 1
    assert Property.objects.get(identifier="state").value == before


def test_anonymous_visitors_go_to_the_login(client):
    response = client.get(reverse("console-dashboard-list"))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")

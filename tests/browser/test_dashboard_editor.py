"""The dashboard editor in Chromium (issue 17, item 4): a dashboard built through the console's
forms with one widget of every kind, then laid out in the grid editor (a widget dragged and
resized, the layout saved and kept after a reload); on a phone the widgets stack in one column
and no layout editing is offered. Screenshots ``dashboard-layout-edit-1280.png``,
``dashboard-widget-form-<width>.png`` and ``dashboard-every-kind-390.png``.

``build_dashboard(page)`` builds the dashboard through the UI: other tests (live updates) start
from it."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dashboards.models import Dashboard
from dashboards.widgets import KINDS
from tests.browser.test_console_responsive import assert_no_sideways_scroll, log_in, save
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DASHBOARD = "greenhouse"
# One widget of each kind: the form's fields as a person fills them, in order (the source first:
# the form shows the fields of the source chosen).
EVERY_KIND = {
    "chart": {
        "title": "Climate",
        "source_kind": "bucket",
        "bucket": "readings",
        "fields": "temperature, humidity",
        "range_last": "1h",
        "agg_interval": "5m",
        "agg_type": "mean",
        "unit": "°C",
    },
    "value": {
        "title": "Temperature",
        "source_kind": "property",
        "device": "sensor1",
        "property": "state",
        "field": "temperature",
        "unit": "°C",
        "decimals": "1",
    },
    "text": {
        "title": "Note",
        "source_kind": "bucket",
        "bucket": "readings",
        "field": "note",
    },
    "gauge": {
        "title": "Humidity",
        "source_kind": "property",
        "device": "sensor1",
        "property": "state",
        "field": "humidity",
        "unit": "%",
        "range_0_from": "0",
        "range_0_to": "30",
        "range_0_color": "#f59e0b",
        "range_1_from": "30",
        "range_1_to": "70",
        "range_1_color": "#16a34a",
    },
    "donut": {
        "title": "Calls today",
        "source_kind": "device",
        "device": "sensor1",
        "device_field": "calls_today",
        "max": "500",
        "color": "#0891b2",
    },
    "led": {
        "title": "Fan",
        "source_kind": "property",
        "device": "sensor1",
        "property": "state",
        "field": "fan",
        "color": "#16a34a",
        "blink": True,
    },
    "map": {
        "title": "Position",
        "source_kind": "bucket",
        "bucket": "readings",
        "range_last": "1d",
        "lat": "lat",
        "lng": "lng",
    },
    "device_status": {"title": "Sensor", "source_kind": "device", "device": "sensor1"},
    "switch": {
        "title": "Fan switch",
        "source_kind": "property",
        "device": "sensor1",
        "property": "state",
        "field": "fan",
    },
    "slider": {
        "title": "Interval",
        "source_kind": "property",
        "device": "sensor1",
        "property": "config",
        "field": "interval",
        "min": "10",
        "max": "600",
        "step": "10",
    },
    "text_input": {
        "title": "Message",
        "source_kind": "property",
        "device": "sensor1",
        "property": "config",
        "field": "message",
    },
}


def seed():
    """Alice, her sensor with two properties, and a bucket of the last hour's readings."""
    alice = UserFactory(username="alice")
    now = timezone.now()
    sensor = DeviceFactory(
        owner=alice,
        identifier="sensor1",
        name="Greenhouse sensor",
        connected=True,
        connected_at=now - timedelta(hours=1),
        last_call_at=now - timedelta(seconds=30),
    )
    PropertyFactory(
        device=sensor,
        identifier="state",
        value={"temperature": 23.46, "humidity": 58, "fan": True},
    )
    PropertyFactory(device=sensor, identifier="config", value={"interval": 60, "message": "hi"})
    bucket = BucketFactory(owner=alice, identifier="readings")
    start = int((now - timedelta(minutes=50)).timestamp() * 1000)
    for minute in range(50):
        BucketRecordFactory(
            bucket=bucket,
            ts=start + minute * 60_000,
            value={
                "temperature": 21 + minute % 7 * 0.4,
                "humidity": 55 + minute % 5,
                "note": f"reading {minute}",
                "lat": 41.38 + minute / 10_000,
                "lng": 2.17 + minute / 10_000,
            },
        )
    return alice


def fill_widget_form(page, fields):
    """Fill the widget form's ``fields`` (by name) as a person does: choose, tick or type."""
    for name, value in fields.items():
        box = page.locator(f'#widget-form [name="{name}"]')
        tag = box.evaluate("element => element.tagName.toLowerCase() + ':' + element.type")
        if tag.startswith("select"):
            box.select_option(value)
        elif tag == "input:checkbox":
            box.set_checked(value)
        elif tag == "input:radio":
            page.check(f'#widget-form [name="{name}"][value="{value}"]')
        else:
            box.fill(value)


def add_widget(page, kind, fields, *, screenshot_width=None):
    """On the dashboard's page: Add widget, choose ``kind``, fill its form and add it; back on
    the dashboard with the new widget. Its id, which the page shows in the address."""
    page.get_by_role("link", name="Add widget").first.click()
    page.locator(f'#widget-kinds [data-kind="{kind}"]').click()
    heading = re.compile(f"New widget: {KINDS[kind].label}", re.I)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    fill_widget_form(page, fields)
    if screenshot_width:
        assert_no_sideways_scroll(page, "dashboard-widget-form")
        save(page, "dashboard-widget-form", screenshot_width)
    page.get_by_role("button", name="Add widget").click()
    expect(page).to_have_url(re.compile(rf"/dashboards/{DASHBOARD}/#tile-[\w-]+$"))
    ident = page.url.rsplit("#tile-", 1)[1]
    expect(page.locator(f'[data-widget="{ident}"]')).to_be_visible()
    return ident


def build_dashboard(page, kinds=EVERY_KIND, *, screenshot_width=None):
    """Create the dashboard ``greenhouse`` and a widget of each of ``kinds`` through the
    console's forms (logged in as alice, ``seed()`` done); ``{kind: widget id}``."""
    page.goto("/dashboards/new")
    page.fill("#id_identifier", DASHBOARD)
    page.fill("#id_name", "Greenhouse")
    page.get_by_role("button", name="Create dashboard").click()
    expect(page).to_have_url(re.compile(rf"/dashboards/{DASHBOARD}/$"))
    made = {}
    for kind, fields in kinds.items():
        shot = screenshot_width if kind == "gauge" else None
        made[kind] = add_widget(page, kind, fields, screenshot_width=shot)
    return made


def grid_item(page, ident):
    return page.locator(f'#dashboard-editor-grid .grid-stack-item[gs-id="{ident}"]')


def test_a_dashboard_built_in_the_forms_is_laid_out_in_the_grid_editor(page):
    seed()
    log_in(page)

    made = build_dashboard(page, screenshot_width=1280)

    assert list(made) == list(KINDS)
    dashboard = Dashboard.objects.get(identifier=DASHBOARD)
    assert [widget["type"] for widget in dashboard.widgets] == list(KINDS)
    expect(page.locator('[data-widget="value"] [data-value]')).to_have_text("23.5")
    expect(page.locator('[data-widget="led"] [data-led]')).to_have_attribute("data-led", "on")
    expect(page.locator('[data-widget="device-status"]')).to_contain_text("Connected")
    page.wait_for_function("window.consoleCharts && window.consoleCharts['widget-chart']")

    # The grid editor: every widget on a GridStack grid; "value" dragged three columns right
    # into the free place beside it, then made a row taller by its corner.
    page.get_by_role("button", name="Edit layout").click()
    expect(page.locator("#dashboard-editor-grid .grid-stack-item")).to_have_count(len(KINDS))
    expect(page.locator("#dashboard-grid")).to_be_hidden()
    grid = page.locator("#dashboard-editor-grid").bounding_box()
    column = grid["width"] / 12
    item = grid_item(page, "value")
    expect(item).to_have_attribute("gs-x", "6")
    box = item.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(
        box["x"] + box["width"] / 2 + 3 * column,
        box["y"] + box["height"] / 2,
        steps=12,
    )
    page.mouse.up()
    expect(item).to_have_attribute("gs-x", "9")
    box = item.bounding_box()
    item.hover()
    handle = item.locator(".ui-resizable-se")
    handle_box = handle.bounding_box()
    start = (handle_box["x"] + handle_box["width"] / 2, handle_box["y"] + handle_box["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0], start[1] + 80, steps=10)
    page.mouse.up()
    expect(item).to_have_attribute("gs-h", "4")
    save(page, "dashboard-layout-edit", 1280)

    # Cancel leaves the layout as it was.
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#dashboard-grid")).to_be_visible()
    dashboard.refresh_from_db()
    assert dashboard.layout == {}

    page.get_by_role("button", name="Edit layout").click()
    item = grid_item(page, "value")
    box = item.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(
        box["x"] + box["width"] / 2 + 3 * column, box["y"] + box["height"] / 2, steps=12
    )
    page.mouse.up()
    expect(item).to_have_attribute("gs-x", "9")
    page.get_by_role("button", name="Save layout").click()

    expect(page.locator("#dashboard-grid")).to_be_visible()
    dashboard.refresh_from_db()
    assert dashboard.layout["value"] == {"x": 9, "y": 0, "w": 3, "h": 3}
    assert set(dashboard.layout) == {widget["id"] for widget in dashboard.widgets}
    assert dashboard.layout["chart"] == {"x": 0, "y": 0, "w": 6, "h": 4}
    page.reload()
    tile = page.locator('[data-widget="value"]')
    expect(tile).to_have_attribute("style", re.compile(r"--col: 10 / span 3; --row: 1 / span 3;"))
    chart = page.locator('[data-widget="chart"]').bounding_box()
    assert tile.bounding_box()["x"] > chart["x"] + chart["width"]

    # Edit a widget from the grid editor: its form, then back.
    page.get_by_role("button", name="Edit layout").click()
    page.get_by_role("link", name="Edit widget gauge").click()
    expect(page.locator('[name="range_1_color"]')).to_have_value("#16a34a")
    page.fill('[name="title"]', "Air humidity")
    page.get_by_role("button", name="Save widget").click()
    expect(page.locator('[data-widget="gauge"] .tile-title')).to_have_text("Air humidity")


def test_a_bad_layout_is_told_and_not_saved(page):
    seed()
    log_in(page)
    build_dashboard(page, {"value": EVERY_KIND["value"], "led": EVERY_KIND["led"]})
    page.get_by_role("button", name="Edit layout").click()
    expect(page.locator("#dashboard-editor-grid .grid-stack-item")).to_have_count(2)
    # A position the server refuses (what a stale page could send): told, nothing saved.
    page.evaluate(
        "document.querySelector('#dashboard-editor-grid .grid-stack-item').gridstackNode.h = 99"
    )
    page.get_by_role("button", name="Save layout").click()

    expect(page.locator("[data-layout-errors]")).to_contain_text("layout.value.h")
    assert Dashboard.objects.get(identifier=DASHBOARD).layout == {}


def test_on_a_phone_the_widgets_stack_and_the_layout_is_not_edited(page):
    seed()
    log_in(page)
    page.set_viewport_size({"width": 390, "height": 844})

    build_dashboard(page, screenshot_width=390)

    expect(page.get_by_role("button", name="Edit layout")).to_be_hidden()
    boxes = [
        page.locator(f'[data-widget="{ident}"]').bounding_box()
        for ident in ("chart", "value", "text")
    ]
    assert boxes[0]["x"] == boxes[1]["x"] == boxes[2]["x"]
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]
    assert_no_sideways_scroll(page, "dashboard-every-kind")
    save(page, "dashboard-every-kind", 390)

"""A dashboard made in the console, in Chromium at a desktop's and a phone's width (issue 17):
typed as JSON (a mistake first, told on its box), then drawn with the property's value; on a
phone the widgets stack in one column. Screenshots ``dashboard-<width>.png`` and
``dashboard-edit-<width>.png`` (in tests/screenshots/latest/, or tests/screenshots/ with
``UPDATE_SCREENSHOTS=1``)."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dashboards.models import Dashboard
from tests.browser.test_console_responsive import assert_no_sideways_scroll, log_in, save
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
)

# On the in-process uvicorn (websockets): the dashboard's page follows its changes live.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.websockets,
    pytest.mark.django_db(transaction=True),
]

HEIGHTS = {390: 844, 1280: 900}
SOURCE = {"kind": "property", "device": "sensor1", "property": "state"}
WIDGETS = [
    {
        "id": "temp",
        "type": "value",
        "title": "Temperature",
        "subtitle": "North wall",
        "source": {**SOURCE, "field": "temperature"},
        "options": {"unit": "°C", "decimals": 1},
    },
    {
        "id": "humidity",
        "type": "gauge",
        "title": "Humidity",
        "source": {**SOURCE, "field": "humidity"},
        "options": {
            "unit": "%",
            "ranges": [
                {"from": 0, "to": 30, "color": "#f59e0b"},
                {"from": 30, "to": 70, "color": "#16a34a"},
                {"from": 70, "to": 100, "color": "#2563eb"},
            ],
        },
    },
    {
        "id": "fan",
        "type": "led",
        "title": "Fan",
        "source": {**SOURCE, "field": "fan"},
        "options": {"color": "#16a34a"},
    },
    {"id": "status", "type": "device_status", "source": {"kind": "device", "device": "sensor1"}},
    {
        "id": "history",
        "type": "chart",
        "title": "Last hour",
        "background": "#0f172a",
        "source": {
            "kind": "bucket",
            "bucket": "greenhouse",
            "fields": ["temperature", "humidity"],
            "range": {"last": "1h"},
        },
    },
    {
        "id": "tank",
        "type": "donut",
        "title": "Tank",
        "source": {**SOURCE, "field": "tank"},
        "options": {"unit": "l", "max": 200, "color": "#0891b2"},
    },
    {
        "id": "power",
        "type": "switch",
        "title": "Fan switch",
        "source": {**SOURCE, "field": "fan"},
    },
]
LAYOUT = {
    "temp": {"x": 0, "y": 0, "w": 3, "h": 3},
    "humidity": {"x": 3, "y": 0, "w": 3, "h": 3},
    "fan": {"x": 6, "y": 0, "w": 3, "h": 3},
    "status": {"x": 9, "y": 0, "w": 3, "h": 3},
    "history": {"x": 0, "y": 3, "w": 8, "h": 5},
    "tank": {"x": 8, "y": 3, "w": 4, "h": 3},
    "power": {"x": 8, "y": 6, "w": 4, "h": 2},
}


def seed():
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
        value={"temperature": 23.46, "humidity": 58, "fan": True, "tank": 140},
    )
    bucket = BucketFactory(owner=alice, identifier="greenhouse")
    start = int((now - timedelta(minutes=50)).timestamp() * 1000)
    for minute in range(50):
        BucketRecordFactory(
            bucket=bucket,
            ts=start + minute * 60_000,
            value={"temperature": 21 + minute % 7 * 0.4, "humidity": 55 + minute % 5},
        )


@pytest.mark.parametrize("width", [1280, 390])
def test_a_dashboard_made_in_the_console_shows_the_propertys_value(page, width):
    seed()
    page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
    log_in(page)

    if width < 1024:
        page.get_by_role("button", name="Menu").click()
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Dashboards").click()
    expect(page.get_by_role("heading", name="Dashboards", exact=True)).to_be_visible()
    page.get_by_role("link", name="New dashboard").first.click()
    page.fill("#id_identifier", "greenhouse")
    page.fill("#id_name", "Greenhouse")
    wrong = [{**WIDGETS[0], "source": {**SOURCE, "device": "sensor9"}}]
    page.fill("#id_widgets", json.dumps(wrong))
    page.get_by_role("button", name="Create dashboard").click()
    expect(page.locator("#field-widgets .errorlist")).to_contain_text(
        'widgets[0].source.device: you have no device "sensor9"'
    )
    assert not Dashboard.objects.exists()

    page.fill("#id_widgets", json.dumps(WIDGETS, indent=2))
    page.fill("#id_layout", json.dumps(LAYOUT))
    assert_no_sideways_scroll(page, "dashboard-new")
    page.get_by_role("button", name="Create dashboard").click()

    expect(page).to_have_url(re.compile(r"/dashboards/greenhouse/$"))
    value = page.locator('[data-widget="temp"] [data-value]')
    expect(value).to_have_text("23.5")
    expect(page.locator('[data-widget="temp"]')).to_contain_text("°C")
    expect(page.locator('[data-widget="fan"] [data-led]')).to_have_attribute("data-led", "on")
    expect(page.locator('[data-widget="status"]')).to_contain_text("Connected")
    page.wait_for_function("window.consoleCharts && window.consoleCharts['widget-history']")
    expect(page.locator("[data-live-state]")).to_have_text("Live")
    assert_no_sideways_scroll(page, "dashboard")
    boxes = {
        ident: page.locator(f'[data-widget="{ident}"]').bounding_box()
        for ident in ("temp", "humidity", "history")
    }
    if width == 390:  # one column, in the order of the rows
        assert boxes["temp"]["x"] == boxes["humidity"]["x"] == boxes["history"]["x"]
        assert boxes["temp"]["y"] < boxes["humidity"]["y"] < boxes["history"]["y"]
        assert boxes["temp"]["width"] > 300
    else:  # side by side on the grid
        assert boxes["temp"]["y"] == boxes["humidity"]["y"]
        assert boxes["temp"]["x"] < boxes["humidity"]["x"]
    save(page, "dashboard", width)

    page.get_by_role("link", name="Edit").click()
    expect(page.locator("#id_widgets")).to_have_value(re.compile(r'"id": "temp"'))
    assert_no_sideways_scroll(page, "dashboard-edit")
    save(page, "dashboard-edit", width)

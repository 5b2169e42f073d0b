"""Every console page at a phone's width (390 px), a tablet's (768 px) and a desktop's (1280 px),
in Chromium: the page never scrolls sideways (tables and code scroll in their own box), and the
navigation is reachable (the sidebar on a desktop, behind the menu button on a phone). Each page
at 390 and 1280 px is saved as ``<page>-<width>.png``, the top of the page only, to keep them
small: in tests/screenshots/latest/ (ignored by git), or with ``UPDATE_SCREENSHOTS=1`` in
tests/screenshots/ itself, where they are committed so that a change of layout shows in review
(their times and tokens differ at each run: a plain test run leaves the committed ones alone)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dashboards.services import dashboard_create
from devices.models import ConnectionEvent
from endpoints.models import EndpointCall
from tests.browser.conftest import screenshots_folder
from tests.factories import (
    BucketExportFactory,
    BucketFactory,
    BucketRecordFactory,
    ConnectionEventFactory,
    DashboardFactory,
    DeviceDailyStatsFactory,
    DeviceFactory,
    EndpointAttemptFactory,
    EndpointCallFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "secret-pass-123"
HEIGHTS = {390: 844, 768: 1024, 1280: 900}
SAVED_WIDTHS = (390, 1280)
# A screenshot shows at most this much of the page's height (PNG size grows with it).
SCREENSHOT_MAX_HEIGHT = {390: 1200, 1280: 900}
LONG_NAME = ("Greenhouse north wall, upper shelf, by the tomatoes and the basil " * 4)[:255]

# (screenshot name, URL); the login page is visited before logging in.
PAGES = [
    ("devices", "/devices/"),
    ("device-new", "/devices/new"),
    ("device-overview", "/devices/sensor1/"),
    ("device-callback", "/devices/sensor1/callback/"),
    ("device-callback-settings", "/devices/sensor1/callback/settings"),
    ("device-properties", "/devices/sensor1/properties/"),
    ("property-edit", "/devices/sensor1/properties/state/edit"),
    ("buckets", "/buckets/"),
    ("bucket", "/buckets/greenhouse/"),
    ("endpoints", "/endpoints/"),
    ("endpoint", "/endpoints/notify/"),
    ("endpoint-edit", "/endpoints/notify/edit"),
    ("endpoint-call", "/endpoints/notify/calls/{failed_call}/"),
    ("alerts", "/alerts/"),
    ("device-alerts", "/devices/sensor1/alerts"),
    ("dashboards", "/dashboards/"),
    ("dashboard", "/dashboards/greenhouse/"),
    ("dashboard-edit", "/dashboards/greenhouse/edit"),
    ("not-found", "/devices/no-such-device/"),
]


def seed():
    """A user with what every page lists: devices (one with a 255-character name), a bucket with
    records and an export, an endpoint with calls (one failed after retries), properties."""
    alice = UserFactory(username="alice")
    now = timezone.now()
    sensor = DeviceFactory(
        owner=alice,
        identifier="sensor1",
        name="Greenhouse sensor",
        description="North wall, by the tomatoes",
        connected=True,
        connected_at=now - timedelta(hours=2),
        last_call_at=now - timedelta(minutes=1),
        remote_ip="203.0.113.7",
    )
    DeviceFactory(owner=alice, identifier="long_name", name=LONG_NAME, description=LONG_NAME)
    DeviceFactory(owner=alice, identifier="gate", name="Gate", last_call_at=now - timedelta(days=3))
    for day in range(30):
        DeviceDailyStatsFactory(
            device=sensor,
            date=(now - timedelta(days=29 - day)).date(),
            calls=day % 7 + 1,
            rx_bytes=(day % 7 + 1) * 48,
            tx_bytes=(day % 3) * 20,
        )
    ConnectionEventFactory(device=sensor, at=now - timedelta(hours=2), remote_ip="203.0.113.7")
    ConnectionEventFactory(
        device=sensor, kind=ConnectionEvent.Kind.DISCONNECTED, at=now - timedelta(hours=5)
    )
    state = PropertyFactory(
        device=sensor,
        identifier="state",
        name="State",
        value={"led": "on", "threshold": 25, "schedule": ["06:00", "12:00", "18:00", "23:30"]},
    )
    PropertyFactory(device=sensor, identifier="config", value={"interval": 60})

    greenhouse = BucketFactory(owner=alice, identifier="greenhouse", name="Greenhouse readings")
    BucketFactory(owner=alice, identifier="long_bucket", name=LONG_NAME, description=LONG_NAME)
    start = int((now - timedelta(hours=1)).timestamp() * 1000)
    for minute in range(40):
        BucketRecordFactory(
            bucket=greenhouse,
            ts=start + minute * 60_000,
            value={"temperature": 21 + minute % 5 * 0.4, "humidity": 55 - minute % 4},
            device=sensor,
        )
    BucketExportFactory(
        bucket=greenhouse,
        file="greenhouse-20240101-120000.csv",
        state="done",
        rows=40,
        size=1800,
        progress=100,
    )

    notify = EndpointFactory(
        owner=alice,
        identifier="notify",
        name="Notify the farm server",
        config={
            "url": "https://farm.example.com/hooks/greenhouse/readings?source=thinger-http",
            "method": "POST",
            "headers": [{"key": "X-Farm", "value": "north"}],
            "body_type": "json",
        },
    )
    EndpointFactory(owner=alice, identifier="long_endpoint", name=LONG_NAME)
    ok = EndpointCallFactory(endpoint=notify, device=sensor, status="succeeded", attempts=1)
    EndpointAttemptFactory(call=ok)
    failed = EndpointCallFactory(
        endpoint=notify,
        device=sensor,
        status="failed",
        attempts=3,
        last_error="Connection refused by farm.example.com:443 after 5 seconds (3 attempts)",
    )
    for _ in range(3):
        EndpointAttemptFactory(call=failed, status_code=None, error="Connection refused")
    callback_configure(
        sensor, write_bucket=greenhouse, set_property=state, call_endpoint=notify, timeout=10
    )

    source = {"kind": "property", "device": "sensor1", "property": "state"}
    dashboard_create(
        owner=alice,
        identifier="greenhouse",
        name="Greenhouse",
        description=LONG_NAME,
        widgets=[
            {
                "id": "threshold",
                "type": "value",
                "title": LONG_NAME,
                "subtitle": LONG_NAME,
                "source": {**source, "field": "threshold"},
                "options": {"unit": "°C"},
            },
            {"id": "level", "type": "gauge", "source": {**source, "field": "threshold"}},
            {"id": "led", "type": "led", "source": {**source, "field": "led"}},
            {
                "id": "status",
                "type": "device_status",
                "source": {"kind": "device", "device": "sensor1"},
            },
            {"id": "schedule", "type": "text", "source": {**source, "field": "schedule"}},
            {
                "id": "history",
                "type": "chart",
                "source": {
                    "kind": "bucket",
                    "bucket": "greenhouse",
                    "fields": ["temperature", "humidity"],
                    "range": {"last": "2h"},
                },
            },
            {
                "id": "switch",
                "type": "switch",
                "source": {**source, "field": "led"},
                "options": {"on": "on", "off": "off"},
            },
        ],
    )
    DashboardFactory(
        owner=alice, identifier="long_dashboard", name=LONG_NAME, description=LONG_NAME
    )


def log_in(page):
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))


def assert_no_sideways_scroll(page, name):
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
    )
    assert widths[0] <= widths[1], f"{name} scrolls sideways: {widths}"


def assert_navigation_reachable(page, width):
    sections = page.get_by_role("navigation", name="Sections")
    devices = sections.get_by_role("link", name="Devices")
    menu = page.get_by_role("button", name="Menu")
    if width < 1024:
        expect(devices).to_be_hidden()
        menu.click()
        expect(devices).to_be_visible()
        expect(sections.get_by_role("link", name="Endpoints")).to_be_in_viewport()
        menu.click()
        expect(devices).to_be_hidden()
    else:
        expect(menu).to_be_hidden()
        expect(devices).to_be_visible()


# True when the element shows one line of text (a cut one, if its text is longer).
ONE_LINE = (
    "el => el.getBoundingClientRect().height < 1.5 * parseFloat(getComputedStyle(el).lineHeight)"
)
CUT = "el => el.scrollWidth > el.clientWidth && getComputedStyle(el).textOverflow === 'ellipsis'"


def assert_lists_keep_one_line(page, name):
    """A list shows the 255-character name on one line, cut, with the whole name in its title;
    the devices' type on one line too."""
    if name not in ("devices", "buckets", "endpoints", "dashboards"):
        return
    long_name = page.locator(f'.name-cell .truncate[title="{LONG_NAME}"]').first
    assert long_name.evaluate(ONE_LINE) and long_name.evaluate(CUT), name
    for label in page.locator(".type-label").all():
        assert label.evaluate(ONE_LINE), label.inner_text()


def save(page, name, width):
    if width not in SAVED_WIDTHS:
        return
    folder = screenshots_folder()
    page.evaluate("window.scrollTo(0, 0); document.activeElement.blur()")
    page.mouse.move(width // 2, 1)  # off the menu button
    height = min(
        page.evaluate("document.documentElement.scrollHeight"), SCREENSHOT_MAX_HEIGHT[width]
    )
    page.screenshot(
        path=str(folder / f"{name}-{width}.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": height},
        animations="disabled",
        caret="hide",
    )


@pytest.mark.parametrize("width", [390, 768, 1280])
def test_every_page_fits_the_width(page, live_server, width):
    seed()
    page.set_viewport_size({"width": width, "height": HEIGHTS[width]})

    page.goto("/login/")
    assert_no_sideways_scroll(page, "login")
    save(page, "login", width)

    log_in(page)
    failed_call = EndpointCall.objects.get(status="failed").pk
    for name, url in PAGES:
        response = page.goto(url.format(failed_call=failed_call))
        assert response.status == (404 if name == "not-found" else 200), name
        page.wait_for_load_state("networkidle")
        assert_no_sideways_scroll(page, name)
        if name != "not-found":
            assert_navigation_reachable(page, width)
        assert_lists_keep_one_line(page, name)
        save(page, name, width)

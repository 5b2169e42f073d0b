"""A dashboard page follows its devices without a reload (issue 17, item 3), in Chromium on the
in-process uvicorn (HTTP and WebSockets): callbacks posted over HTTP change a value widget on a
property, a device status widget, an LED and a chart in place; a switch's new value reaches the
device in its next call's answer, and the switch then says the device picked it up. A marker set
on ``window`` at load survives: nothing reloaded the page. Screenshot ``dashboard-live.png``."""

import pytest
import requests
from playwright.sync_api import expect

from dashboards import services
from devices.tokens import callback_token_for
from tests.browser.conftest import screenshots_folder
from tests.browser.test_console_responsive import log_in
from tests.factories import (
    BucketFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.websockets,
    pytest.mark.django_db(transaction=True),
]

STATE = {"kind": "property", "device": "sensor1", "property": "state"}
WIDGETS = [
    {
        "id": "temp",
        "type": "value",
        "title": "Temperature",
        "source": {**STATE, "field": "t"},
        "options": {"unit": "°C", "decimals": 1},
    },
    {"id": "box", "type": "device_status", "source": {"kind": "device", "device": "sensor1"}},
    {
        "id": "alarm",
        "type": "led",
        "title": "Too hot",
        "source": {**STATE, "field": "t"},
        "options": {"ranges": [{"from": 30, "to": 100, "color": "#dc2626"}], "blink": True},
    },
    {
        "id": "history",
        "type": "chart",
        "title": "Temperature today",
        "source": {"kind": "bucket", "bucket": "temps", "fields": ["t"]},
    },
    {
        "id": "fan",
        "type": "switch",
        "title": "Fan",
        "source": {"kind": "property", "device": "sensor1", "property": "fan"},
    },
]
LAYOUT = {
    "temp": {"x": 0, "y": 0, "w": 3, "h": 3},
    "box": {"x": 3, "y": 0, "w": 3, "h": 3},
    "alarm": {"x": 6, "y": 0, "w": 3, "h": 3},
    "fan": {"x": 9, "y": 0, "w": 3, "h": 3},
    "history": {"x": 0, "y": 3, "w": 12, "h": 4},
}


def seed():
    alice = UserFactory(username="alice")
    sensor = DeviceFactory(owner=alice, identifier="sensor1", name="Greenhouse sensor")
    state = PropertyFactory(device=sensor, identifier="state", value={"t": 20})
    fan = PropertyFactory(device=sensor, identifier="fan", value=False)
    bucket = BucketFactory(owner=alice, identifier="temps")
    callback_configure(sensor, write_bucket=bucket, set_property=state, send_property=fan)
    services.dashboard_create(owner=alice, identifier="home", widgets=WIDGETS, layout=LAYOUT)
    return sensor


def post_callback(site_url, sensor, body):
    answer = requests.post(
        f"{site_url}/v3/users/alice/devices/sensor1/callback/data",
        json=body,
        headers={"Authorization": f"Bearer {callback_token_for(sensor)}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer


def test_the_widgets_follow_the_devices_calls_without_a_reload(page, site_url):
    sensor = seed()
    log_in(page)
    page.goto("/dashboards/home/")
    page.evaluate("window.notReloaded = true")
    live = page.locator("[data-live-state]")
    expect(live).to_have_text("Live")
    tile = {ident: page.locator(f'[data-widget="{ident}"]') for ident in ("temp", "box", "alarm")}
    expect(tile["temp"].locator("[data-value]")).to_have_text("20.0")
    expect(tile["box"]).to_contain_text("Never seen")
    expect(tile["alarm"].locator("[data-led]")).to_have_attribute("data-led", "off")
    expect(page.locator('[data-widget="history"]')).to_contain_text("No numbers in this range")

    post_callback(site_url, sensor, {"t": 31.25})

    expect(tile["temp"].locator("[data-value]")).to_have_text("31.2")
    expect(tile["box"]).to_contain_text("Connected")
    expect(tile["box"].locator("dd[data-value]")).to_have_text("1")
    expect(tile["alarm"].locator("[data-led]")).to_have_attribute("data-led", "on")
    page.wait_for_function("window.consoleCharts && window.consoleCharts['widget-history']")
    post_callback(site_url, sensor, {"t": 29})
    expect(tile["temp"].locator("[data-value]")).to_have_text("29.0")
    expect(tile["alarm"].locator("[data-led]")).to_have_attribute("data-led", "off")
    page.wait_for_function(
        "window.consoleCharts['widget-history'].data.datasets[0].data.length === 2"
    )
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshots_folder() / "dashboard-live.png"), full_page=True)

    # The switch writes the fan (its form reloads the page); the device gets it in its next answer.
    fan = page.locator('[data-widget="fan"]')
    expect(fan.locator("[data-pickup]")).to_contain_text("Picked up by the device's call")
    fan.get_by_role("button", name="Turn on").click()
    expect(fan.locator("[data-pickup]")).to_have_text("Waiting for the device's next call")
    expect(live).to_have_text("Live")
    page.evaluate("window.notReloaded = true")

    assert post_callback(site_url, sensor, {"t": 24}).json() is True

    expect(fan.locator("[data-pickup]")).to_contain_text("Picked up by the device's call")
    expect(tile["temp"].locator("[data-value]")).to_have_text("24.0")
    assert page.evaluate("window.notReloaded") is True


def test_the_page_polls_while_the_socket_is_down(page, site_url):
    """A socket that cannot open (a proxy in the way, here a WebSocket that closes at once):
    every tile is fetched each 15 s meanwhile, and the page says it is reconnecting."""
    sensor = seed()
    page.add_init_script(
        "window.WebSocket = function () { var socket = this;"
        " setTimeout(function () { socket.onclose({ code: 1006 }); }, 0); };"
    )
    page.clock.install()
    log_in(page)
    page.goto("/dashboards/home/")
    page.evaluate("window.notReloaded = true")
    page.clock.run_for(100)
    expect(page.locator("[data-live-state]")).to_have_text("Reconnecting…")

    post_callback(site_url, sensor, {"t": 33})
    page.clock.run_for(16_000)

    expect(page.locator('[data-widget="temp"] [data-value]')).to_have_text("33.0")
    assert page.evaluate("window.notReloaded") is True

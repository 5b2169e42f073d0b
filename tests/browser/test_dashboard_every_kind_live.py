"""Issue 17's walk in Chromium, end to end: a dashboard with one widget of every kind is built
through the console's forms, callbacks are posted over HTTP, and every widget changes in place
(the page is not reloaded: a marker set on ``window`` survives, and every tile is a new node);
then the switch is flipped and the device's next call gets the new value in its answer, which the
switch then says was picked up. Runs on the in-process uvicorn (HTTP and WebSockets).
Screenshots ``dashboard-every-kind-live-<width>.png``."""

import pytest
import requests
from playwright.sync_api import expect

from devices.models import Device
from devices.tokens import callback_token_for
from tests.browser.test_console_responsive import log_in, save
from tests.browser.test_dashboard_editor import EVERY_KIND, build_dashboard, seed
from tests.factories import callback_configure

pytestmark = [
    pytest.mark.browser,
    pytest.mark.websockets,
    pytest.mark.django_db(transaction=True),
]

# The controls write the sensor's "config", which its callback answers with; the callback sets
# "state" from what the device sends and stores it in the bucket "readings".
KINDS = {
    **EVERY_KIND,
    "switch": {**EVERY_KIND["switch"], "property": "config", "field": "fan"},
}
CALL = {
    "temperature": 30.5,
    "humidity": 20,
    "fan": False,
    "note": "door open",
    "lat": 41.5,
    "lng": 2.3,
}


def post_callback(site_url, body):
    sensor = Device.objects.get(identifier="sensor1")
    answer = requests.post(
        f"{site_url}/v3/users/alice/devices/sensor1/callback/data",
        json=body,
        headers={"Authorization": f"Bearer {callback_token_for(sensor)}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer


def test_every_kind_built_in_the_forms_follows_the_calls_and_the_switch_reaches_the_device(
    page, site_url
):
    alice = seed()
    sensor = alice.devices.get(identifier="sensor1")
    callback_configure(
        sensor,
        write_bucket=alice.buckets.get(identifier="readings"),
        set_property=sensor.properties.get(identifier="state"),
        send_property=sensor.properties.get(identifier="config"),
    )
    log_in(page)
    made = build_dashboard(page, KINDS)
    tile = {kind: page.locator(f'[data-widget="{ident}"]') for kind, ident in made.items()}
    expect(page.locator("[data-live-state]")).to_have_text("Live")
    expect(tile["value"].locator("[data-value]")).to_have_text("23.5")
    expect(tile["led"].locator("[data-led]")).to_have_attribute("data-led", "on")
    for kind in ("switch", "slider", "text_input"):
        expect(tile[kind].locator("[data-pickup]")).to_have_text(
            "Waiting for the device's next call"
        )
    page.wait_for_function("window.consoleCharts && window.consoleCharts['widget-chart']")
    chart_before = page.evaluate(
        "JSON.stringify(window.consoleCharts['widget-chart'].data.datasets[0].data)"
    )
    # Each tile as drawn now is marked: a tile redrawn live is a new node without the mark.
    page.evaluate(
        """() => {
            window.notReloaded = true;
            document.querySelectorAll("section.tile").forEach((t) => { t.dataset.old = "1"; });
        }"""
    )

    post_callback(site_url, CALL)

    for ident in made.values():
        expect(page.locator(f'[data-widget="{ident}"]')).not_to_have_attribute("data-old", "1")
    expect(tile["value"].locator("[data-value]")).to_have_text("30.5")
    expect(tile["text"].locator("[data-value]")).to_have_text("door open")
    expect(tile["gauge"].locator("[data-value]")).to_have_text("20")
    expect(tile["donut"].locator("[data-value]")).to_have_text("1")
    expect(tile["led"].locator("[data-led]")).to_have_attribute("data-led", "off")
    expect(tile["map"].locator("[data-value]")).to_have_text("41.5, 2.3")
    expect(tile["device_status"].locator("dd[data-value]")).to_have_text("1")
    for kind in ("switch", "slider", "text_input"):
        expect(tile[kind].locator("[data-pickup]")).to_contain_text(
            "Picked up by the device's call"
        )
    page.wait_for_function(
        """(before) => window.consoleCharts['widget-chart'] && JSON.stringify(
            window.consoleCharts['widget-chart'].data.datasets[0].data) !== before""",
        arg=chart_before,
    )
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_load_state("networkidle")
    save(page, "dashboard-every-kind-live", 1280)

    # The switch writes config.fan (its form reloads the page); the next call's answer has it.
    tile["switch"].get_by_role("button", name="Turn on").click()
    expect(tile["switch"].locator("[data-pickup]")).to_have_text(
        "Waiting for the device's next call"
    )
    expect(page.locator("[data-live-state]")).to_have_text("Live")
    page.evaluate("window.notReloaded = true")

    answer = post_callback(site_url, {**CALL, "temperature": 25})

    assert answer.json() == {"interval": 60, "message": "hi", "fan": True}
    expect(tile["switch"].locator("[data-pickup]")).to_contain_text(
        "Picked up by the device's call"
    )
    expect(tile["switch"].locator(".switch-state")).to_have_text("On")
    expect(tile["value"].locator("[data-value]")).to_have_text("25.0")
    assert page.evaluate("window.notReloaded") is True

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("[data-live-state]")).to_have_text("Live")
    save(page, "dashboard-every-kind-live", 390)

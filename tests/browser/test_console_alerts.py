"""Alerts in the console, in Chromium at a desktop's and a phone's width: the default alerts are
set on their page, a device chooses its own on its Alerts tab (the fields show only then)."""

import re

import pytest
from playwright.sync_api import expect

from devices.models import AlertSettings
from tests.factories import DeviceFactory, EndpointFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "secret-pass-123"


@pytest.mark.parametrize("width", [390, 1280])
def test_default_and_device_alerts_are_chosen_in_the_console(page, width):
    alice = UserFactory(username="alice")
    EndpointFactory(owner=alice, identifier="pager", name="Pager")
    EndpointFactory(owner=alice, identifier="mail", name="Ops e-mail")
    DeviceFactory(owner=alice, identifier="sensor1")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))

    page.goto("/alerts/")
    page.get_by_label("When it reconnects").uncheck()
    page.get_by_label("pager (Pager)").check()
    page.fill("#id_quiet_minutes", "30")
    page.get_by_role("button", name="Save default alerts").click()
    expect(page.locator(".messages, [role=status]").first).to_contain_text("Default alerts saved.")
    default = AlertSettings.objects.get(device=None)
    assert (default.on_disconnect, default.on_reconnect, default.quiet_minutes) == (True, False, 30)
    assert [e.identifier for e in default.endpoints.all()] == ["pager"]

    page.goto("/devices/sensor1/alerts")
    expect(page.locator("#field-mode")).to_contain_text("on disconnect, calling pager")
    fields = page.locator("[data-alert-fields]")
    expect(fields).to_be_hidden()
    page.get_by_label("Alerts of its own").check()
    expect(fields).to_be_visible()
    page.get_by_label("mail (Ops e-mail)").check()
    page.get_by_role("button", name="Save alerts").click()
    expect(page.get_by_label("Alerts of its own")).to_be_checked()
    own = AlertSettings.objects.get(device__identifier="sensor1")
    assert [e.identifier for e in own.endpoints.all()] == ["mail"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width

"""The account page in a real browser, wide and on a phone's width: create an API token (a
custom JSON mistake on the way), copy the value shown once, use it on the API, see its last use,
revoke it through the confirmation and see the API refuse it; then change the password.
Screenshots: tests/screenshots/account-1280.png and account-390.png."""

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "secret-pass-123"
HEIGHTS = {1280: 900, 390: 844}


def log_in(page, username):
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))


def open_account(page):
    """The navigation's Account link (behind the menu button where the sidebar is folded)."""
    toggle = page.locator("[data-nav-toggle]")
    if toggle.count() and toggle.is_visible():
        toggle.click()
    page.get_by_role("link", name="Account", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account/$"))


def api_devices(live_server, token):
    return requests.get(
        f"{live_server.url}/v1/users/alice/devices",
        headers={"Authorization": f"Bearer {token}", "Connection": "close"},
        timeout=10,
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_create_use_and_revoke_an_api_token(page, screenshot, live_server, settings, width):
    settings.PUBLIC_URL = live_server.url
    page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
    UserFactory(username="alice")
    log_in(page, "alice")

    open_account(page)
    expect(page.get_by_role("heading", name="No API tokens yet")).to_be_visible()
    page.get_by_role("link", name="New token").first.click()

    # The JSON boxes are there for custom permissions only; a mistake in them is explained.
    allow = page.get_by_label("Allow (JSON)")
    expect(allow).to_be_hidden()
    page.get_by_label("Token ID").fill("node_red")
    page.locator("#id_name").fill("Node-RED on the greenhouse Pi")
    page.get_by_label("Custom").check()
    expect(allow).to_be_visible()
    allow.fill('{"Device": "*"}')
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#field-allow .errorlist")).to_contain_text(
        '"Device" must map resource names to actions'
    )
    expect(allow).to_be_visible()

    # Read only, then created: the value is shown once, with a copy button.
    page.get_by_label("Read only").check()
    expect(allow).to_be_hidden()
    page.get_by_role("button", name="Create token").click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_text("Token node_red created. Copy its value now")).to_be_visible()
    shown = page.locator("#new-token-value").input_value()
    page.get_by_role("button", name="Copy the token").click()
    expect(page.get_by_role("button", name="Copy the token")).to_contain_text("Copied")
    value = page.evaluate("navigator.clipboard.readText()")
    assert value == shown and value.count(".") == 2  # a JWT
    row = page.locator('tr[data-token="node_red"]')
    expect(row).to_contain_text("Read only")
    expect(row.locator("[data-state]")).to_have_text("Enabled")
    expect(row.locator("[data-last-used]")).to_have_text("Never")
    screenshot(f"account-{width}")

    # It works on the API, which the list then shows; a reload never shows the value again.
    assert api_devices(live_server, value).status_code == 200
    page.reload()
    expect(page.locator("#new-token-value")).to_have_count(0)
    assert value not in page.content()
    expect(row.locator("[data-last-used]")).to_have_text("just now")

    # Revoke, through the confirmation: the API refuses it at once.
    row.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog", name="Revoke token node_red?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("Token node_red revoked")).to_be_visible()
    expect(page.locator('tr[data-token="node_red"]')).to_have_count(0)
    refused = api_devices(live_server, value)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"]


def test_change_the_password(page, live_server):
    UserFactory(username="alice")
    log_in(page, "alice")
    open_account(page)

    page.get_by_label("Current password").fill("not-it")
    page.locator("#id_new_password1").fill("short")
    page.get_by_label("New password, again").fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#field-old_password .errorlist")).to_have_text(
        "This is not your current password."
    )
    expect(page.locator("#field-new_password2 .errorlist")).to_contain_text("too short")

    page.get_by_label("Current password").fill(PASSWORD)
    page.locator("#id_new_password1").fill("violet-harbour-8812")
    page.get_by_label("New password, again").fill("violet-harbour-8812")
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(re.compile(r"/account/$"))
    expect(page.get_by_text("Your password was changed.")).to_be_visible()
    page.goto("/devices/")  # still signed in
    expect(page).to_have_url(re.compile(r"/devices/$"))

"""Callback Settings in Chromium at a phone's and a desktop's width: a selector's search box
narrows its options and chooses the first match, is off while its action is, and "Create a
bucket" comes back to the settings with the new bucket chosen and its action ticked."""

import re

import pytest
from playwright.sync_api import expect

from devices.models import CallbackSettings
from tests.factories import BucketFactory, DeviceFactory, PropertyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "secret-pass-123"


def log_in(page):
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))


def option_values(select):
    return select.evaluate("s => Array.from(s.options).map(o => o.value)")


@pytest.mark.parametrize("width", [390, 1280])
def test_select_or_search_and_create_from_the_settings(page, width):
    alice = UserFactory(username="alice")
    device = DeviceFactory(owner=alice, identifier="sensor1")
    for identifier, name in [
        ("greenhouse", "Greenhouse readings"),
        ("garage", "Garage door"),
        ("cellar", "Cellar humidity"),
    ]:
        BucketFactory(owner=alice, identifier=identifier, name=name)
    PropertyFactory(device=device, identifier="state")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page)
    page.goto("/devices/sensor1/callback/settings")

    search = page.get_by_label("Search buckets")
    select = page.locator("#id_write_bucket")
    # One property: nothing to search.
    expect(page.get_by_label("Search properties")).to_have_count(0)
    # Off while its action is.
    expect(search).to_be_disabled()
    page.get_by_label("Write bucket", exact=True).check()
    expect(search).to_be_enabled()
    expect(search).to_be_focused()

    search.fill("door")
    assert option_values(select) == ["garage"]
    expect(select).to_have_value("garage")
    expect(page.locator("#action-write_bucket .select-status")).to_have_text(
        "1 of 3 buckets match."
    )
    search.fill("GREEN")  # the label, whatever the case
    expect(select).to_have_value("greenhouse")
    search.fill("nothing like it")
    expect(page.locator("#action-write_bucket .select-status")).to_have_text(
        "No buckets match “nothing like it”."
    )
    expect(select).to_have_value("greenhouse")
    assert len(option_values(select)) == 4  # all back, with "Choose a bucket…"
    search.press("Escape")
    expect(search).to_have_value("")
    search.fill("cell")
    search.press("Enter")  # chooses, does not submit
    expect(page).to_have_url(re.compile(r"/callback/settings$"))
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Callback settings saved.")).to_be_visible()
    assert CallbackSettings.objects.get(device=device).write_bucket.identifier == "cellar"
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # Create a bucket from here: back with it chosen.
    page.get_by_role("link", name="Create a bucket").click()
    expect(page).to_have_url(re.compile(r"/buckets/new\?next="))
    page.get_by_label("Bucket ID").fill("attic")
    page.get_by_role("button", name="Create bucket").click()
    expect(page).to_have_url(re.compile(r"/callback/settings\?choose=write_bucket&created=attic$"))
    expect(page.get_by_text("Bucket attic created.")).to_be_visible()
    expect(page.locator("#id_write_bucket")).to_have_value("attic")
    expect(page.get_by_label("Write bucket", exact=True)).to_be_checked()
    expect(page.get_by_text("Created and chosen: save the settings to use it.")).to_be_visible()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Callback settings saved.")).to_be_visible()
    assert CallbackSettings.objects.get(device=device).write_bucket.identifier == "attic"

    # Add a property for the response: the form's Cancel comes back too.
    page.locator("#action-send_property").get_by_role("link", name="Add a property").click()
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(re.compile(r"/callback/settings\?choose=send_property$"))

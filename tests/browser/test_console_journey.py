"""A new user's first session in the console, in a real browser: log in, create a device, copy
its URL and token, post to it, watch it turn green and its chart count the call, create a
bucket and a property, switch on the callback's actions, post again, find the record and the
property's new value, export the bucket and download the file; then another user sees none of
it. Each page is saved as a screenshot on the way."""

import json
import re
import time

import pytest
import requests
from playwright.sync_api import expect

from buckets.models import BucketRecord
from tests.factories import BucketFactory, BucketRecordFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "secret-pass-123"


def log_in(page, username):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))


def nav(page, name):
    """A link of the sidebar."""
    return page.get_by_role("navigation", name="Sections").get_by_role("link", name=name)


def clipboard(page):
    return page.evaluate("navigator.clipboard.readText()")


def post(url, token, body):
    return requests.post(
        url,
        data=json.dumps(body),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Connection": "close",
        },
        timeout=10,
    )


def test_new_user_journey(page, screenshot, live_server, settings, eager_tasks):
    settings.PUBLIC_URL = live_server.url
    UserFactory(username="alice")
    UserFactory(username="bob")

    # Log in.
    page.goto("/login/")
    expect(page.get_by_role("heading", name="Log in to the console")).to_be_visible()
    screenshot("login")
    log_in(page, "alice")
    expect(page.get_by_text("No devices yet")).to_be_visible()
    screenshot("devices-empty")

    # Create a device: a bad ID first, which the form explains.
    page.get_by_role("link", name="New device").first.click()
    expect(page.get_by_label("Device Type")).to_have_value("HTTP")
    page.get_by_label("Device ID").fill("my sensor")
    page.get_by_role("button", name="Create device").click()
    expect(page.locator("#field-identifier .errorlist")).to_contain_text("Use 1 to 32 letters")
    screenshot("device-new-errors")
    page.get_by_label("Device ID").fill("sensor1")
    page.get_by_label("Device Name").fill("Greenhouse sensor")
    page.get_by_label("Description").fill("North wall, by the tomatoes")
    screenshot("device-new")
    page.get_by_role("button", name="Create device").click()

    # Callback / Overview: copy the URL and the token.
    expect(page).to_have_url(re.compile(r"/devices/sensor1/callback/$"))
    expect(page.get_by_text("Device sensor1 created")).to_be_visible()
    screenshot("device-callback")
    page.get_by_role("button", name="Copy the URL", exact=True).click()
    url = clipboard(page)
    page.get_by_role("button", name="Copy the token").click()
    token = clipboard(page)
    assert url == f"{live_server.url}/v3/users/alice/devices/sensor1/callback/data"
    assert token.count(".") == 2  # a JWT
    page.get_by_role("button", name="Copy the URL with the token").click()
    assert clipboard(page) == f"{url}?authorization={token}"
    expect(page.locator("#curl-example")).to_contain_text(f"Bearer {token}")

    # Post to it: the list's dot turns green without a reload.
    nav(page, "Devices").click()
    row = page.locator('tr[data-device="sensor1"]')
    expect(row.locator(".status")).to_have_text("Never seen")
    assert post(url, token, {"temperature": 21.5}).status_code == 200
    expect(row.locator(".dot-connected")).to_be_visible()
    expect(row.locator(".status")).to_have_text("Connected")
    screenshot("devices-list")

    # The dashboard's chart shows the call, and the next one without a reload.
    row.get_by_role("link", name="sensor1").click()
    chart = page.locator("#traffic-chart")
    expect(chart).to_have_attribute("data-total-calls", "1")
    assert post(url, token, {"temperature": 21.7}).status_code == 200
    expect(chart).to_have_attribute("data-total-calls", "2")
    expect(page.locator("#total-calls")).to_have_text("2")
    screenshot("device-overview")

    # A bucket.
    nav(page, "Data Buckets").click()
    expect(page.get_by_text("No data buckets yet")).to_be_visible()
    screenshot("buckets-empty")
    page.get_by_role("link", name="New bucket").first.click()
    page.get_by_label("Bucket ID").fill("greenhouse")
    page.get_by_label("Bucket Name").fill("Greenhouse readings")
    screenshot("bucket-new")
    page.get_by_role("button", name="Create bucket").click()
    expect(page.get_by_text("Bucket greenhouse created")).to_be_visible()
    expect(page.get_by_role("heading", name="No records yet")).to_be_visible()

    # A property, with a JSON mistake on the way.
    page.goto("/devices/sensor1/properties/")
    expect(page.get_by_text("No properties yet")).to_be_visible()
    screenshot("device-properties-empty")
    page.get_by_role("link", name="Add property").first.click()
    page.get_by_label("Property ID").fill("state")
    page.get_by_label("Value (JSON)").fill("{led: on}")
    page.get_by_role("button", name="Add property").click()
    expect(page.locator("#field-value .errorlist")).to_contain_text("This is not valid JSON")
    screenshot("property-form-error")
    page.get_by_label("Value (JSON)").fill('{"led": "on"}')
    page.get_by_role("button", name="Add property").click()
    expect(page.locator('tr[data-property="state"] [data-value]')).to_have_text('{"led": "on"}')
    screenshot("device-properties")

    # Callback / Settings: write bucket, set property and response data.
    page.get_by_role("link", name="Callback", exact=True).click()
    page.locator(".subtabs").get_by_role("link", name="Settings").click()
    expect(page.locator("#id_write_bucket")).to_be_disabled()
    page.get_by_label("Write bucket", exact=True).check()
    page.locator("#id_write_bucket").select_option("greenhouse")
    page.get_by_label("Set property", exact=True).check()
    page.locator("#id_set_property").select_option("state")
    page.get_by_label("Response data", exact=True).check()
    page.locator("#id_send_property").select_option("state")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Callback settings saved.")).to_be_visible()
    expect(page.locator("#id_write_bucket")).to_have_value("greenhouse")
    screenshot("device-callback-settings")

    # Post again, as a device that timestamps its readings ten minutes apart: each answer is the
    # property, now the payload.
    now = int(time.time() * 1000)
    readings = [
        {"temperature": 22.8, "humidity": 55, "ts": now - 1_200_000},
        {"temperature": 23.1, "humidity": 53, "ts": now - 600_000},
        {"temperature": 23.4, "humidity": 51, "ts": now},
    ]
    for reading in readings:
        answer = post(url, token, reading)
        assert answer.status_code == 200
        assert answer.json() == reading

    # The property's new value, and the record in the bucket.
    page.get_by_role("link", name="Properties").click()
    value = page.locator('tr[data-property="state"] [data-value]')
    expect(value).to_contain_text('"temperature": 23.4')
    expect(value).to_contain_text('"humidity": 51')
    nav(page, "Data Buckets").click()
    page.get_by_role("link", name="greenhouse", exact=True).click()
    expect(page.locator("#records-table tbody tr")).to_have_count(3)
    expect(page.locator("#records-table tbody tr").first).to_contain_text("23.4")
    expect(page.locator("canvas[data-chart=records]")).to_be_visible()

    # Export: the progress bar completes, then the file downloads.
    page.get_by_label("Format").select_option("csv")
    page.get_by_role("button", name="Start export").click()
    expect(page.get_by_text("started: it appears below")).to_be_visible()
    export_row = page.locator("#exports-table tbody tr").first
    expect(export_row.locator(".progress-bar.done")).to_be_visible()
    expect(export_row.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    with page.expect_download() as download_info:
        export_row.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename.startswith("greenhouse-")
    lines = download.path().read_text(encoding="utf-8").splitlines()
    # The device wrote the records: the export names it.
    assert lines[0] == "ts;device;humidity;temperature"
    assert [line.split(";", 1)[1] for line in lines[1:]] == [
        "sensor1;55;22.8",
        "sensor1;53;23.1",
        "sensor1;51;23.4",
    ]
    screenshot("bucket-detail")

    nav(page, "Data Buckets").click()
    screenshot("buckets-list")

    # Another user sees none of it.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    log_in(page, "bob")
    expect(page.get_by_text("No devices yet")).to_be_visible()
    nav(page, "Data Buckets").click()
    expect(page.get_by_text("No data buckets yet")).to_be_visible()
    response = page.goto("/devices/sensor1/")
    assert response.status == 404
    response = page.goto("/buckets/greenhouse/")
    assert response.status == 404
    page.goto("/devices/")
    screenshot("other-user-devices")


def test_endpoint_pages(page, screenshot, live_server, settings, receiver):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    receiver.script(200, default=200)
    UserFactory(username="alice")
    log_in(page, "alice")

    nav(page, "Endpoints").click()
    expect(page.get_by_text("No endpoints yet")).to_be_visible()
    screenshot("endpoints-empty")

    # The form shows the fields of the chosen type only.
    page.get_by_role("link", name="New endpoint").first.click()
    expect(page.locator('fieldset[data-endpoint-type="http_request"]')).to_be_visible()
    expect(page.locator('fieldset[data-endpoint-type="telegram"]')).to_be_hidden()
    page.get_by_label("Type").select_option("telegram")
    expect(page.locator('fieldset[data-endpoint-type="telegram"]')).to_be_visible()
    expect(page.locator('fieldset[data-endpoint-type="http_request"]')).to_be_hidden()
    page.get_by_label("Type").select_option("http_request")

    # A mistake, explained on its field.
    page.get_by_label("Endpoint ID").fill("notify")
    page.get_by_label("Endpoint Name").fill("Notify the farm server")
    page.locator("#id_http_request-url").fill("ftp://example.com")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("#field-http_request-url .errorlist")).to_have_text(
        "Enter an http:// or https:// URL."
    )
    screenshot("endpoint-new-errors")
    page.locator("#id_http_request-url").fill(f"{receiver.url}/farm")
    page.get_by_label("Headers").fill("X-Farm: north")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.get_by_text("Endpoint notify created")).to_be_visible()
    expect(page.get_by_text("No calls yet")).to_be_visible()

    # The test button shows the target's answer, and the call joins the log.
    page.get_by_label("Test payload (JSON)").fill('{"temperature": 30}')
    page.get_by_role("button", name="Send test call").click()
    expect(page.locator("#test-result")).to_contain_text("HTTP 200")
    expect(page.locator("#calls-table tbody tr")).to_have_count(1)
    assert receiver.requests[-1].json() == {"temperature": 30}
    assert receiver.requests[-1].headers["X-Farm"] == "north"
    screenshot("endpoint-detail")

    nav(page, "Endpoints").click()
    expect(page.locator('tr[data-endpoint="notify"]')).to_contain_text("Succeeded")
    screenshot("endpoints-list")

    page.goto("/endpoints/new")
    screenshot("endpoint-new")


def test_clear_records_checks_the_range_before_asking(page, screenshot):
    alice = UserFactory(username="alice")
    bucket = BucketFactory(owner=alice, identifier="greenhouse")
    BucketRecordFactory.create_batch(3, bucket=bucket)
    log_in(page, "alice")
    page.goto("/buckets/greenhouse/")
    clear = page.locator("#clear")

    # A range that ends before it starts: the page says so, and asks nothing.
    clear.get_by_label("A time range").check()
    clear.get_by_label("From").fill("2024-01-02T00:00")
    clear.get_by_label("To").fill("2024-01-01T00:00")
    clear.get_by_role("button", name="Clear records…").click()
    expect(page).to_have_url(re.compile(r"/buckets/greenhouse/#clear$"))
    expect(clear.locator("#field-clear-end .errorlist")).to_have_text(
        "The end must be after the start."
    )
    expect(page.get_by_role("dialog")).to_have_count(0)

    # All records: a modal dialog asks first; cancelling keeps them.
    clear.get_by_label("All records").check()
    clear.get_by_role("button", name="Clear records…").click()
    dialog = page.get_by_role("dialog", name="Clear records?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("All the records of greenhouse are deleted for good.")
    assert page.evaluate("document.querySelector('#confirm-clear').matches(':modal')")
    screenshot("bucket-clear-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert BucketRecord.objects.count() == 3

    clear.get_by_role("button", name="Clear records…").click()
    page.get_by_role("dialog").get_by_role("button", name="Clear records").click()
    expect(page.get_by_text("3 records deleted from the bucket.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/buckets/greenhouse/$"))
    assert not BucketRecord.objects.exists()

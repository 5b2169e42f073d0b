"""Issue 16's pages in Chromium at a phone's and a desktop's width: the callback URL on the
address the console is opened at, the warning of an endpoint the guard will refuse, an
endpoint's call log (filter, open a call, retry it), and a bucket's records as columns."""

import re

import pytest
from playwright.sync_api import expect

from endpoints.models import EndpointCall
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceFactory,
    EndpointAttemptFactory,
    EndpointCallFactory,
    EndpointFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "secret-pass-123"
WIDTHS = [390, 1280]


def log_in(page, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))


def fits(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def clipboard(page):
    return page.evaluate("navigator.clipboard.readText()")


@pytest.mark.parametrize("width", WIDTHS)
def test_callback_url_at_this_address(page, live_server, settings, width):
    settings.PUBLIC_URL = "https://iot.example.com"
    DeviceFactory(owner=UserFactory(username="alice"), identifier="sensor1")
    log_in(page, width)

    page.goto("/devices/sensor1/callback/")

    note = page.locator("#other-address")
    expect(note).to_be_visible()
    expect(note).to_contain_text(f"You opened the console at {live_server.url}")
    expect(page.locator("#callback-url")).to_have_value(
        "https://iot.example.com/v3/users/alice/devices/sensor1/callback/data"
    )
    note.get_by_role("button", name="Copy the URL at this address").click()
    assert clipboard(page) == f"{live_server.url}/v3/users/alice/devices/sensor1/callback/data"
    fits(page, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_endpoint_the_guard_refuses_is_saved_with_a_warning(page, settings, width):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False
    UserFactory(username="alice")
    log_in(page, width)

    page.goto("/endpoints/new")
    page.get_by_label("Endpoint ID").fill("nodered")
    page.locator("#id_http_request-url").fill("http://127.0.0.1:1880/in")
    page.get_by_role("button", name="Create endpoint").click()

    expect(page).to_have_url(re.compile(r"/endpoints/nodered/$"))
    expect(page.locator(".message-success")).to_contain_text("Endpoint nodered created")
    expect(page.locator(".message-warning")).to_contain_text(
        "Its calls will be refused: 127.0.0.1 is a loopback address"
    )
    fits(page, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_call_log_filter_open_and_retry(page, settings, receiver, eager_tasks, width):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    receiver.script(200, default=200)
    alice = UserFactory(username="alice")
    device = DeviceFactory(owner=alice, identifier="sensor1")
    endpoint = EndpointFactory(
        owner=alice, identifier="notify", config={"url": f"{receiver.url}/in", "method": "POST"}
    )
    done = EndpointCallFactory(endpoint=endpoint, device=device, status="succeeded", attempts=1)
    EndpointAttemptFactory(call=done, response_excerpt="ok")
    failed = EndpointCallFactory(
        endpoint=endpoint,
        device=device,
        payload={"temperature": 30.5, "note": "too hot"},
        status="failed",
        attempts=1,
        last_error="HTTP 404 Not Found",
    )
    EndpointAttemptFactory(
        call=failed, status_code=404, error="HTTP 404 Not Found", response_excerpt="no such hook"
    )
    log_in(page, width)
    page.goto("/endpoints/notify/")
    rows = page.locator("#calls-table tbody tr")
    expect(rows).to_have_count(2)

    # Filter by status.
    filters = page.get_by_role("navigation", name="Show calls")
    filters.get_by_role("link", name="Failed").click()
    expect(page).to_have_url(re.compile(r"\?status=failed#calls$"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-call", str(failed.pk))
    filters.get_by_role("link", name="Succeeded").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-call", str(done.pk))
    filters.get_by_role("link", name="Pending").click()
    expect(page.get_by_text("No pending calls")).to_be_visible()
    filters.get_by_role("link", name="All").click()
    expect(rows).to_have_count(2)
    fits(page, width)

    # Open the failed call: its payload and its attempt.
    page.locator(f'tr[data-call="{failed.pk}"]').get_by_role("link", name="Details").click()
    expect(page).to_have_url(re.compile(rf"/endpoints/notify/calls/{failed.pk}/$"))
    expect(page.locator("#payload-json")).to_contain_text('"note": "too hot"')
    attempts = page.locator("#attempts-table tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("HTTP 404")
    expect(attempts.first).to_contain_text("no such hook")
    fits(page, width)

    # Retry: through the queue (run at once here), then the call's page with its new attempt.
    page.get_by_role("button", name="Retry").click()
    expect(page).to_have_url(re.compile(rf"/endpoints/notify/calls/{failed.pk}/$"))
    expect(page.locator(".message-success")).to_contain_text("is queued again")
    expect(attempts).to_have_count(2)
    expect(attempts.first).to_contain_text("HTTP 200")
    expect(page.locator(".page-header")).to_contain_text("Succeeded")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    assert EndpointCall.objects.get(pk=failed.pk).status == "succeeded"
    assert receiver.requests[-1].json() == {"temperature": 30.5, "note": "too hot"}
    fits(page, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_bucket_records_as_columns(page, width):
    alice = UserFactory(username="alice")
    bucket = BucketFactory(owner=alice, identifier="greenhouse")
    t0 = 1_700_000_000_000
    for i in range(30):
        BucketRecordFactory(
            bucket=bucket,
            ts=t0 + i * 60_000,
            value={"temperature": 20 + i / 10, "humidity": 50 - i, "door": "closed"},
            device="sensor1",
        )
    BucketRecordFactory(bucket=bucket, ts=t0 + 31 * 60_000, value={"gps": {"lat": 41.4}})
    log_in(page, width)

    page.goto("/buckets/greenhouse/")

    expect(page.locator("#record-total")).to_have_text("31 records")
    table = page.locator("#records-table")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(25)
    # The newest is not flat: its JSON spans the columns.
    expect(rows.nth(0).locator("td.value-cell")).to_have_text('{"gps": {"lat": 41.4}}')
    newest_flat = rows.nth(1).locator("td.field-cell")
    expect(newest_flat).to_have_text(["closed", "21", "22.9"])
    if width >= 900:
        expect(table.locator("thead th")).to_have_text(
            ["Time (UTC)", "Device", "door", "humidity", "temperature"]
        )
    else:  # a card per record, each field with its name
        label = newest_flat.nth(2).evaluate("el => getComputedStyle(el, '::before').content")
        assert label == '"temperature"'
        expect(newest_flat.nth(2)).to_be_visible()
    expect(rows.nth(1)).to_contain_text("sensor1")
    fits(page, width)

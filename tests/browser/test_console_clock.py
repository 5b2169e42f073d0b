"""One clock (issue 16, item 2): the console shows and reads times in the browser's time zone,
named, with UTC in a tooltip; a chart over several days has ticks at the browser's midnights,
none repeated. The browser here is in Kolkata (UTC+05:30), the server in UTC."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from buckets.models import BucketExport, BucketRecord
from tests.factories import BucketFactory, DeviceFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.browser_timezone("Asia/Kolkata"),
    pytest.mark.django_db(transaction=True),
]

IST = timedelta(hours=5, minutes=30)


def test_times_and_ranges_are_the_browsers_and_chart_ticks_do_not_repeat(page, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # the export stays pending: only its range counts
    alice = UserFactory(username="alice")
    last_call = datetime(2026, 11, 1, 20, 0, tzinfo=UTC)  # Nov 2, 01:30 in Kolkata
    DeviceFactory(owner=alice, identifier="sensor1", last_call_at=last_call, connected=False)
    bucket = BucketFactory(owner=alice, identifier="temps")
    start = int((datetime.now(UTC) - timedelta(days=4)).timestamp() * 1000)
    BucketRecord.objects.bulk_create(
        BucketRecord(bucket=bucket, ts=start + n * 2 * 3_600_000, value={"t": n % 7})
        for n in range(48)
    )
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "secret-pass-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))

    page.goto("/devices/sensor1/")
    last = page.locator('[data-fragment="last_call"] time')
    expect(last).to_have_text(re.compile(r"Nov 2, 2026.*01:30.*(IST|GMT\+5:30)"))
    assert "2026-11-01 20:00:00 UTC" in last.get_attribute("title")

    page.goto("/buckets/temps/")
    labels = page.evaluate(
        "window.consoleCharts.records.scales.x.ticks.map(function (t) { return t.label; })"
    )
    assert len(labels) >= 3
    assert len(set(labels)) == len(labels), labels
    title = page.evaluate("window.consoleCharts.records.options.scales.x.title.text")
    assert title == "Time (Asia/Calcutta)" or title == "Time (Asia/Kolkata)"
    expect(page.locator(".range-help").first).to_contain_text(re.compile("Asia/(Kolkata|Calcutta)"))

    # A range typed in the browser's clock means that moment.
    page.locator("#id_export-scope_1").check()
    page.fill("#id_export-start", "2026-12-01T10:00")
    page.get_by_role("button", name="Start export").click()
    expect(page.locator(".messages")).to_be_visible()
    export = BucketExport.objects.get()
    assert export.min_ts == int((datetime(2026, 12, 1, 10, 0, tzinfo=UTC) - IST).timestamp() * 1000)

"""A bucket's chart over a long range, in a real browser: 30 days of a record every ten minutes
are drawn as hourly means, and the chart says so; the last hour draws the records themselves."""

import math
import re
import time

import pytest
from playwright.sync_api import expect

from buckets.models import BucketRecord
from tests.browser.test_console_journey import log_in
from tests.factories import BucketFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MINUTE = 60_000


def test_a_long_range_is_drawn_as_hourly_means(page, screenshot):
    owner = UserFactory(username="alice")
    bucket = BucketFactory(owner=owner, identifier="greenhouse", name="Greenhouse")
    now = int(time.time() * 1000) // MINUTE * MINUTE
    times = range(now - 30 * 24 * 60 * MINUTE, now, 10 * MINUTE)
    BucketRecord.objects.bulk_create(
        BucketRecord(
            bucket=bucket,
            ts=ts,
            value={
                # A daily swing and a slow drift, plus a jitter that the means smooth out.
                "temperature": round(
                    20 + 4 * math.sin(ts / 86_400_000 * 2 * math.pi) + ts % 7 / 10, 2
                ),
                "humidity": round(55 + 10 * math.cos(ts / (7 * 86_400_000) * 2 * math.pi), 1),
            },
        )
        for ts in times
    )

    log_in(page, "alice")
    page.goto("/buckets/greenhouse/")
    page.get_by_label("Range", exact=True).select_option("30d")

    expect(page.get_by_text("Hourly means of the numeric fields")).to_be_visible()
    canvas = page.locator("canvas[data-chart=records]")
    expect(canvas).to_have_attribute("data-means", "hourly")
    expect(canvas).to_have_attribute(
        "aria-label", "Chart of the bucket's numeric fields, hourly means"
    )
    points = page.evaluate(
        "window.consoleCharts.records.data.datasets.map(function (set) {"
        " return [set.label, set.data.length]; })"
    )
    # One point an hour: 720 intervals, the first and last partly in the range.
    assert [label for label, _ in points] == ["humidity", "temperature"]
    assert all(719 <= count <= 721 for _, count in points), points
    page.locator("#chart").scroll_into_view_if_needed()
    screenshot("bucket-chart-hourly-means")

    # The last hour holds five or six records: drawn as they are.
    page.get_by_label("Range", exact=True).select_option("1h")
    expect(
        page.get_by_text(re.compile(r"Numeric fields of the records: [56] records\."))
    ).to_be_visible()
    expect(canvas).not_to_have_attribute("data-means", "hourly")

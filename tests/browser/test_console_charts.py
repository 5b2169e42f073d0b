"""The console's charts (issue 16, item 6): a bucket's nested numeric fields are charted under
their dotted path; series of very different sizes get an axis each (a battery's 3.7 V is not a
flat line under a 0-60 % humidity); a byte axis speaks one unit."""

import re
import time
from datetime import date

import pytest
from playwright.sync_api import expect

from buckets.models import BucketRecord
from tests.factories import BucketFactory, DeviceDailyStatsFactory, DeviceFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page):
    page.goto("/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "secret-pass-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/devices/$"))


def test_nested_fields_and_small_series_get_their_own_axis(page):
    alice = UserFactory(username="alice")
    bucket = BucketFactory(owner=alice, identifier="greenhouse")
    now = int(time.time() * 1000)
    BucketRecord.objects.bulk_create(
        BucketRecord(
            bucket=bucket,
            ts=now - 3_600_000 + n * 60_000,
            value={"battery": 3.6 + n / 100, "humidity": 40 + n % 20, "env": {"temp": 20 + n % 5}},
        )
        for n in range(30)
    )
    log_in(page)
    page.goto("/buckets/greenhouse/")
    sets = page.evaluate(
        "window.consoleCharts.records.data.datasets.map(function (d) {"
        " return [d.label, d.yAxisID]; })"
    )
    assert dict(sets) == {"battery": "y2", "env.temp": "y", "humidity": "y"}
    assert page.evaluate("window.consoleCharts.records.scales.y2.options.display") is True


def test_a_byte_axis_speaks_one_unit(page):
    alice = UserFactory(username="alice")
    device = DeviceFactory(owner=alice, identifier="sensor1")
    DeviceDailyStatsFactory(device=device, date=date.today(), calls=30, rx_bytes=1500, tx_bytes=90)
    log_in(page)
    page.goto("/devices/sensor1/")
    labels = page.evaluate(
        "window.consoleCharts.traffic.scales.bytes.ticks.map(function (t) { return t.label; })"
    )
    units = {label.split(" ")[-1] for label in labels}
    assert len(units) == 1, labels

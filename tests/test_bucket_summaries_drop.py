"""Writes and deletes of records in the past drop the summaries they change (buckets.summaries),
in the writer's transaction; the next runs summarize those slots again."""

import json
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from buckets import summaries
from buckets.aggregates import bucket_aggregate
from buckets.models import BucketSummary, BucketSummaryMark
from buckets.services import bucket_clear, bucket_enforce_retention, bucket_write
from core.times import to_ms
from tests.factories import BucketFactory, DeviceFactory, callback_configure
from tests.test_bucket_summaries import CUTOFF, DAY, HOUR, LATER, SLOT, T, summarize, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket(db):
    return BucketFactory()


def test_a_write_in_the_past_drops_the_summaries_and_the_next_run_restores_them(bucket):
    write(bucket, {T + i * 60_000: {"t": 1} for i in range(600)})
    summarize()
    mark = BucketSummaryMark.objects.get(bucket=bucket)
    assert mark.until > T + 600 * 60_000

    bucket_write(bucket=bucket, values=[{"ts": T + 5 * HOUR + 1, "t": 1000}, {"t": 7}])

    mark.refresh_from_db()
    assert mark.until == T + 5 * HOUR
    assert not BucketSummary.objects.filter(bucket=bucket, slot__gte=T + 5 * HOUR).exists()
    read = bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type="sum", min_ts=T, max_ts=T + DAY)
    assert {"ts": T + 5 * HOUR, "val": {"t": 60 + 1000}} in read
    summarize()
    assert (
        bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type="sum", min_ts=T, max_ts=T + DAY)
        == read
    )
    assert BucketSummary.objects.filter(bucket=bucket, slot=T + 5 * HOUR, path="t").get().total


def test_deletes_drop_the_summaries_they_change(bucket):
    write(bucket, {T + i * 60_000: {"t": i} for i in range(24 * 60)})
    summarize()

    def sums():
        return bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type="sum", sort="asc")

    bucket_clear(bucket, T + 10 * HOUR + 90_000, T + 12 * HOUR)
    mark = BucketSummaryMark.objects.get(bucket=bucket)
    assert mark.until == T + 10 * HOUR
    cleared = sums()
    assert cleared[10]["val"]["t"] == sum(range(600, 602))
    assert cleared[11]["ts"] == T + 12 * HOUR
    summarize()
    assert sums() == cleared

    # Deleting from the oldest record (retention, a clear up to a time) moves the start on.
    bucket_clear(bucket, None, T + 2 * HOUR + 30 * 60_000)
    mark.refresh_from_db()
    assert (mark.since, mark.until) == (T + 2 * HOUR + 35 * 60_000, CUTOFF)
    assert sums()[0] == {"ts": T + 2 * HOUR, "val": {"t": sum(range(151, 180))}}

    bucket_clear(bucket)
    assert not BucketSummary.objects.filter(bucket=bucket).exists()
    assert not BucketSummaryMark.objects.filter(bucket=bucket).exists()


def test_retention_moves_the_summaries_start_past_the_expired_records(bucket):
    bucket.retention_period, bucket.retention_unit = 1, "days"
    bucket.save()
    now = timezone.now()
    start = to_ms(now) - to_ms(now) % DAY - 3 * DAY
    write(bucket, {start + i * 60_000: {"t": 2} for i in range(3 * 24 * 60)})
    summarize()
    before = bucket_aggregate(bucket=bucket, step_ms=DAY, agg_type="count", sort="asc")

    bucket_enforce_retention(now=now)

    cutoff = to_ms(now) - DAY
    mark = BucketSummaryMark.objects.get(bucket=bucket)
    assert mark.since == summaries.slot_floor(cutoff - 1) + SLOT
    assert not BucketSummary.objects.filter(bucket=bucket, slot__lt=mark.since).exists()
    after = bucket_aggregate(bucket=bucket, step_ms=DAY, agg_type="count", sort="asc")
    left = (start + 3 * 24 * 60 * 60_000 - cutoff) // 60_000
    assert sum(row["val"]["t"] for row in after) == left
    assert len(before) == 3


def test_a_device_sending_an_old_time_of_its_own_drops_them_and_a_fresh_one_does_not(
    callback_client,
):
    """The callback (on PostgreSQL its database function) drops the summaries for records
    older than ``FRESH_MS``; records at the server's time or at a fresh time of their own read
    no mark: a run only reaches slots that ended ``GRACE_MS`` ago."""
    device = DeviceFactory()
    bucket = BucketFactory(owner=device.owner)
    callback_configure(device, write_bucket=bucket)
    write(bucket, {T + i * 60_000: {"t": 1} for i in range(600)})
    summarize()
    now = to_ms(timezone.now())

    mark_table = connection.ops.quote_name(BucketSummaryMark._meta.db_table)
    with CaptureQueriesContext(connection) as queries:
        callback_client.post(device, json.dumps([{"t": 2}, {"ts": now - 10_000, "t": 3}]))
    assert not [q for q in queries.captured_queries if mark_table in q["sql"]]
    assert BucketSummaryMark.objects.get(bucket=bucket).until == CUTOFF

    callback_client.post(device, json.dumps({"ts": T + 3 * HOUR + 7, "t": 100}))

    assert BucketSummaryMark.objects.get(bucket=bucket).until == T + 3 * HOUR
    hours = bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type="sum", min_ts=T, max_ts=T + DAY)
    assert {"ts": T + 3 * HOUR, "val": {"t": 160}} in hours
    summarize()
    assert (
        bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type="sum", min_ts=T, max_ts=T + DAY)
        == hours
    )


@pytest.mark.django_db(transaction=True)
def test_a_run_skips_a_bucket_whose_writer_of_old_records_has_not_committed():
    """The writer holds the mark from its first old record to its commit: a run meanwhile
    leaves the bucket alone (SKIP LOCKED), and the next one summarizes it with the record."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    bucket = BucketFactory()
    write(bucket, {T + i * 60_000: {"t": 1} for i in range(120)})
    summarize()
    writing, release, errors = threading.Event(), threading.Event(), []

    def writer():
        try:
            with transaction.atomic():
                bucket_write(bucket=bucket, values=[{"ts": T + 30 * 60_000 + 1, "t": 50}])
                writing.set()
                release.wait(30)
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    assert writing.wait(30)
    try:
        assert summaries.bucket_summaries_update(now_ms=LATER) == 0
    finally:
        release.set()
        thread.join()

    assert not errors
    assert summaries.bucket_summaries_update(now_ms=LATER) == 91  # from the record's slot on
    assert bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type="sum", sort="asc") == [
        {"ts": T, "val": {"t": 60 + 50}},
        {"ts": T + HOUR, "val": {"t": 60}},
    ]

"""Retention (SPEC 4): beat deletes records older than each bucket's period, and only those."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from buckets import services, tasks
from buckets.models import BucketRecord
from tests.factories import BucketFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)


def ms(moment):
    return int(moment.timestamp() * 1000)


def fill(bucket, *moments):
    BucketRecord.objects.bulk_create(
        BucketRecord(bucket=bucket, ts=ms(moment), value={"i": i})
        for i, moment in enumerate(moments)
    )


def kept(bucket):
    return list(
        BucketRecord.objects.filter(bucket=bucket).order_by("ts").values_list("ts", flat=True)
    )


@pytest.mark.parametrize(
    ("period", "unit", "cutoff"),
    [
        (6, "hours", NOW - timedelta(hours=6)),
        (2, "days", NOW - timedelta(days=2)),
        (1, "weeks", NOW - timedelta(weeks=1)),
        (1, "months", datetime(2024, 2, 29, 12, 0, tzinfo=UTC)),  # calendar months, clamped
        (13, "months", datetime(2023, 2, 28, 12, 0, tzinfo=UTC)),
        (1, "years", datetime(2023, 3, 31, 12, 0, tzinfo=UTC)),
    ],
)
def test_records_older_than_the_period_are_deleted(period, unit, cutoff):
    bucket = BucketFactory(retention_period=period, retention_unit=unit)
    just_before = cutoff - timedelta(milliseconds=1)
    fill(bucket, cutoff - timedelta(days=400), just_before, cutoff, NOW - timedelta(seconds=1), NOW)

    deleted = services.bucket_enforce_retention(now=NOW)

    assert deleted == 2
    assert kept(bucket) == [ms(cutoff), ms(NOW - timedelta(seconds=1)), ms(NOW)]


@pytest.mark.parametrize("period", [None, 0])
def test_no_period_keeps_everything(period):
    bucket = BucketFactory(retention_period=period, retention_unit="hours")
    fill(bucket, NOW - timedelta(days=3650), NOW)

    assert services.bucket_enforce_retention(now=NOW) == 0
    assert len(kept(bucket)) == 2


def test_each_bucket_by_its_own_period():
    short = BucketFactory(retention_period=1, retention_unit="days")
    long = BucketFactory(retention_period=30, retention_unit="days")
    forever = BucketFactory()
    for bucket in (short, long, forever):
        fill(bucket, NOW - timedelta(days=40), NOW - timedelta(days=10), NOW)

    assert services.bucket_enforce_retention(now=NOW) == 3

    assert kept(short) == [ms(NOW)]
    assert kept(long) == [ms(NOW - timedelta(days=10)), ms(NOW)]
    assert len(kept(forever)) == 3


def test_deletes_in_chunks(monkeypatch):
    monkeypatch.setattr(services, "RECORDS_PER_DELETE", 3)
    bucket = BucketFactory(retention_period=1, retention_unit="days")
    fill(bucket, *(NOW - timedelta(days=2, minutes=i) for i in range(10)), NOW)

    assert services.bucket_enforce_retention(now=NOW) == 10
    assert kept(bucket) == [ms(NOW)]


def test_a_period_reaching_before_year_one_keeps_everything():
    bucket = BucketFactory(retention_period=5000, retention_unit="years")
    fill(bucket, datetime(1970, 1, 1, tzinfo=UTC), NOW)

    assert services.bucket_enforce_retention(now=NOW) == 0
    assert len(kept(bucket)) == 2


def test_the_beat_task_runs_the_service():
    bucket = BucketFactory(retention_period=1, retention_unit="hours")
    fill(bucket, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(minutes=1))

    assert tasks.bucket_enforce_retention() == 1
    assert len(kept(bucket)) == 1


def test_beat_schedules_it():
    entry = settings.CELERY_BEAT_SCHEDULE["bucket-enforce-retention"]

    assert entry["task"] == "buckets.tasks.bucket_enforce_retention"
    assert entry["schedule"] == settings.BUCKET_RETENTION_INTERVAL_SECONDS
    assert tasks.bucket_enforce_retention.name == entry["task"]

"""Summaries of bucket records per slot (buckets.summaries): aggregates read from them give the
figures the records give, writes and deletes in the past drop the summaries they change, and
runs of the beat task neither miss nor double count."""

import random
import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from buckets import summaries
from buckets.aggregates import AGG_TYPES, bucket_aggregate, bucket_chart
from buckets.models import BucketSummary, BucketSummaryMark
from core.times import to_ms
from tests.factories import BucketFactory, BucketRecordFactory

pytestmark = pytest.mark.django_db

SLOT = summaries.SLOT_MS
HOUR = 3_600_000
DAY = 24 * HOUR
T = 1_700_000_000_000 - 1_700_000_000_000 % DAY  # a UTC midnight (a Tuesday)
# Runs as if an hour from now: every slot of the records below ended long ago, and every mark
# is older than the grace.
LATER = to_ms(timezone.now()) + HOUR
CUTOFF = summaries.slot_floor(LATER - summaries.GRACE_MS)  # where those runs stop


def summarize():
    """Run the summaries until nothing is left; the first run makes the marks."""
    summaries.bucket_summaries_update(now_ms=LATER)
    while summaries.bucket_summaries_update(now_ms=LATER):
        pass


def random_values(rng, count, span_ms):
    """Records over ``span_ms`` from T with gaps, nested fields and values that are no numbers.
    Numbers are integers, quarters and a power of two near 1e300, whose sums are exact in any
    order (a float sum of other numbers depends on the order it adds them in, in the database's
    own scan as here)."""
    records = {}
    while len(records) < count:
        ts = T + rng.randrange(span_ms)
        if (ts - T) // (3 * HOUR) % 4 == 1:
            continue  # a gap of three hours in every twelve
        number = rng.randrange(-4000, 4000) / 4
        value = rng.choice(
            [
                {"t": number, "env": {"hum": rng.randrange(100), "0": 1}},
                {"t": number, "env": {"hum": True}},
                {"t": "text", "big": 10**300, "huge": 2.0**990},
                {"t": {"inner": number}, "list": [1, 2]},
                number,
                None,
                {"t": -(2**40), "env": "flat"},
            ]
        )
        records[ts] = value
    return records


@pytest.fixture
def bucket(db):
    return BucketFactory()


def write(bucket, records):
    for ts, value in records.items():
        BucketRecordFactory(bucket=bucket, ts=ts, value=value)


def summary_queries(queries):
    table = connection.ops.quote_name(BucketSummary._meta.db_table)
    return [q["sql"] for q in queries.captured_queries if table in q["sql"]]


@pytest.mark.parametrize("agg_type", AGG_TYPES)
def test_summaries_give_the_figures_of_the_records(bucket, agg_type):
    write(bucket, random_values(random.Random(agg_type), 1500, 4 * DAY))
    cases = [
        # (step, min_ts, max_ts, fields): multiples of the slot and not, ragged and open edges.
        (HOUR, None, None, None),
        (HOUR, T + 7_777, T + 3 * DAY + 1_234, None),
        (SLOT, T + SLOT, T + 2 * DAY - 1, ["t", "env.hum", "env.0", "missing"]),
        (DAY, T - DAY, T + 5 * DAY, ["t"]),
        (7 * DAY, None, None, None),
        (3 * HOUR, T + 1, None, []),
        (7 * 60_000, T, T + DAY, None),  # not a multiple of the slot: records only
        (HOUR, T + 10 * 60_000, T + 50 * 60_000, None),  # too short to gain: records only
    ]
    raw = [
        bucket_aggregate(
            bucket=bucket, step_ms=s, agg_type=agg_type, min_ts=lo, max_ts=hi, fields=f
        )
        for s, lo, hi, f in cases
    ]
    summarize()

    for (step, low, high, fields), expected in zip(cases, raw, strict=True):
        with CaptureQueriesContext(connection) as queries:
            got = bucket_aggregate(
                bucket=bucket,
                step_ms=step,
                agg_type=agg_type,
                min_ts=low,
                max_ts=high,
                fields=fields,
            )
        assert got == expected, (step, low, high, fields)
        summarized = step % SLOT == 0 and (high or T + 4 * DAY) - (low or T) > 2 * HOUR
        assert bool(summary_queries(queries)) == summarized, (step, low, high)
    asc = bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type=agg_type, sort="asc", items=7)
    assert asc == raw[0][::-1][:7]


@pytest.mark.parametrize("agg_type", ["min", "max", "count"])
def test_integers_beyond_a_double_keep_their_figures(bucket, agg_type):
    """SQLite compares the records' integers as integers, PostgreSQL reads them as doubles: the
    summaries keep what each does (their sums are the database's own rounding either way)."""
    write(bucket, {T + i * 60_000: {"id": 2**55 + 2 * i + 1} for i in range(300)})
    raw = bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type=agg_type)
    summarize()

    assert bucket_aggregate(bucket=bucket, step_ms=HOUR, agg_type=agg_type) == raw
    if connection.vendor == "sqlite" and agg_type == "max":
        assert raw[0]["val"]["id"] == 2**55 + 599


def test_a_month_chart_reads_a_row_per_slot_not_the_records(bucket):
    write(bucket, {T + i * SLOT + 1_000: {"t": i % 50} for i in range(30 * 24 * 12)})
    before = bucket_chart(bucket=bucket, min_ts=T, max_ts=T + 30 * DAY - 1, fields=["t"])
    summarize()

    with CaptureQueriesContext(connection) as queries:
        after = bucket_chart(bucket=bucket, min_ts=T, max_ts=T + 30 * DAY - 1, fields=["t"])

    assert after == before
    assert before[0] == HOUR
    assert len(summary_queries(queries)) == 1
    record_reads = [q for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert len(record_reads) == 1  # the summaries' (the range holds no ragged edge)
    assert BucketSummary.objects.filter(bucket=bucket, path=None).count() == 30 * 24 * 12
    assert BucketSummaryMark.objects.get(bucket=bucket).since == T


def test_a_run_is_bounded_and_the_next_one_goes_on(bucket):
    write(bucket, {T + i * 10_000: i for i in range(3000)})
    done = summaries.bucket_summaries_update(now_ms=LATER, records=1000)

    assert 900 < done <= 1000  # whole slots
    until = BucketSummaryMark.objects.get(bucket=bucket).until
    assert until % SLOT == 0 and T < until < T + 3000 * 10_000
    summarize()
    assert BucketSummaryMark.objects.get(bucket=bucket).until == CUTOFF
    assert bucket_aggregate(bucket=bucket, step_ms=DAY, agg_type="count") == [
        {"ts": T, "val": 3000}
    ]
    assert summaries.bucket_summaries_update(now_ms=LATER) == 0  # nothing new: nothing done


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_never_count_a_record_twice():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    buckets = [BucketFactory() for _ in range(3)]
    for bucket in buckets:
        write(bucket, {T + i * 30_000: {"t": 1} for i in range(2000)})
    summaries.bucket_summaries_update(now_ms=LATER)
    barrier, errors = threading.Barrier(2), []

    def run():
        try:
            barrier.wait()
            while summaries.bucket_summaries_update(now_ms=LATER, records=700):
                pass
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    for bucket in buckets:
        assert bucket_aggregate(bucket=bucket, step_ms=DAY, agg_type="count") == [
            {"ts": T, "val": {"t": 2000}}
        ]
        rows = BucketSummary.objects.filter(bucket=bucket, path=None)
        assert sum(rows.values_list("numbers", flat=True)) == 2000
        assert rows.count() == len(set(rows.values_list("slot", flat=True)))


def test_the_beat_task_summarizes(bucket, settings):
    from buckets.tasks import bucket_summaries_update

    assert "bucket-summaries-update" in settings.CELERY_BEAT_SCHEDULE
    now = to_ms(timezone.now())
    write(bucket, {now - DAY + i * 60_000: {"t": 1} for i in range(60)})
    BucketSummaryMark.objects.create(bucket=bucket, since=now - 2 * DAY, until=now - 2 * DAY)
    an_hour_ago = timezone.now() - timezone.timedelta(hours=1)
    BucketSummaryMark.objects.filter(bucket=bucket).update(created=an_hour_ago)

    assert bucket_summaries_update.apply().get() == 60
    assert BucketSummary.objects.filter(bucket=bucket, path="t").count() >= 12


def test_a_dashboard_shows_the_same_charts_with_summaries(bucket):
    from dashboards.selectors import dashboard_data
    from dashboards.services import dashboard_create

    now = T + 30 * DAY + 12_345
    rng = random.Random(7)
    # A record every 290 s for 30 days: more than a chart draws as it is over a week or a month.
    write(bucket, {now - i * 290_000: {"t": rng.randrange(400) / 4} for i in range(30 * 298)})
    source = {"kind": "bucket", "bucket": bucket.identifier, "fields": ["t"]}
    widgets = [
        {"id": "day", "type": "chart", "source": {**source, "range": {"last": "1d"}}},
        {
            "id": "week",
            "type": "chart",
            "source": {
                **source,
                "range": {"last": "1w"},
                "aggregation": {"interval": "1h", "type": "max"},
            },
        },
        {"id": "month", "type": "chart", "source": {**source, "range": {"last": "30d"}}},
    ]
    board = dashboard_create(owner=bucket.owner, identifier="board", widgets=widgets, layout={})
    before = dashboard_data(board, now_ms=now)
    summarize()

    with CaptureQueriesContext(connection) as queries:
        after = dashboard_data(board, now_ms=now)

    assert after == before
    assert len(summary_queries(queries)) == 2  # the day's 298 records are drawn as they are

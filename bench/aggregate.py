"""Benchmark of aggregated bucket reads: hourly means over 30 days of a 10-million-record bucket.

    .venv/bin/python bench/aggregate.py [--records 10000000] [--days 30] [--repeat 5]

The bucket is ``bench/bucket_read.py``'s large one (one record a second, JSON objects with three
numeric fields; loaded once and kept in the bench database). Over the last ``--days`` days it
times, median of ``--repeat`` runs:

- ``aggregate``: ``buckets.selectors.bucket_aggregate`` with 1 h intervals and mean, as
  ``GET .../data?agg=1h&agg_type=mean`` runs it: one query, one row per interval and field back;
- ``raw read``: the same range read the way a client without aggregation must, 1,000 records a
  page with ``bucket_read`` (the API's selector), moving ``min_ts`` past each page (timed once).

It prints both times, the rows each brought back to Python and, on PostgreSQL, what the
aggregate's plan read (EXPLAIN ANALYZE: rows out of the records' index scan, buffers). With
``DATABASE_URL`` it uses the bench database ``thinger_http_bench`` on that server; without it, a
throwaway SQLite file.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time

from benchlib import report_targets, setup_django
from bucket_read import BENCH_USER, T0, load_bucket, use_bench_database

HOUR = 3_600_000
DAY = 24 * HOUR


def timed(function, repeat):
    function()  # warm up
    spent = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent), result


def raw_read(bucket, min_ts, max_ts):
    """Every record of the range, 1,000 a page as clients page (ascending, min_ts moved)."""
    from buckets.selectors import READ_MAX_ITEMS, bucket_read

    rows, low = 0, min_ts
    while True:
        page = bucket_read(
            bucket=bucket, items=READ_MAX_ITEMS, min_ts=low, max_ts=max_ts, sort="asc"
        )
        rows += len(page)
        if len(page) < READ_MAX_ITEMS:
            return rows
        low = page[-1]["ts"] + 1


def plan_of_aggregate(bucket, min_ts, max_ts):
    """What PostgreSQL's plan of the aggregate read: rows out of the records' scan, and buffers."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from buckets.aggregates import bucket_aggregate

    with CaptureQueriesContext(connection) as queries:
        bucket_aggregate(bucket=bucket, step_ms=HOUR, min_ts=min_ts, max_ts=max_ts, sort="asc")
    sql = queries.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scanned, buffers = 0, 0

    def walk(node):
        nonlocal scanned, buffers
        if node.get("Relation Name") == "buckets_bucketrecord":
            scanned += node["Actual Rows"] * node.get("Actual Loops", 1)
            buffers += node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return scanned, buffers, plan[0]["Execution Time"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.records * 1000 < args.days * DAY + 2 * HOUR:
        parser.error("the bucket must span --days (one record a second)")
    var_dir = use_bench_database()
    setup_django()
    try:
        return run(args)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from buckets.aggregates import bucket_aggregate

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    owner, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    bucket = load_bucket(owner, f"large-{args.records}", args.records)
    # The last whole hours of the bucket: one interval each.
    max_ts = (T0 + args.records * 1000) // HOUR * HOUR - 1
    min_ts = max_ts + 1 - args.days * DAY
    in_range = args.days * DAY // 1000

    def aggregate():
        return bucket_aggregate(
            bucket=bucket, step_ms=HOUR, agg_type="mean", min_ts=min_ts, max_ts=max_ts, sort="asc"
        )

    agg_time, intervals = timed(aggregate, args.repeat)
    fields = sum(len(item["val"]) for item in intervals)
    started = time.perf_counter()
    raw_rows = raw_read(bucket, min_ts, max_ts)
    raw_time = time.perf_counter() - started

    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(
        f"hourly means over {args.days} days ({in_range:,} records) of a "
        f"{args.records:,}-record bucket ({os.cpu_count()} CPUs, load average {load}):"
    )
    print(
        f"  aggregate  {agg_time * 1000:10.1f} ms (median of {args.repeat})  "
        f"{len(intervals):,} intervals, {fields:,} values back"
    )
    print(f"  raw read   {raw_time * 1000:10.1f} ms  {raw_rows:,} records back, in pages of 1,000")
    print(f"  raw read / aggregate: {raw_time / agg_time:.1f}x")
    if connection.vendor == "postgresql":
        scanned, buffers, executed = plan_of_aggregate(bucket, min_ts, max_ts)
        print(
            f"  the aggregate's plan: {scanned:,} records read by the index scan, "
            f"{buffers:,} buffers, {executed:.1f} ms executing"
        )
    expected = args.days * 24
    return report_targets(
        [
            (len(intervals) == expected, f"one interval per hour: {len(intervals)} of {expected}"),
            (raw_rows == in_range, f"the raw read saw every record: {raw_rows:,} of {in_range:,}"),
            (agg_time < raw_time, f"aggregating is faster than reading raw: {agg_time:.2f} s"),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())

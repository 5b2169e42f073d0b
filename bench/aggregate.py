"""Benchmark of aggregated bucket reads: hourly means over 30 days of a 10-million-record bucket.

    .venv/bin/python bench/aggregate.py [--records 10000000] [--days 30] [--repeat 3] [--drop]

The bucket holds ``--records`` records, one a second, JSON objects with three numeric fields
(as ``bench/bucket_read.py``'s): generated in the database in one statement
(``generate_series`` on PostgreSQL, a recursive query on SQLite), a few minutes for ten million
records, and kept for the next run with the same size. Over the last ``--days`` days it times:

- ``aggregate``: ``buckets.aggregates.bucket_aggregate`` with 1 h intervals and mean, as
  ``GET .../data?agg=1h&agg_type=mean`` runs it (median of ``--repeat`` runs), and on
  PostgreSQL what its plan read (EXPLAIN (ANALYZE, BUFFERS): records the scan of the records'
  table read, how, and its buffers);
- ``raw read``: the same range read the way a client without aggregation must, 1,000 records a
  page with ``bucket_read`` (the API's selector), moving ``min_ts`` past each page (timed once);
- on PostgreSQL, for reference, a hand-written query of the same means: the three fields named,
  no check of their types (a string in a field would make it fail), not generic.

It never touches the project's database: with ``DATABASE_URL`` (PostgreSQL) it uses the database
``thinger_http_bench_aggregate`` on that server (``--drop`` drops it at the end); without it, a
throwaway SQLite file.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchlib import drop_database, report_targets, setup_django, use_database

BENCH_DATABASE = "thinger_http_bench_aggregate"
BENCH_USER = "bench-aggregate"
T0 = 1_600_000_000_000  # first record's ts; one a second after it
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


def generate_bucket(owner, records):
    """The bucket ``large-<records>`` holding ``records`` records, one a second from ``T0``,
    written by the database itself unless already there."""
    from django.db import connection

    from buckets.models import Bucket, BucketRecord
    from buckets.services import bucket_clear

    bucket, _ = Bucket.objects.get_or_create(owner=owner, identifier=f"large-{records}")
    if BucketRecord.objects.filter(bucket=bucket).count() == records:
        print(f"  {bucket.identifier}: {records:,} records already there")
        return bucket
    bucket_clear(bucket)
    table = connection.ops.quote_name(BucketRecord._meta.db_table)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (bucket_id, ts, value) "  # noqa: S608 (table name only)
                "SELECT %s, %s + i * 1000, jsonb_build_object("
                "'temperature', round(20 + i %% 100 / 10.0, 1), 'humidity', 40 + i %% 30, "
                "'seq', i) FROM generate_series(0::bigint, %s - 1) i",
                [bucket.pk, T0, records],
            )
            cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "  # noqa: S608 (table name only)
                f"INSERT INTO {table} (bucket_id, ts, value) "
                "SELECT %s, %s + i * 1000, json_object("
                "'temperature', round(20 + i %% 100 / 10.0, 1), 'humidity', 40 + i %% 30, "
                "'seq', i) FROM n",
                [records - 1, bucket.pk, T0],
            )
            cursor.execute("ANALYZE")
    print(
        f"  {bucket.identifier}: wrote {records:,} records in {time.perf_counter() - started:.1f} s"
    )
    return bucket


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


def explain(sql, params=None):
    """EXPLAIN (ANALYZE, BUFFERS) of ``sql`` on PostgreSQL: the records the scans of the records'
    table read (kept or filtered out), how (with the parallel workers, if any), their buffers,
    the execution time."""
    from django.db import connection

    from buckets.models import BucketRecord

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    read, buffers, how = 0, 0, set()

    def walk(node):
        nonlocal read, buffers
        if "Workers Launched" in node:
            how.add(f"{node['Workers Launched']} parallel workers")
        if node.get("Relation Name") == BucketRecord._meta.db_table:
            per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            read += (per_loop + node.get("Rows Removed by Index Recheck", 0)) * node["Actual Loops"]
            buffers += node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
            parallel = "Parallel " if node.get("Parallel Aware") else ""
            index = f" ({node['Index Name']})" if "Index Name" in node else ""
            how.add(parallel + node["Node Type"] + index)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return read, buffers, ", ".join(sorted(how)), plan[0]["Execution Time"]


def plan_of_aggregate(bucket, min_ts, max_ts):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from buckets.aggregates import bucket_aggregate

    with CaptureQueriesContext(connection) as queries:
        bucket_aggregate(bucket=bucket, step_ms=HOUR, min_ts=min_ts, max_ts=max_ts, sort="asc")
    aggregating = [query["sql"] for query in queries.captured_queries if "GROUP BY" in query["sql"]]
    return [explain(sql) for sql in aggregating]


def hand_written(bucket, min_ts, max_ts):
    """The same hourly means by a query written for these three fields."""
    from django.db import connection

    from buckets.models import BucketRecord

    table = connection.ops.quote_name(BucketRecord._meta.db_table)
    sql = (
        f"SELECT ts - ts %% {HOUR} AS bin, avg((value->>'humidity')::float8), "  # noqa: S608 (table name only)
        "avg((value->>'seq')::float8), avg((value->>'temperature')::float8) "
        f"FROM {table} WHERE bucket_id = %s AND ts >= %s AND ts <= %s "
        "GROUP BY bin ORDER BY bin"
    )
    params = [bucket.pk, min_ts, max_ts]

    def run():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    return run, sql, params


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--drop", action="store_true", help="drop the bench database at the end (PostgreSQL)"
    )
    args = parser.parse_args()
    if args.records * 1000 < args.days * DAY + 2 * HOUR:
        parser.error("the bucket must span --days (one record a second)")
    var_dir = tempfile.mkdtemp(prefix="thinger-bench-")
    os.environ["VAR_DIR"] = var_dir
    postgresql = use_database(BENCH_DATABASE)
    setup_django()
    try:
        return run(args)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
        if postgresql and args.drop:
            from django.db import connections

            connections.close_all()
            drop_database(BENCH_DATABASE)
            print(f"dropped the database {BENCH_DATABASE}")


def run(args):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from buckets.aggregates import bucket_aggregate

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    owner, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    bucket = generate_bucket(owner, args.records)
    # The last whole hours of the bucket: one interval each.
    max_ts = (T0 + args.records * 1000) // HOUR * HOUR - 1
    min_ts = max_ts + 1 - args.days * DAY
    in_range = args.days * DAY // 1000

    def aggregate():
        return bucket_aggregate(
            bucket=bucket, step_ms=HOUR, agg_type="mean", min_ts=min_ts, max_ts=max_ts, sort="asc"
        )

    agg_time, intervals = timed(aggregate, args.repeat)
    values = sum(len(item["val"]) for item in intervals)
    started = time.perf_counter()
    raw_rows = raw_read(bucket, min_ts, max_ts)
    raw_time = time.perf_counter() - started

    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(
        f"hourly means over {args.days} days ({in_range:,} records) of a "
        f"{args.records:,}-record bucket ({os.cpu_count()} CPUs, load average {load}):"
    )
    print(
        f"  aggregate  {agg_time * 1000:10,.0f} ms (median of {args.repeat})  "
        f"{len(intervals):,} intervals, {values:,} values back"
    )
    if connection.vendor == "postgresql":
        for rows, buffers, how, executed in plan_of_aggregate(bucket, min_ts, max_ts):
            print(
                f"             the database read {rows:,} records: {how}, "
                f"{buffers:,} buffers, {executed:,.0f} ms executing (EXPLAIN ANALYZE)"
            )
    print(f"  raw read   {raw_time * 1000:10,.0f} ms  {raw_rows:,} records back, in pages of 1,000")
    print(f"  raw read / aggregate: {raw_time / agg_time:.1f}x")
    if connection.vendor == "postgresql":
        reference, sql, params = hand_written(bucket, min_ts, max_ts)
        print("  reference: a hand-written query of the three fields' means, no type checks:")
        for workers in (None, 0):
            with connection.cursor() as cursor:
                # As PostgreSQL plans it (in parallel), then on one core, as the aggregate runs.
                cursor.execute(
                    "RESET max_parallel_workers_per_gather"
                    if workers is None
                    else "SET max_parallel_workers_per_gather = 0"
                )
            hand_time, _ = timed(reference, args.repeat)
            how = explain(sql, params)[2]
            print(
                f"             {hand_time * 1000:10,.0f} ms (median of {args.repeat}; {how}); "
                f"aggregate / reference: {agg_time / hand_time:.1f}x"
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

"""Benchmark of bucket reads: a small and a large bucket cost the same to read.

    .venv/bin/python bench/bucket_read.py [--small 10000] [--records 10000000] [--repeat 50]

Loads a bucket of ``--small`` records and one of ``--records`` records (one a second, JSON objects
such as devices send), then times, for each bucket, reading the latest 1,000 records and 1,000
records from the middle of the bucket, two ways:

- ``selector``: ``buckets.selectors.bucket_read``, the query and the decoding of the values;
- ``API view``: ``GET /v1/users/{user}/buckets/{bucket}/data`` through Django's test client, in
  process (URL routing, authentication, the view, JSON rendering; no network).

It prints the median of each and the ratio large/small. Target: the large bucket within 1.5x of
the small one. Loading ten million records takes a few minutes on PostgreSQL; the data is kept in
the bench database and reused by the next run with the same sizes (``--clean`` removes it).

It never touches the project's database: with ``DATABASE_URL`` (PostgreSQL) it uses the database
``thinger_http_bench`` on the same server, created if missing, and loads with COPY; without it, a
throwaway SQLite file. Its data belongs to the user ``bench-buckets``.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from benchlib import setup_django, use_database

BENCH_DATABASE = "thinger_http_bench"
BENCH_USER = "bench-buckets"
TARGET_RATIO = 1.5
PAGE = 1000
T0 = 1_600_000_000_000  # first record's ts; one a second after it


def use_bench_database():
    """Point the settings at the bench database and a throwaway VAR_DIR; returns the VAR_DIR."""
    var_dir = tempfile.mkdtemp(prefix="thinger-bench-")
    os.environ["VAR_DIR"] = var_dir
    use_database(BENCH_DATABASE)
    return var_dir


def record_value(i):
    return f'{{"temperature": {20 + (i % 100) / 10}, "humidity": {40 + i % 30}, "seq": {i}}}'


def load_bucket(owner, identifier, records):
    """The bucket ``identifier`` holding ``records`` records, loaded unless already there."""
    from django.db import connection

    from buckets.models import Bucket, BucketRecord
    from buckets.services import bucket_clear

    bucket, _ = Bucket.objects.get_or_create(owner=owner, identifier=identifier)
    if BucketRecord.objects.filter(bucket=bucket).count() == records:
        print(f"  {identifier}: {records:,} records already loaded")
        return bucket
    bucket_clear(bucket)
    started = time.perf_counter()
    table = connection.ops.quote_name(BucketRecord._meta.db_table)
    batch = 100_000
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg 3's, for COPY
            with raw.copy(f"COPY {table} (bucket_id, ts, value) FROM STDIN") as copy:
                for start in range(0, records, batch):
                    copy.write(
                        "".join(
                            f"{bucket.pk}\t{T0 + i * 1000}\t{record_value(i)}\n"
                            for i in range(start, min(start + batch, records))
                        )
                    )
                    if start and start % 1_000_000 == 0:
                        print(f"    {start:,} ...", flush=True)
            cursor.execute(f"VACUUM ANALYZE {table}")
    else:
        with connection.cursor() as cursor:
            for start in range(0, records, batch):
                cursor.executemany(
                    f"INSERT INTO {table} (bucket_id, ts, value) VALUES (%s, %s, %s)",  # noqa: S608 (table name only)
                    [
                        (bucket.pk, T0 + i * 1000, record_value(i))
                        for i in range(start, min(start + batch, records))
                    ],
                )
            cursor.execute("ANALYZE")
    print(f"  {identifier}: loaded {records:,} records in {time.perf_counter() - started:.1f} s")
    return bucket


def medians_ms(functions, repeat):
    """Median time of each function, called in turn (so that drift hits all of them alike)."""
    for function in functions:
        for _ in range(3):  # warm up: caches, connection, first-call imports
            function()
    times = [[] for _ in functions]
    for _ in range(repeat):
        for function, spent in zip(functions, times, strict=True):
            started = time.perf_counter()
            function()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) * 1000 for spent in times]


def reader(way, bucket, records, params, client):
    """A function doing one read of ``PAGE`` records."""
    from buckets.selectors import bucket_read

    if "middle" in params:
        params = {"sort": "asc", "min_ts": T0 + (records // 2) * 1000}
    if way == "selector":

        def read():
            assert len(bucket_read(bucket=bucket, items=PAGE, **params)) == PAGE

        return read
    url = f"/v1/users/{BENCH_USER}/buckets/{bucket.identifier}/data"

    def get():
        response = client.get(url, {"items": PAGE, **params})
        assert response.status_code == 200 and len(response.json()) == PAGE

    return get


READS = {"latest 1,000": {"sort": "desc"}, "1,000 from the middle": {"middle": True}}


def measure(small, large, client, repeat):
    """{(way, read): (small median ms, large median ms)}."""
    results = {}
    for way in ("selector", "API view"):
        for label, params in READS.items():
            results[(way, label)] = medians_ms(
                [
                    reader(way, bucket, records, params, client)
                    for bucket, records in (small, large)
                ],
                repeat,
            )
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=10_000_000, help="the large bucket's size")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--clean", action="store_true", help="remove the bench data afterwards")
    args = parser.parse_args()
    if not 2 * PAGE <= args.small <= args.records:
        parser.error(f"sizes must be at least {2 * PAGE} and --small at most --records")

    var_dir = use_bench_database()
    setup_django()
    try:
        return run(args)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    owner, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    try:
        small = load_bucket(owner, f"small-{args.small}", args.small)
        large = load_bucket(owner, f"large-{args.records}", args.records)
        client = Client()
        client.force_login(owner)
        results = measure((small, args.small), (large, args.records), client, args.repeat)
    finally:
        if args.clean:
            from buckets.services import bucket_delete

            for bucket in owner.buckets.all():
                bucket_delete(bucket=bucket)
            owner.delete()

    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(
        f"reading {PAGE:,} records, median of {args.repeat} runs "
        f"({os.cpu_count()} CPUs, load average {load}):"
    )
    print(f"  {'':<34} {f'{args.small:,} records':>16} {f'{args.records:,} records':>18}  ratio")
    targets = []
    for (way, label), (small_time, large_time) in results.items():
        ratio = large_time / small_time
        print(
            f"  {way + ', ' + label:<34} {small_time:13.2f} ms {large_time:15.2f} ms  {ratio:5.2f}x"
        )
        targets.append((ratio <= TARGET_RATIO, f"{way}, {label}: {ratio:.2f}x"))
    print(f"targets (large within {TARGET_RATIO}x of small):")
    for met, text in targets:
        print(f"  {'OK    ' if met else 'MISSED'} {text}")
    return 0 if all(met for met, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the migrations of issue 14 cost a bucket of ten million records, while devices write.

    DATABASE_URL=postgres://... .venv/bin/python bench/migrations.py [--records 10000000]

In its own database (``thinger_http_bench_migrations``, created anew), it migrates to the state
before issue 14 (buckets 0004, devices 0004, endpoints 0002), loads ``--records`` records into one
bucket, then runs the remaining migrations one app at a time while a writer inserts records into
another bucket without pause, each insert its own transaction, as callbacks do. It prints how long
each migration took, whether the records table was rewritten (its file node), and the writer's
inserts and latencies during the migrations: the longest insert is the longest a writer was held
up. Targets: the table is not rewritten, and no insert waits more than a second.
"""

import argparse
import os
import statistics
import sys
import threading
import time

from benchlib import report_targets, setup_django, use_database

BENCH_DATABASE = "thinger_http_bench_migrations"
BEFORE = [("buckets", "0004"), ("devices", "0004"), ("endpoints", "0002")]
STEPS = [("buckets", "0005"), ("buckets", "0006"), ("endpoints", "0003"), ("devices", "0005")]
TARGET_STALL_S = 1.0
T = 1_700_000_000_000


class Writer(threading.Thread):
    """Inserts records one transaction at a time until stopped; keeps each insert's latency."""

    def __init__(self, bucket_id):
        super().__init__(daemon=True)
        self.bucket_id = bucket_id
        self.latencies = []
        self.stop = threading.Event()

    def run(self):
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            ts = T
            while not self.stop.is_set():
                ts += 1
                started = time.monotonic()
                conn.execute(
                    "INSERT INTO buckets_bucketrecord (bucket_id, ts, value) VALUES (%s, %s, %s)",
                    [self.bucket_id, ts, '{"temperature": 21.5}'],
                )
                self.latencies.append(time.monotonic() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench/migrations.py runs on PostgreSQL: set DATABASE_URL=postgres://...")
    use_database(BENCH_DATABASE, fresh=True)
    setup_django(migrate=False)
    from django.core.management import call_command
    from django.db import connection

    for app in ("contenttypes", "auth", "admin", "sessions", "thinger_http"):
        call_command("migrate", app, verbosity=0)
    for app, name in BEFORE:
        call_command("migrate", app, name, verbosity=0)
    bucket, other = load(connection, args.records)
    node = file_node(connection)
    print(f"{args.records:,} records in bucket {bucket}; the writer inserts into bucket {other}")

    writer = Writer(other)
    writer.start()
    time.sleep(2)
    timings = []
    try:
        for app, name in STEPS:
            before = len(writer.latencies)
            started = time.monotonic()
            call_command("migrate", app, name, verbosity=0)
            elapsed = time.monotonic() - started
            during = writer.latencies[before:]
            timings.append((f"{app} {name}", elapsed, during))
            print(
                f"  {app} {name}: {elapsed:7.2f} s; meanwhile {len(during):,} inserts, longest "
                f"{1000 * max(during, default=0):.1f} ms, median "
                f"{1000 * statistics.median(during or [0]):.2f} ms"
            )
        call_command("migrate", verbosity=0)
    finally:
        writer.stop.set()
        writer.join()
    rewritten = file_node(connection) != node
    longest = max(max(during, default=0) for _, _, during in timings)
    total = sum(len(during) for _, _, during in timings)
    print(f"the writer's {total:,} inserts during the migrations: longest {1000 * longest:.1f} ms")
    kept = "rewritten" if rewritten else "the same file"
    return report_targets(
        [
            (not rewritten, f"the records table is not rewritten: {kept}"),
            (
                longest < TARGET_STALL_S,
                f"no insert waits {TARGET_STALL_S:g} s: longest {longest:.3f} s",
            ),
        ]
    )


def load(connection, records):
    """A user, the big bucket with ``records`` records a second apart, and the writer's bucket."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (username, password, is_superuser, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "VALUES ('bench', '', false, '', '', '', false, true, now()) RETURNING id"
        )
        (user,) = cursor.fetchone()
        ids = []
        for name in ("big", "live"):
            cursor.execute(
                "INSERT INTO buckets_bucket (owner_id, identifier, name, description, enabled, "
                "source, retention_unit, tags, created, modified, last_server_ts) VALUES "
                "(%s, %s, '', '', true, 'api', 'months', '[]', now(), now(), 0) RETURNING id",
                [user, name],
            )
            ids.append(cursor.fetchone()[0])
        started = time.monotonic()
        cursor.execute(
            "INSERT INTO buckets_bucketrecord (bucket_id, ts, value) "
            "SELECT %s, %s + i::bigint * 1000, "
            "jsonb_build_object('temperature', 20 + i %% 10, 'n', i) "
            "FROM generate_series(1, %s) AS i",
            [ids[0], T, records],
        )
        cursor.execute("VACUUM ANALYZE buckets_bucketrecord")
        print(f"loaded in {time.monotonic() - started:.0f} s")
    return ids


def file_node(connection):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_filenode('buckets_bucketrecord')")
        return cursor.fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())

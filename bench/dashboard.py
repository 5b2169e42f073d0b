"""Benchmark of a dashboard's load: 12 widgets over a bucket of a million records, under 1 s.

    .venv/bin/python bench/dashboard.py [--records 1000000] [--days 30] [--repeat 5]
                                        [--slow-ms 20] [--drop] [--raw]

Builds, in its own database, a user with two devices and their properties, a bucket of
``--records`` records spread evenly over the last ``--days`` days up to now (JSON objects with
temperature, humidity, lat and lng, written by the database itself with ``generate_series``;
kept for the next run while its newest record is under an hour old), and a dashboard of 12
widgets: five charts (the last hour raw, the last day, week and month as the chart rule draws
them, two with an aggregation of their own), a value, gauge and map on the bucket, a donut, LED
and switch on properties, and a device status.

Then it summarizes the bucket as beat's task does (``buckets.summaries``: per 5-minute slot),
calling the task until nothing is left, and prints how long that took; ``--raw`` drops the
summaries instead, so that the charts read every record, as before summaries existed.

It times, over real HTTP against the project under gunicorn (as ``bench/ingest.py`` starts it:
its configuration file, ``DEBUG`` off), logged in by a session cookie:

- ``console page``: ``GET /dashboards/<id>/``, every widget drawn server-side;
- ``API data``: ``GET /v1/users/<user>/dashboards/<id>/data``, every widget's data as JSON.

``cold`` is the first request of each to a freshly started server (its workers' first database
connection and templates; PostgreSQL's own caches are whatever the machine left them), ``warm``
the median and maximum of ``--repeat`` further runs. Then it prints every SQL query one load of
the data runs (Django's test client in process, ``CaptureQueriesContext``) with its time, and
EXPLAIN (ANALYZE, BUFFERS) of those over ``--slow-ms``. Target: each warm median and maximum and
each cold time under 1 s.

PostgreSQL only (``DATABASE_URL``): it uses the database ``thinger_http_bench_dashboard`` on that
server, created if missing (``--drop`` drops it at the end).
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request

from benchlib import drop_database, report_targets, setup_django, use_database

BENCH_DATABASE = "thinger_http_bench_dashboard"
BENCH_USER = "bench-dashboard"
BUCKET = "weather"
DASHBOARD = "overview"
TARGET_S = 1.0
DAY = 86_400_000
# A bucket whose newest record is older than this is written anew (its "last hour" would be empty).
FRESH_MS = 3_600_000


def widgets():
    """The dashboard's 12 widgets and their layout: every kind that reads data, mixed sources."""
    bucket = {"kind": "bucket", "bucket": BUCKET}
    sensor = {"kind": "property", "device": "sensor-1"}
    items = [
        (
            "hour",
            "chart",
            {**bucket, "fields": ["temperature", "humidity"], "range": {"last": "1h"}},
            {},
        ),
        (
            "day",
            "chart",
            {**bucket, "fields": ["temperature"], "range": {"last": "1d"}},
            {"unit": "°C"},
        ),
        (
            "week",
            "chart",
            {
                **bucket,
                "fields": ["temperature", "humidity"],
                "range": {"last": "1w"},
                "aggregation": {"interval": "1h", "type": "max"},
            },
            {},
        ),
        ("month", "chart", {**bucket, "fields": ["temperature"], "range": {"last": "30d"}}, {}),
        (
            "month_daily",
            "chart",
            {
                **bucket,
                "fields": ["humidity"],
                "range": {"last": "30d"},
                "aggregation": {"interval": "1d", "type": "mean"},
            },
            {"unit": "%"},
        ),
        ("temperature", "value", {**bucket, "field": "temperature"}, {"unit": "°C", "decimals": 1}),
        (
            "humidity",
            "gauge",
            {**bucket, "field": "humidity"},
            {"min": 0, "max": 100, "ranges": [{"from": 0, "to": 30, "color": "#dc2626"}]},
        ),
        ("track", "map", {**bucket, "range": {"last": "1d"}}, {}),
        ("battery", "donut", {**sensor, "property": "battery"}, {"min": 0, "max": 100}),
        (
            "alarm",
            "led",
            {**sensor, "property": "state", "field": "alarm"},
            {"color": "#16a34a", "blink": True},
        ),
        ("relay", "switch", {**sensor, "property": "relay"}, {}),
        ("status", "device_status", {"kind": "device", "device": "sensor-1"}, {}),
    ]
    out, layout = [], {}
    for i, (identifier, kind, source, options) in enumerate(items):
        widget = {
            "id": identifier,
            "type": kind,
            "title": identifier.replace("_", " "),
            "source": source,
        }
        if options:
            widget["options"] = options
        out.append(widget)
        wide = kind in ("chart", "map")
        layout[identifier] = {
            "x": 0 if wide else (i % 3) * 4,
            "y": i * 4,
            "w": 12 if wide else 4,
            "h": 4,
        }
    return out, layout


def generate_bucket(owner, records, days):
    """The bucket ``weather`` holding ``records`` records evenly spread over the last ``days``
    days, written by the database itself unless a fresh one of that size is there."""
    from django.db import connection
    from django.utils import timezone

    from buckets.models import Bucket, BucketRecord
    from buckets.services import bucket_clear
    from core.times import to_ms

    now = to_ms(timezone.now())
    bucket, _ = Bucket.objects.get_or_create(owner=owner, identifier=BUCKET)
    rows = BucketRecord.objects.filter(bucket=bucket)
    newest = rows.order_by("-ts").values_list("ts", flat=True).first()
    if newest is not None and now - newest < FRESH_MS and rows.count() == records:
        print(
            f"  {BUCKET}: {records:,} records already there, "
            f"the newest {(now - newest) // 1000} s old"
        )
        return bucket
    bucket_clear(bucket)
    step = days * DAY / records
    first = now - int(step * (records - 1))
    table = connection.ops.quote_name(BucketRecord._meta.db_table)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (bucket_id, ts, value) "  # noqa: S608 (table name only)
            "SELECT %s, %s + (i * %s)::bigint, jsonb_build_object("
            "'temperature', round((20 + 8 * sin(i / 20000.0) + (i %% 7) / 10.0)::numeric, 2), "
            "'humidity', 40 + i %% 30, "
            "'lat', round((40.41 + 0.01 * sin(i / 5000.0))::numeric, 6), "
            "'lng', round((-3.70 + 0.01 * cos(i / 5000.0))::numeric, 6)) "
            "FROM generate_series(0::bigint, %s - 1) i",
            [bucket.pk, first, step, records],
        )
        cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"  {BUCKET}: wrote {records:,} records in {time.perf_counter() - started:.1f} s")
    return bucket


def build(records, days):
    """The user (logged in: a session key), devices, properties, bucket and dashboard."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from dashboards.models import Dashboard
    from dashboards.services import dashboard_create, dashboard_update
    from devices.models import Device
    from devices.services import device_create, property_create

    owner, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    generate_bucket(owner, records, days)
    values = {"battery": 87, "state": {"alarm": False, "mode": "auto"}, "relay": True}
    for identifier in ("sensor-1", "sensor-2"):
        device = Device.objects.filter(owner=owner, identifier=identifier).first()
        if device is None:
            device = device_create(owner=owner, identifier=identifier)
            for prop, value in values.items():
                property_create(device=device, identifier=prop, value=value)
        Device.objects.filter(pk=device.pk).update(connected=True, last_call_at=timezone.now())
    items, layout = widgets()
    dashboard = Dashboard.objects.filter(owner=owner, identifier=DASHBOARD).first()
    if dashboard is None:
        dashboard_create(owner=owner, identifier=DASHBOARD, widgets=items, layout=layout)
    else:
        dashboard_update(dashboard=dashboard, widgets=items, layout=layout)
    client = Client()
    client.force_login(owner)
    return owner, client, client.cookies["sessionid"].value


def summarize(owner, *, raw):
    """Summarize the bucket as beat's task does (``buckets.summaries``), and print how long it
    took; ``raw``: drop its summaries instead, so that every chart reads the records."""
    from django.db import transaction
    from django.utils import timezone

    from buckets.models import Bucket, BucketSummary
    from buckets.summaries import GRACE_MS, bucket_summaries_update, summaries_drop
    from core.times import to_ms

    bucket = Bucket.objects.get(owner=owner, identifier=BUCKET)
    if raw:
        with transaction.atomic():
            summaries_drop(bucket_id=bucket.pk, min_ts=None, max_ts=None)
        print(f"  {BUCKET}: no summaries (--raw): the charts read the records")
        return
    started, runs, records = time.perf_counter(), 0, 0
    records = bucket_summaries_update()  # the first run makes the bucket's mark
    # The next runs as the task runs once that mark is GRACE_MS old.
    now_ms = to_ms(timezone.now()) + GRACE_MS
    while done := bucket_summaries_update(now_ms=now_ms):
        runs, records = runs + 1, records + done
    rows = BucketSummary.objects.filter(bucket=bucket).count()
    print(
        f"  {BUCKET}: summarized {records:,} records in {runs} runs of the task, "
        f"{time.perf_counter() - started:.1f} s ({rows:,} summary rows in all)"
    )


def http_get(url, session):
    """Seconds one GET took, its body read; fails unless it answers 200."""
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={session}"})  # noqa: S310 (local)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (local)
        body = response.read()
        spent = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{url}: {response.status}")
    return spent, body


def measure(urls, session, repeat, var_dir):
    """{page: (cold s, [warm s])} against a freshly started server."""
    from ingest import Server

    server = Server.project(var_dir)
    try:
        results = {}
        for label, path in urls.items():
            cold, body = http_get(server.url(path), session)
            if label == "API data":
                data = json.loads(body)
                unavailable = [w for w, d in data["widgets"].items() if d.get("unavailable")]
                if len(data["widgets"]) != 12 or unavailable:
                    raise SystemExit(f"the data is not of 12 widgets: {unavailable or data}")
            results[label] = (cold, [])
        for _ in range(repeat):  # interleaved, so that drift hits both alike
            for label, path in urls.items():
                results[label][1].append(http_get(server.url(path), session)[0])
        return results
    finally:
        server.stop()


def queries_of_a_load(client, url, slow_ms):
    """Print each query the data's load runs, and EXPLAIN (ANALYZE, BUFFERS) of the slow ones."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    total = sum(float(query["time"]) for query in captured.captured_queries)
    print(f"queries of one load of {url} ({len(captured)} queries, {total * 1000:.0f} ms in all):")
    slow = []
    for query in captured.captured_queries:
        ms = float(query["time"]) * 1000
        sql = " ".join(query["sql"].split())
        print(f"  {ms:8.1f} ms  {sql[:220]}{' ...' if len(sql) > 220 else ''}")
        if ms >= slow_ms and sql.upper().startswith(("SELECT", "WITH")):
            slow.append((ms, query["sql"]))
    for ms, sql in slow:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = [row[0] for row in cursor.fetchall()]
        print(
            f"EXPLAIN (ANALYZE, BUFFERS) of the {ms:.0f} ms query "
            f"{' '.join(sql.split())[:120]} ...:"
        )
        for line in plan:
            print(f"    {line}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slow-ms", type=float, default=20, help="EXPLAIN the queries this slow")
    parser.add_argument("--drop", action="store_true", help="drop the bench database at the end")
    parser.add_argument(
        "--raw", action="store_true", help="no summaries: the charts read the records (before)"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench/dashboard.py runs on PostgreSQL: set DATABASE_URL=postgres://...")
    if args.records < 1000 or args.days < 30:
        parser.error("--records must be at least 1000 and --days at least 30 (the month chart)")

    var_dir = tempfile.mkdtemp(prefix="thinger-bench-")
    os.environ["VAR_DIR"] = var_dir
    use_database(BENCH_DATABASE)
    setup_django()
    try:
        return run(args, var_dir)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
        if args.drop:
            from django.db import connections

            connections.close_all()
            drop_database(BENCH_DATABASE)


def run(args, var_dir):
    from django.db import connection
    from django.urls import reverse

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    owner, client, session = build(args.records, args.days)
    summarize(owner, raw=args.raw)
    urls = {
        "console page": reverse("console-dashboard", args=[DASHBOARD]),
        "API data": reverse("api-dashboard-data", args=[owner.username, DASHBOARD]),
    }
    results = measure(urls, session, args.repeat, var_dir)
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(
        f"a dashboard of 12 widgets over {args.records:,} records ({args.days} days), over HTTP "
        f"to gunicorn; {args.repeat} warm runs ({os.cpu_count()} CPUs, load average {load}):"
    )
    print(f"  {'':<14} {'cold':>9} {'warm median':>12} {'warm max':>9}")
    targets = []
    for label, (cold, warm) in results.items():
        median, worst = statistics.median(warm), max(warm)
        print(f"  {label:<14} {cold * 1000:6.0f} ms {median * 1000:9.0f} ms {worst * 1000:6.0f} ms")
        targets.append((cold < TARGET_S, f"{label}, cold: {cold * 1000:.0f} ms < 1 s"))
        targets.append((worst < TARGET_S, f"{label}, warm max: {worst * 1000:.0f} ms < 1 s"))
    queries_of_a_load(client, urls["API data"], args.slow_ms)
    return report_targets(targets)


if __name__ == "__main__":
    sys.exit(main())

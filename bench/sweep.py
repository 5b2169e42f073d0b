"""Benchmark of the connection-timeout sweep (``devices.sweep.device_sweep_timeouts``).

    .venv/bin/python bench/sweep.py [--devices 100000] [--due 1000] [--repeat 5]

Loads ``--devices`` connected devices of which ``--due`` are past their deadline, then times the
sweep with nothing due (the baseline), with a tenth of them due and with all of them due,
restoring the devices between runs. Targets: all due devices handled in under a second, and a
query count that does not grow with the number of due devices.

It never touches the project's database: with ``DATABASE_URL`` (PostgreSQL) it uses the database
``thinger_http_bench_sweep`` on the same server, created if missing; without it, a throwaway SQLite
file. Its data belongs to the user ``bench-sweep`` and is deleted afterwards.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta

from benchlib import report_targets, setup_django, use_database

# Not the shared thinger_http_bench: the sweep is global, it would disconnect other benches'
# devices (and count them) if they ran at the same time.
BENCH_DATABASE = "thinger_http_bench_sweep"
BENCH_USER = "bench-sweep"
TARGET_SECONDS = 1.0


def statements(captured):
    """Queries sent, not counting BEGIN and COMMIT (SQLite's sweep runs in a transaction)."""
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    return sum(not query["sql"].startswith(control) for query in captured)


def use_bench_database():
    """Point the settings at the bench database; returns a directory to remove afterwards."""
    if use_database(BENCH_DATABASE):
        return None
    var_dir = tempfile.mkdtemp(prefix="thinger-bench-")
    os.environ["VAR_DIR"] = var_dir
    return var_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not 10 <= args.due <= args.devices:
        parser.error("--due must be between 10 and --devices")

    throwaway = use_bench_database()
    setup_django()
    try:
        return Bench(args).run()
    finally:
        if throwaway:
            shutil.rmtree(throwaway, ignore_errors=True)


class Bench:
    def __init__(self, args):
        from django.utils import timezone

        self.devices, self.due, self.repeat = args.devices, args.due, args.repeat
        # Due devices are overdue by 1..due seconds: sweeping at ``self.at(n)`` finds n of them.
        self.now = timezone.now().replace(microsecond=0)

    def at(self, due):
        return self.now - timedelta(seconds=self.due - due + 0.5)

    def run(self):
        from django.db import connection

        self.remove_leftovers()
        try:
            print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
            self.load()
            baseline = self.measure(0)
            tenth = self.measure(self.due // 10)
            full = self.measure(self.due)
            uses_index = self.uses_partial_index()
        finally:
            self.remove_leftovers()
        return self.report(baseline, tenth, full, uses_index)

    def remove_leftovers(self):
        from django.contrib.auth import get_user_model

        from devices.models import Device
        from devices.services import device_delete_many

        device_delete_many(devices=Device.objects.filter(owner__username=BENCH_USER))
        get_user_model().objects.filter(username=BENCH_USER).delete()

    def load(self):
        from django.contrib.auth import get_user_model
        from django.db import connection

        from devices.models import Device

        started = time.perf_counter()
        owner = get_user_model().objects.create_user(BENCH_USER)
        self.owner = owner

        def device(i):
            if i < self.due:
                timeout_at = self.now - timedelta(seconds=self.due - i)
            else:
                timeout_at = self.now + timedelta(seconds=1 + i % 600)
            last_call = timeout_at - timedelta(minutes=10)
            return Device(
                owner=owner,
                identifier=f"bench{i}",
                connected=True,
                connected_at=last_call,
                last_call_at=last_call,
                timeout_at=timeout_at,
            )

        Device.objects.bulk_create((device(i) for i in range(self.devices)), batch_size=5000)
        table = Device._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"VACUUM ANALYZE {table}" if connection.vendor == "postgresql" else "ANALYZE"
            )
        print(
            f"loaded {self.devices:,} connected devices, {self.due:,} of them due, "
            f"in {time.perf_counter() - started:.1f} s"
        )

    def measure(self, due):
        """Median and best time of ``repeat`` sweeps finding ``due`` devices, and their queries."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from devices.sweep import device_sweep_timeouts

        times, queries = [], set()
        for _ in range(self.repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                flipped = device_sweep_timeouts(now=self.at(due))
                times.append(time.perf_counter() - started)
            if flipped != due:
                raise SystemExit(f"expected {due} devices to be disconnected, got {flipped}")
            queries.add(statements(captured))
            self.restore()
        return {
            "due": due,
            "median": statistics.median(times),
            "best": min(times),
            "queries": queries,
        }

    def restore(self):
        from devices.models import ConnectionEvent, Device

        Device.objects.filter(owner=self.owner, connected=False).update(connected=True)
        ConnectionEvent.objects.filter(device__owner=self.owner).delete()

    def uses_partial_index(self):
        """Whether the plan of the nothing-due sweep reads ``device_timeout_due`` (PostgreSQL)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from devices.sweep import device_sweep_timeouts

        if connection.vendor != "postgresql":
            return None
        with CaptureQueriesContext(connection) as captured:
            device_sweep_timeouts(now=self.at(0))
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {captured[0]['sql']}")
            return any("device_timeout_due" in row[0] for row in cursor.fetchall())

    def report(self, baseline, tenth, full, uses_index):
        def counts(result):
            return "/".join(str(n) for n in sorted(result["queries"]))

        def line(result, label):
            print(
                f"  {label:<24} median {result['median'] * 1000:8.2f} ms   "
                f"best {result['best'] * 1000:8.2f} ms   queries {counts(result)}"
            )

        print(f"sweep over {self.devices:,} devices, {self.repeat} runs each:")
        line(baseline, "nothing due (baseline)")
        line(tenth, f"{tenth['due']:,} due")
        line(full, f"{full['due']:,} due")

        targets = [
            (
                full["median"] < TARGET_SECONDS,
                f"{full['due']:,} due among {self.devices:,} in under {TARGET_SECONDS:g} s: "
                f"{full['median'] * 1000:.1f} ms (baseline {baseline['median'] * 1000:.2f} ms)",
            ),
            (
                tenth["queries"] == full["queries"] and len(full["queries"]) == 1,
                f"queries do not grow with due devices: {tenth['due']:,} due -> {counts(tenth)}, "
                f"{full['due']:,} due -> {counts(full)}",
            ),
            (baseline["queries"] == {1}, f"nothing due is one query: {counts(baseline)}"),
        ]
        if uses_index is not None:
            targets.append((uses_index, "the nothing-due query uses the index device_timeout_due"))
        return report_targets(targets)


if __name__ == "__main__":
    sys.exit(main())

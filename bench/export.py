"""Benchmark of bucket exports: throughput and memory of the export task.

    .venv/bin/python bench/export.py [--records 1000000] [--formats csv,json]

Loads a bucket of ``--records`` records (JSON objects of a few keys, as devices send), then runs
the export task (``buckets.services.bucket_export_run``, what the Celery worker runs) once per
format, each in a fresh subprocess, and prints rows per second, the file's size and the growth of
the subprocess's resident memory from just before the export to its peak (VmHWM in /proc).
Targets: at least 100,000 rows/s for CSV, and less than 100 MB of memory growth for every format.

It never touches the project's database: with ``DATABASE_URL`` (PostgreSQL) it uses the database
``thinger_http_bench`` on the same server, created if missing, and loads with COPY; without it, a
throwaway SQLite file. The records stay in the bench database for the next run (``--clean``
removes them); export files go to a throwaway directory. Its data belongs to ``bench-exports``.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import report_targets, setup_django  # noqa: E402
from bucket_read import load_bucket, use_bench_database  # noqa: E402

BENCH_USER = "bench-exports"
TARGET_CSV_ROWS_PER_SECOND = 100_000
TARGET_GROWTH_MB = 100


def memory_kib(field):
    """The process's resident memory now (VmRSS) or at its peak (VmHWM), in KiB.

    From /proc, not ``ru_maxrss``: a process started by fork and exec inherits its parent's peak
    there, and the parent has just loaded the data.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def server_pid(connection):
    """The PostgreSQL backend serving this connection, when it runs on this machine."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def cpu_seconds_of(pid):
    """User and system CPU time of a process, from /proc (0 when unknown)."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(export_id):
    """Run one export in this process; print its figures as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinger_http.settings")
    import django

    django.setup()  # the parent migrated; migrating here would raise the baseline's peak
    from django.db import connection

    from buckets.services import bucket_export_run, export_name, export_storage

    connection.ensure_connection()
    server = server_pid(connection)
    before = memory_kib("VmRSS")
    server_started = cpu_seconds_of(server)
    started, cpu_started = time.perf_counter(), time.process_time()
    export = bucket_export_run(export_id=export_id)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    server_seconds = cpu_seconds_of(server) - server_started if server else None
    after = memory_kib("VmHWM")
    print(
        json.dumps(
            {
                "state": export.state,
                "error": export.error,
                "rows": export.rows,
                "size": export_storage().size(export_name(export)),
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "server_seconds": server_seconds,
                "growth_mb": (after - before) / 1024,
                "peak_mb": after / 1024,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,json")
    parser.add_argument("--clean", action="store_true", help="remove the bench data afterwards")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    formats = [name.strip() for name in args.formats.split(",") if name.strip()]

    var_dir = use_bench_database()
    setup_django()
    try:
        return run(args, formats)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args, formats):
    from django.contrib.auth import get_user_model
    from django.db import connection

    from buckets.models import BucketExport
    from buckets.services import bucket_delete

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    owner, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    results = {}
    try:
        bucket = load_bucket(owner, f"export-{args.records}", args.records)
        for data_type in formats:
            export = BucketExport.objects.create(
                bucket=bucket, file=f"bench-{time.time_ns()}.{data_type}", data_type=data_type
            )
            connection.close()  # the child's own connection does the work
            done = subprocess.run(  # noqa: S603 (this script, with a number)
                [sys.executable, __file__, "--child", str(export.pk)],
                env=os.environ,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise SystemExit(f"export {data_type} failed:\n{done.stderr}")
            results[data_type] = json.loads(done.stdout.strip().splitlines()[-1])
            BucketExport.objects.filter(pk=export.pk).delete()
    finally:
        if args.clean:
            for bucket in owner.buckets.all():
                bucket_delete(bucket=bucket)
            owner.delete()

    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(
        f"exporting {args.records:,} records (iso timestamps), one subprocess each "
        f"({os.cpu_count()} CPUs, load average {load}). CPU seconds are the export process's "
        "and its database backend's: on a busy machine, rows per CPU second is what an idle one "
        "would reach (the two work in turn):"
    )
    targets = []
    for data_type, figures in results.items():
        if figures["state"] != "done":
            raise SystemExit(f"export {data_type} ended {figures['state']}: {figures['error']}")
        rate = figures["rows"] / figures["seconds"]
        busy = figures["cpu_seconds"] + (figures["server_seconds"] or 0)
        server = (
            f" + database {figures['server_seconds']:5.2f} s = {figures['rows'] / busy:9,.0f} "
            "rows per CPU second"
            if figures["server_seconds"] is not None
            else ""
        )
        print(
            f"  {data_type:<5} {figures['rows']:,} rows in {figures['seconds']:6.2f} s = "
            f"{rate:9,.0f} rows/s (CPU: export {figures['cpu_seconds']:5.2f} s{server})\n"
            f"        file {figures['size'] / 2**20:5.1f} MiB   "
            f"memory growth {figures['growth_mb']:6.1f} MB (peak RSS {figures['peak_mb']:.0f} MB)"
        )
        if data_type == "csv":
            targets.append(
                (
                    rate >= TARGET_CSV_ROWS_PER_SECOND,
                    f"csv at least {TARGET_CSV_ROWS_PER_SECOND:,} rows/s: {rate:,.0f}",
                )
            )
        targets.append(
            (
                figures["growth_mb"] < TARGET_GROWTH_MB,
                f"{data_type} memory growth under {TARGET_GROWTH_MB} MB: "
                f"{figures['growth_mb']:.1f} MB",
            )
        )
    return report_targets(targets)


if __name__ == "__main__":
    sys.exit(main())

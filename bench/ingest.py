"""Benchmark of the device callback (ingest) under gunicorn, against a bare Django view.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... \\
        .venv/bin/python bench/ingest.py [--duration 10] [--connections 8] [--rounds 5] \\
            [--profile SECONDS]

Starts the app as the README runs it in production (``gunicorn thinger_http.wsgi --config
thinger_http/gunicorn.conf.py``, its workers and threads, ``DEBUG`` off) on PostgreSQL, with the
bare view of ``thinger_http.bench_views`` mounted (``BENCH_BARE_VIEW=1``). It loads a device whose
callback has ``write_bucket``, ``set_property`` and ``send_property`` set, then drives, in turn,
the bare view and the callback with ``wrk`` (Debian package ``wrk``) for ``--duration`` seconds
each, ``--rounds`` times, with the same request (a small JSON object, the device's token in
``Authorization``) through the same server and middleware. The rate limit stays on, with a rate no
bench reaches.

It prints requests per second, p50 and p99 latency of each run, with the CPU time per request
of gunicorn, PostgreSQL, Redis and wrk (from /proc) and the WAL PostgreSQL wrote per request;
then their medians, the best round of each case (other load on the machine only slows a round
down; five rounds by default, since this machine's speed drifts by a quarter between runs) and
the ratio callback/bare of the best rounds. ``--profile SECONDS`` then samples the workers with
py-spy (``pip install py-spy``) during one more callback run and prints the functions their CPU
time goes to. Targets, on the best rounds: the callback reaches at least 0.25 times the bare view's
requests per second, with p99 latency under 20 ms. Every answer must be a 200 and every answered
record stored.

It never touches the project's database: it uses ``thinger_http_bench_ingest`` on the server of
``DATABASE_URL``, created and migrated if missing. Its data belongs to the user ``bench-ingest``
and is deleted afterwards; 10,000 devices of ``bench-ingest-others`` stay for the next run, so
that PostgreSQL plans as it does with real data. Before each run it vacuums the rows every call
rewrites, as autovacuum would (a test server may have it off).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchlib import BASE_DIR, report_targets, setup_django, use_database

BENCH_DATABASE = "thinger_http_bench_ingest"
BENCH_USER = "bench-ingest"
BENCH_DEVICE = "sensor"
# Other devices, kept between runs: with a handful of rows PostgreSQL plans sequential scans,
# which each call's dead row versions make slower during a run; a deployment has many devices.
OTHERS_USER = "bench-ingest-others"
OTHER_DEVICES = 10_000
GUNICORN_CONFIG = BASE_DIR / "thinger_http" / "gunicorn.conf.py"
BODY = '{"temperature":21.5,"humidity":40,"battery":3.71}'
# Far above anything this machine can serve: the limiter does its work, never refuses.
BENCH_RATE = "100000000/m"
TARGET_RATIO = 0.25
TARGET_P99_MS = 20.0
FIGURES = ("rps", "p50", "p99")

# wrk's script: every request the same POST; at the end one line of JSON with the figures.
LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {authorization}

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"non_2xx": %d, "socket_errors": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
"""


def lua_string(text):
    return json.dumps(text)  # a JSON string of ASCII text is a valid Lua string literal


def use_bench_database():
    """Point ``DATABASE_URL`` at the bench database, created if missing."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench/ingest.py runs on PostgreSQL: set DATABASE_URL=postgres://...")
    use_database(BENCH_DATABASE)


def remove_leftovers():
    from django.contrib.auth import get_user_model

    from buckets.models import Bucket
    from buckets.services import bucket_delete

    for bucket in Bucket.objects.filter(owner__username=BENCH_USER):
        bucket_delete(bucket=bucket)
    get_user_model().objects.filter(username=BENCH_USER).delete()


def load_other_devices():
    """``OTHER_DEVICES`` devices of another user, each with callback settings and a property."""
    from django.contrib.auth import get_user_model

    from devices.models import CallbackSettings, Device, Property

    owner, _ = get_user_model().objects.get_or_create(username=OTHERS_USER)
    if Device.objects.filter(owner=owner).count() == OTHER_DEVICES:
        return
    Device.objects.filter(owner=owner).delete()
    devices = Device.objects.bulk_create(
        (Device(owner=owner, identifier=f"device{i}") for i in range(OTHER_DEVICES)),
        batch_size=2000,
    )
    CallbackSettings.objects.bulk_create(
        (CallbackSettings(device=device) for device in devices), batch_size=2000
    )
    Property.objects.bulk_create(
        (Property(device=device, identifier="state", value={"on": True}) for device in devices),
        batch_size=2000,
    )


def load_device():
    """The bench device with write_bucket, set_property and send_property; returns its token."""
    from django.contrib.auth import get_user_model

    from buckets.services import bucket_create
    from devices.services import callback_settings_update, device_create, property_create
    from devices.tokens import callback_token_for

    owner = get_user_model().objects.create_user(BENCH_USER)
    device = device_create(owner=owner, identifier=BENCH_DEVICE, name="Bench sensor")
    bucket_create(owner=owner, identifier="readings")
    property_create(device=device, identifier="last", value=None)
    property_create(device=device, identifier="config", value={"interval": 60, "led": "on"})
    callback_settings_update(
        device=device,
        actions={"write_bucket": "readings", "set_property": "last", "send_property": "config"},
    )
    return callback_token_for(device)


def vacuum(*, analyze=False):
    """Clear the dead row versions that every call leaves on the device's rows, as autovacuum
    does in production (it may be off on a test server): each run starts from the same state."""
    from django.db import connection

    from buckets.models import BucketRecord
    from devices.models import Device, DeviceDailyStats, Property

    tables = ", ".join(
        connection.ops.quote_name(model._meta.db_table)
        for model in (Device, DeviceDailyStats, Property, BucketRecord)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {'ANALYZE ' if analyze else ''}{tables}")


def stored_counts():
    """(records, counted calls) of the bench user, read in one snapshot: calls still in flight
    when a run ends may commit between two separate reads."""
    from django.db import connection, transaction

    from buckets.models import BucketRecord
    from devices.models import DeviceDailyStats

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        records = BucketRecord.objects.filter(bucket__owner__username=BENCH_USER).count()
        calls = sum(
            DeviceDailyStats.objects.filter(device__owner__username=BENCH_USER).values_list(
                "calls", flat=True
            )
        )
    return records, calls


def wal_position():
    """Bytes of WAL PostgreSQL has written so far (its current insert position)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        return int(cursor.fetchone()[0])


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with the production configuration file, on a free local port."""

    def __init__(self, var_dir):
        self.port = free_port()
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            "VAR_DIR": var_dir,
            "DEBUG": "0",
            "CALLBACK_RATE": BENCH_RATE,
            "BENCH_BARE_VIEW": "1",
        }
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "thinger_http.wsgi", "--config", str(GUNICORN_CONFIG)]
        self.log = open(Path(var_dir) / "gunicorn.log", "wb")  # noqa: SIM115 (closed in stop)
        # The access log goes to stdout, as in production; its lines are of no interest here.
        self.process = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
            command, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=self.log
        )
        self.wait_ready()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}: see its log")
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=1):  # noqa: S310 (local)
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /healthz within 30 s")

    @staticmethod
    def config():
        """Worker class, workers and threads as the configuration file sets them here."""
        namespace = {"__file__": str(GUNICORN_CONFIG)}
        exec(compile(GUNICORN_CONFIG.read_text(), str(GUNICORN_CONFIG), "exec"), namespace)  # noqa: S102 (our own file)
        return namespace["worker_class"], namespace["workers"], namespace["threads"]

    def log_tail(self, lines=30):
        self.log.flush()
        text = Path(self.log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


CPU_GROUPS = ("gunicorn", "postgres", "redis-server", "wrk")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes():
    """(pid, program name, fields of /proc/PID/stat after the name) of every running process."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue  # gone meanwhile
        yield int(stat.parent.name), head.split("(", 1)[1], tail.split()


def cpu_seconds():
    """CPU time (user + system) so far of every process, summed by program name; wrk's is that
    of this script's finished children (wrk is the only child it waits for)."""
    totals = dict.fromkeys(CPU_GROUPS, 0.0)
    for _, name, fields in processes():
        group = next((group for group in CPU_GROUPS[:-1] if name.startswith(group)), None)
        if group is not None:
            totals[group] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    totals["wrk"] = children.ru_utime + children.ru_stime
    return totals


def run_wrk(url, script, *, duration, connections, threads):
    """One wrk run; returns its figures (requests per second, p50 and p99 in ms, errors, and
    CPU milliseconds per request of each program)."""
    before = cpu_seconds()
    done = subprocess.run(  # noqa: S603 (wrk, fixed arguments)
        [
            shutil.which("wrk"),
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={duration}s",
            f"--script={script}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    after = cpu_seconds()
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    requests = max(raw["requests"], 1)
    return {
        "cpu": {group: 1000 * (after[group] - before[group]) / requests for group in CPU_GROUPS},
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50": raw["p50_us"] / 1000,
        "p99": raw["p99_us"] / 1000,
        "errors": raw["non_2xx"] + raw["socket_errors"],
    }


def check_response(server, path, token):
    request = urllib.request.Request(  # noqa: S310 (local)
        server.url(path),
        data=BODY.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (local)
        return response.status, response.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--rounds", type=int, default=5, help="bare and callback runs, in turn")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of each before measuring")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="SECONDS",
        help="after the rounds, sample the workers with py-spy during one more callback run",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    use_bench_database()
    var_dir = tempfile.mkdtemp(prefix="thinger-bench-ingest-")
    os.environ["VAR_DIR"] = var_dir
    try:
        setup_django()
        remove_leftovers()
        load_other_devices()
        try:
            token = load_device()
            vacuum(analyze=True)
            return run(args, var_dir, token)
        finally:
            remove_leftovers()
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args, var_dir, token):
    from django.conf import settings
    from django.db import connection

    script = Path(var_dir) / "ingest.lua"
    script.write_text(
        LUA.format(body=lua_string(BODY), authorization=lua_string(f"Bearer {token}"))
    )
    callback = f"/v3/users/{BENCH_USER}/devices/{BENCH_DEVICE}/callback/data"
    bare = "/bench/bare"

    server = Server(var_dir)
    try:
        worker_class, workers, threads = server.config()
        cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(
            f"server: gunicorn --config {GUNICORN_CONFIG.relative_to(BASE_DIR)} "
            f"({worker_class}, {workers} workers x {threads} threads); "
            f"database {connection.vendor} {connection.settings_dict['NAME']}; cache {cache}"
        )
        status, body = check_response(server, callback, token)
        if status != 200 or json.loads(body) != {"interval": 60, "led": "on"}:
            raise SystemExit(f"the callback answered {status} {body!r}, not the property")
        print(
            f"load: wrk --threads {args.threads} --connections {args.connections} "
            f"--duration {args.duration}s, {args.rounds} rounds, POST {len(BODY)} bytes of JSON; "
            f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}"
        )
        wrk = {"connections": args.connections, "threads": args.threads}
        for path in (bare, callback):
            run_wrk(server.url(path), script, duration=args.warmup, **wrk)
        records_before, calls_before = stored_counts()
        results = {"bare": [], "callback": []}
        for round_ in range(1, args.rounds + 1):
            for name, path in (("bare", bare), ("callback", callback)):
                vacuum()
                wal = wal_position()
                result = run_wrk(server.url(path), script, duration=args.duration, **wrk)
                wal = (wal_position() - wal) / max(result["requests"], 1)
                results[name].append(result)
                print(
                    f"  round {round_} {name:<8} {result['rps']:8.0f} req/s   "
                    f"p50 {result['p50']:6.2f} ms   p99 {result['p99']:6.2f} ms   "
                    f"errors {result['errors']}"
                )
                print(
                    "      CPU ms per request: "
                    + ", ".join(f"{group} {ms:.2f}" for group, ms in result["cpu"].items())
                    + f"; WAL {wal:,.0f} bytes per request"
                )
        if any(result["errors"] for runs in results.values() for result in runs):
            print("gunicorn's log, last lines:")
            print(server.log_tail())
        if args.profile:
            profile(server, server.url(callback), script, args, wrk, var_dir)
    finally:
        server.stop()
    records, calls = stored_counts()
    answered = sum(result["requests"] for result in results["callback"])
    return report(
        args,
        results,
        stored=records - records_before,
        counted=calls - calls_before,
        answered=answered,
    )


def worker_pids(parent):
    """gunicorn's workers: the processes whose parent is the arbiter."""
    return sorted(pid for pid, _, fields in processes() if int(fields[1]) == parent)


def profile(server, url, script, args, wrk, var_dir):
    """py-spy on every worker during one callback run; prints where the workers' CPU goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is missing: pip install py-spy")
    outputs = []
    samplers = []
    for pid in worker_pids(server.process.pid):
        output = Path(var_dir) / f"profile-{pid}.txt"
        outputs.append(output)
        samplers.append(
            subprocess.Popen(  # noqa: S603 (py-spy, fixed arguments)
                [py_spy, "record", "--pid", str(pid), "--duration", str(args.profile)]
                + ["--rate", "250", "--gil", "--nonblocking", "--format", "raw"]
                + ["--output", str(output)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(0.5)
    result = run_wrk(url, script, duration=args.profile, **wrk)
    for sampler in samplers:
        sampler.wait()
    own, inclusive, total = {}, {}, 0
    for output in outputs:
        for line in output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [_frame_name(frame) for frame in stack.split(";")]
            count = int(count)
            total += count
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
    print(
        f"profile: py-spy on {len(outputs)} workers, {args.profile} s callback run at "
        f"{result['rps']:.0f} req/s, {total:,} samples on CPU (250 per second and thread)"
    )
    for title, table in (("inclusive", inclusive), ("own", own)):
        print(f"  top functions, {title} share of the workers' samples:")
        for frame, count in sorted(table.items(), key=lambda item: -item[1])[:25]:
            print(f"    {100 * count / total:5.1f}%  {frame}")


def _frame_name(frame):
    """``function (path/to/module.py:line)`` -> ``function (module.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.removeprefix(str(BASE_DIR) + "/")
    return f"{name} ({path})"


def report(args, results, *, stored, counted, answered):
    """Medians, and the best round of each case: other load on the machine only slows a round
    down, so the best one is the closest to what the machine can do. Targets use the best."""

    def line(label, rps, p50, p99):
        print(f"  {label:<16} {rps:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")

    best = {name: max(runs, key=lambda result: result["rps"]) for name, runs in results.items()}
    print(f"{args.rounds} rounds of {args.duration} s, {args.connections} connections:")
    for name, runs in results.items():
        medians = [statistics.median(result[key] for result in runs) for key in FIGURES]
        line(f"{name} median", *medians)
        line(f"{name} best", *(best[name][key] for key in FIGURES))
    ratio = best["callback"]["rps"] / best["bare"]["rps"]
    median_ratio = statistics.median(
        callback["rps"] / bare["rps"]
        for bare, callback in zip(results["bare"], results["callback"], strict=True)
    )
    p99 = best["callback"]["p99"]
    errors = sum(result["errors"] for runs in results.values() for result in runs)
    print(f"  ratio callback/bare: {ratio:.3f} (best rounds; median of rounds {median_ratio:.3f})")
    print(f"  stored {stored:,} records and counted {counted:,} calls for {answered:,} answers")
    print(f"load average after: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    targets = [
        (ratio >= TARGET_RATIO, f"callback at least {TARGET_RATIO} x bare req/s: {ratio:.3f}"),
        (p99 < TARGET_P99_MS, f"callback p99 under {TARGET_P99_MS:g} ms: {p99:.2f} ms"),
        (errors == 0, f"every answer a 200, no socket error: {errors} errors"),
        (
            stored >= answered and counted >= answered,
            f"every answered call stored and counted: {stored:,} records, {counted:,} calls "
            f">= {answered:,}",
        ),
    ]
    return report_targets(targets)


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the device callback (ingest) against the framework's ceiling, in one run.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... \\
        .venv/bin/python bench/ingest.py [--duration 10] [--connections 8] [--rounds 3] \\
            [--devices 1000] [--profile SECONDS]

The baseline is ``bench/bare_app.py``, a one-file Django app outside the project (only
``CommonMiddleware``, one view that reads the body and answers an empty 200) under gunicorn with
two sync workers. ``bench/floor_app.py`` is the callback's floor, served like the project: the
same database call with no framework, the most a callback can reach here. The project is served
as shipped: ``gunicorn thinger_http.wsgi --config
thinger_http/gunicorn.conf.py``, ``DEBUG`` off, on PostgreSQL, with the callback rate limit off
(``CALLBACK_RATE=off``).

Two loads, each driven by ``wrk`` (Debian package ``wrk``) for ``--duration`` seconds, in turn with
the baseline, ``--rounds`` times:

- **fleet**: ``--devices`` devices that all write one shared bucket, set a property and answer
  with another; each request is the next device's (its own path and token);
- **hot**: one device with the same settings, flat out.

The baseline gets the same requests (same paths, headers and bodies). Every body carries a number
of its own, so that the records stored can be counted exactly: every 200 must be one stored record
(a record stored at most once; the few calls still in flight when wrk stops may be stored without
their answer being counted).

It prints requests per second, p50 and p99 latency and the non-2xx answers of each run, with the
CPU time per request of gunicorn, PostgreSQL, Redis and wrk (from /proc) and the WAL PostgreSQL
wrote per request; then the best round of each case and the ratios against the baseline's best
(and the floor's).
``--profile SECONDS`` then samples the workers with py-spy during one more fleet run and prints the
functions their CPU time goes to. Targets: fleet and hot each at least 0.25 times the baseline's
requests per second, p99 under 20 ms, no non-2xx answer, records stored = 200s answered.

It never touches the project's database: it uses ``thinger_http_bench_ingest`` on the server of
``DATABASE_URL``, created anew and migrated at every start, so that no run inherits the bloat of
the one before. Besides the bench's own devices it holds 10,000 devices of another user, so that
PostgreSQL plans as it does with real data. Before each run it vacuums the rows every call
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
HOT_DEVICE = "hot"
# Other devices, kept between runs: with a handful of rows PostgreSQL plans sequential scans,
# which each call's dead row versions make slower during a run; a deployment has many devices.
OTHERS_USER = "bench-ingest-others"
OTHER_DEVICES = 10_000
GUNICORN_CONFIG = BASE_DIR / "thinger_http" / "gunicorn.conf.py"
BARE_APP = BASE_DIR / "bench" / "bare_app.py"
FLOOR_APP = BASE_DIR / "bench" / "floor_app.py"
BODY = '{"temperature":21.5,"humidity":40,"battery":3.71,"n":%d}'
REPLY = {"interval": 60, "led": "on"}
TARGET_RATIO = 0.25
TARGET_P99_MS = 20.0
FIGURES = ("rps", "p50", "p99")
CASES = ("bare", "floor", "fleet", "hot")

# wrk's script: each request the next (path, token) of the table, with a body numbered by thread
# and request; at the end one line of JSON with the figures.
LUA = """
local targets = {targets}
local thread_number = 0
local threads = {{}}

function setup(thread)
  thread:set("number", thread_number)
  thread_number = thread_number + 1
end

function init(args)
  position = number * 7919 % #targets
  sent = tonumber(args[1]) * 1000000000000 + number * 1000000000
end

function request()
  position = position % #targets + 1
  sent = sent + 1
  local target = targets[position]
  return wrk.format("POST", target[1], {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = target[2],
  }}, string.format({body}, sent))
end

function done(summary, latency, requests)
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


def write_script(path, targets):
    """A wrk script posting to ``targets``, a list of (path, token)."""
    table = ",\n".join(
        f"  {{{lua_string(target)}, {lua_string('Bearer ' + token)}}}" for target, token in targets
    )
    path.write_text(LUA.format(targets="{\n" + table + "\n}", body=lua_string(BODY)))
    return path


def use_bench_database():
    """Point ``DATABASE_URL`` at the bench database, created if missing."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench/ingest.py runs on PostgreSQL: set DATABASE_URL=postgres://...")
    use_database(BENCH_DATABASE, fresh=True)


def remove_leftovers():
    from django.contrib.auth import get_user_model

    from buckets.models import Bucket
    from buckets.services import bucket_delete
    from devices.models import Device
    from devices.services import device_delete_many

    for bucket in Bucket.objects.filter(owner__username=BENCH_USER):
        bucket_delete(bucket=bucket)
    device_delete_many(devices=Device.objects.filter(owner__username=BENCH_USER))
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


def load_devices(count):
    """The fleet's ``count`` devices and the hot device, all writing the bucket ``readings``,
    setting their property ``last`` and answering with ``config``; returns {identifier: token}."""
    from django.contrib.auth import get_user_model

    from buckets.services import bucket_create
    from devices.services import callback_settings_update, device_create, property_create
    from devices.tokens import callback_token_for

    owner = get_user_model().objects.create_user(BENCH_USER)
    bucket_create(owner=owner, identifier="readings")
    tokens = {}
    for identifier in [HOT_DEVICE] + [f"fleet{i}" for i in range(count)]:
        device = device_create(owner=owner, identifier=identifier)
        property_create(device=device, identifier="last", value=None)
        property_create(device=device, identifier="config", value=REPLY)
        callback_settings_update(
            device=device,
            actions={"write_bucket": "readings", "set_property": "last", "send_property": "config"},
        )
        tokens[identifier] = callback_token_for(device)
    return tokens


def vacuum(*, analyze=False):
    """Clear the dead row versions that every call leaves on the devices' rows, as autovacuum
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
    """(records, distinct numbered bodies among them, counted calls) of the bench user, read in
    one snapshot: calls still in flight when a run ends may commit between separate reads."""
    from django.db import connection, transaction

    from buckets.models import BucketRecord
    from devices.models import DeviceDailyStats

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        records = BucketRecord.objects.filter(bucket__owner__username=BENCH_USER)
        total = records.count()
        distinct = records.values("value__n").distinct().count()
        calls = sum(
            DeviceDailyStats.objects.filter(device__owner__username=BENCH_USER).values_list(
                "calls", flat=True
            )
        )
    return total, distinct, calls


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
    """A gunicorn on a free local port, started with ``arguments(port)`` and ``env``."""

    def __init__(self, name, arguments, var_dir, *, env=None, ready="/healthz"):
        self.name = name
        self.port = free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), *arguments(self.port)]
        self.log = open(Path(var_dir) / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop)
        environment = {**os.environ, **(env or {})}
        if env is None:  # the baseline: exactly its own arguments, whatever the environment says
            environment.pop("GUNICORN_CMD_ARGS", None)
        # The access log goes to stdout, as in production; its lines are of no interest here.
        self.process = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
            command,
            cwd=BASE_DIR,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.wait_ready(ready)

    @classmethod
    def project(cls, var_dir):
        """The project as the README runs it in production, the rate limit off."""
        env = {"HOST": "127.0.0.1", "VAR_DIR": var_dir, "DEBUG": "0", "CALLBACK_RATE": "off"}

        def arguments(port):
            env["HTTP_PORT"] = str(port)
            return ["thinger_http.wsgi", "--config", str(GUNICORN_CONFIG)]

        return cls("project", arguments, var_dir, env=env)

    @classmethod
    def floor(cls, var_dir):
        """The callback's floor (its database call, no framework) as the project is served."""
        env = {"HOST": "127.0.0.1", "VAR_DIR": var_dir}

        def arguments(port):
            env["HTTP_PORT"] = str(port)
            return [
                "--chdir",
                str(FLOOR_APP.parent),
                FLOOR_APP.stem,
                "--config",
                str(GUNICORN_CONFIG),
            ]

        return cls("floor", arguments, var_dir, env=env, ready=None)

    @classmethod
    def bare(cls, var_dir):
        """The one-file app under two sync workers."""

        def arguments(port):
            return ["--chdir", str(BARE_APP.parent), BARE_APP.stem, "--worker-class", "sync"] + [
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
            ]

        return cls("bare", arguments, var_dir, ready=None)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, path):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.process.returncode}: see its log")
            try:
                if path is None:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                with urllib.request.urlopen(self.url(path), timeout=1):  # noqa: S310 (local)
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer within 30 s")

    def config(self):
        """Worker class, workers and threads as the project's configuration file sets them."""
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


_runs = iter(range(1, 1_000_000))


def run_wrk(url, script, *, duration, connections, threads):
    """One wrk run, its bodies numbered apart from every other run's; returns its figures
    (requests per second, p50 and p99 in ms, non-2xx answers, socket errors, and CPU
    milliseconds per request of each program)."""
    before = cpu_seconds()
    done = subprocess.run(  # noqa: S603 (wrk, fixed arguments)
        [
            shutil.which("wrk"),
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={duration}s",
            f"--script={script}",
            url,
            "--",
            str(next(_runs)),
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
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["socket_errors"],
    }


def check_response(server, path, token):
    request = urllib.request.Request(  # noqa: S310 (local)
        server.url(path),
        data=(BODY % 0).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (local)
        return response.status, response.read()


def callback_path(identifier):
    return f"/v3/users/{BENCH_USER}/devices/{identifier}/callback/data"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each case, in turn")
    parser.add_argument("--devices", type=int, default=1000, help="devices of the fleet")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of each before measuring")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="SECONDS",
        help="after the rounds, sample the workers with py-spy during one more fleet run",
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
            tokens = load_devices(args.devices)
            vacuum(analyze=True)
            return run(args, Path(var_dir), tokens)
        finally:
            remove_leftovers()
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args, var_dir, tokens):
    from django.db import connection

    hot_token = tokens.pop(HOT_DEVICE)
    scripts = {
        "fleet": write_script(
            var_dir / "fleet.lua",
            [(callback_path(identifier), token) for identifier, token in tokens.items()],
        ),
        "hot": write_script(var_dir / "hot.lua", [(callback_path(HOT_DEVICE), hot_token)]),
    }
    # The baseline answers the fleet's requests: the same paths, headers and bodies.
    plan = [("bare", "fleet"), ("floor", "fleet"), ("fleet", "fleet"), ("hot", "hot")]
    wrk = {"connections": args.connections, "threads": args.threads}
    bare = Server.bare(str(var_dir))
    floor = Server.floor(str(var_dir))
    project = Server.project(str(var_dir))
    servers = {"bare": bare, "floor": floor, "fleet": project, "hot": project}
    results = {case: [] for case in CASES}
    try:
        worker_class, workers, threads = project.config()
        print(
            f"baseline: {BARE_APP.relative_to(BASE_DIR)} under gunicorn, 2 sync workers\n"
            f"project: gunicorn --config {GUNICORN_CONFIG.relative_to(BASE_DIR)} "
            f"({worker_class}, {workers} workers x {threads} threads), CALLBACK_RATE=off; "
            f"database {connection.vendor} {connection.settings_dict['NAME']}"
        )
        status, body = check_response(project, callback_path(HOT_DEVICE), hot_token)
        if status != 200 or json.loads(body) != REPLY:
            raise SystemExit(f"the callback answered {status} {body!r}, not the property")
        print(
            f"load: wrk --threads {args.threads} --connections {args.connections} "
            f"--duration {args.duration}s, {args.rounds} rounds; fleet of {len(tokens):,} "
            f"devices sharing one bucket, each request the next device's; hot: one device; "
            f"POST {len(BODY % 0)} bytes of JSON; "
            f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}"
        )
        for case, script in plan:
            run_wrk(servers[case].url("/"), scripts[script], duration=args.warmup, **wrk)
        records_before, _, calls_before = stored_counts()
        for round_ in range(1, args.rounds + 1):
            for case, script in plan:
                vacuum()
                wal = wal_position()
                url = servers[case].url("/")
                result = run_wrk(url, scripts[script], duration=args.duration, **wrk)
                result["wal"] = (wal_position() - wal) / max(result["requests"], 1)
                results[case].append(result)
                print_round(round_, case, result)
        if any(r["non_2xx"] or r["socket_errors"] for runs in results.values() for r in runs):
            print("the project's gunicorn log, last lines:")
            print(project.log_tail())
        if args.profile:
            profile(project, scripts["fleet"], args, wrk, var_dir)
    finally:
        project.stop()
        floor.stop()
        bare.stop()
    time.sleep(1)  # calls wrk left in flight finish
    records, distinct, calls = stored_counts()
    answered = sum(
        r["requests"] - r["non_2xx"] for case in ("floor", "fleet", "hot") for r in results[case]
    )
    return report(
        args,
        results,
        stored=records - records_before,
        distinct_new=distinct,
        records=records,
        counted=calls - calls_before,
        answered=answered,
    )


def print_round(round_, case, result):
    print(
        f"  round {round_} {case:<6} {result['rps']:8.0f} req/s   "
        f"p50 {result['p50']:6.2f} ms   p99 {result['p99']:6.2f} ms   "
        f"non-2xx {result['non_2xx']}   socket errors {result['socket_errors']}"
    )
    print(
        "      CPU ms per request: "
        + ", ".join(f"{group} {ms:.2f}" for group, ms in result["cpu"].items())
        + f"; WAL {result['wal']:,.0f} bytes per request"
    )


def worker_pids(parent):
    """gunicorn's workers: the processes whose parent is the arbiter."""
    return sorted(pid for pid, _, fields in processes() if int(fields[1]) == parent)


def profile(server, script, args, wrk, var_dir):
    """py-spy on every worker during one fleet run; prints where the workers' CPU goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is missing: pip install py-spy")
    outputs = []
    samplers = []
    for pid in worker_pids(server.process.pid):
        output = var_dir / f"profile-{pid}.txt"
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
    result = run_wrk(server.url("/"), script, duration=args.profile, **wrk)
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
        f"profile: py-spy on {len(outputs)} workers, {args.profile} s fleet run at "
        f"{result['rps']:.0f} req/s, {total:,} samples holding the GIL (250 per second and thread)"
    )
    for title, table in (("inclusive", inclusive), ("own", own)):
        print(f"  top functions, {title} share of the workers' samples:")
        for frame, count in sorted(table.items(), key=lambda item: -item[1])[:30]:
            print(f"    {100 * count / max(total, 1):5.1f}%  {frame}")


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


def report(args, results, *, stored, distinct_new, records, counted, answered):
    """The best round of each case (other load on the machine only slows a round down, so the
    best is the closest to what the machine can do) and the ratios to the baseline's best."""

    def line(label, rps, p50, p99):
        print(f"  {label:<14} {rps:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")

    best = {case: max(runs, key=lambda result: result["rps"]) for case, runs in results.items()}
    print(f"{args.rounds} rounds of {args.duration} s, {args.connections} connections:")
    for case, runs in results.items():
        line(f"{case} median", *[statistics.median(r[key] for r in runs) for key in FIGURES])
        line(f"{case} best", *(best[case][key] for key in FIGURES))
    for case, base in (("floor", "bare"), ("fleet", "bare"), ("hot", "bare"), ("fleet", "floor")):
        median = statistics.median(
            r["rps"] / b["rps"] for b, r in zip(results[base], results[case], strict=True)
        )
        print(
            f"  ratio {case}/{base}: {best[case]['rps'] / best[base]['rps']:.3f} "
            f"(best rounds; median of rounds {median:.3f})"
        )
    ratios = {case: best[case]["rps"] / best["bare"]["rps"] for case in ("fleet", "hot")}
    non_2xx = sum(r["non_2xx"] for runs in results.values() for r in runs)
    socket_errors = sum(r["socket_errors"] for runs in results.values() for r in runs)
    # Each run that stores (floor, fleet, hot) may leave a call per connection in flight at its end.
    in_flight = stored - answered
    print(
        f"  {answered:,} 200s answered; {stored:,} records stored ({in_flight:+,} calls in "
        f"flight when wrk stopped), {counted:,} calls counted; non-2xx {non_2xx}, socket errors "
        f"{socket_errors}"
    )
    print(f"load average after: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    targets = [
        *(
            (ratio >= TARGET_RATIO, f"{case} at least {TARGET_RATIO} x bare req/s: {ratio:.3f}")
            for case, ratio in ratios.items()
        ),
        *(
            (
                best[case]["p99"] < TARGET_P99_MS,
                f"{case} p99 under {TARGET_P99_MS:g} ms: {best[case]['p99']:.2f} ms",
            )
            for case in ("fleet", "hot")
        ),
        (non_2xx == 0, f"no non-2xx answer: {non_2xx}"),
        (socket_errors == 0, f"no socket error: {socket_errors}"),
        (
            0 <= in_flight <= args.connections * 3 * args.rounds and distinct_new == records,
            f"every 200 one stored record: {stored:,} stored for {answered:,} answered, each "
            f"body stored once ({distinct_new:,} distinct of {records:,})",
        ),
    ]
    return report_targets(targets)


if __name__ == "__main__":
    sys.exit(main())

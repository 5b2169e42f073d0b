"""The README's start command, ``make run``, as a new user runs it: from a ``var/`` that does not
exist yet, in the mode the environment sets (embedded, or PostgreSQL and Redis), the web process,
the worker and beat all start and stay up.

In services mode it gets a database of its own on the same PostgreSQL server and a Redis database
of its own (so that what its beat enqueues never reaches the test suite's worker).
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
START_SECONDS = 120
STAY_UP_SECONDS = 8
RUN_DATABASE = "thinger_http_test_make_run"
RUN_REDIS_DB = 14


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database(url):
    """A new empty database beside the one of ``url``; returns its URL."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        name = sql.Identifier(RUN_DATABASE)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    return urlunsplit(parts._replace(path=f"/{RUN_DATABASE}"))


def run_environment(tmp_path, port):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_SETTINGS")) and key != "COV_CORE_SOURCE"
    }
    env.update(
        VAR_DIR=str(tmp_path / "var"),
        HTTP_PORT=str(port),
        HOST="127.0.0.1",
        ADMIN_PASSWORD="make-run-test-password",  # noqa: S106 (a throwaway instance)
        WEB_WORKERS="2",
        CELERY_CONCURRENCY="1",
    )
    if env.get("DATABASE_URL"):
        env["DATABASE_URL"] = fresh_database(env["DATABASE_URL"])
    broker = env.get("CELERY_BROKER_URL", "")
    if broker.startswith("redis"):
        env["CELERY_BROKER_URL"] = urlunsplit(urlsplit(broker)._replace(path=f"/{RUN_REDIS_DB}"))
        env.pop("CACHE_URL", None)
    return env


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # noqa: S310 (local)
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def test_make_run_starts_web_worker_and_beat_from_a_fresh_var_directory(tmp_path):
    port = free_port()
    env = run_environment(tmp_path, port)
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 (the README's command)
            ["make", "--no-print-directory", "run"],  # noqa: S607
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not healthy(port):
            assert process.poll() is None, (
                f"make run exited {process.returncode}:\n{tail(log_path)}"
            )
            assert time.monotonic() < deadline, f"no answer on /healthz:\n{tail(log_path)}"
            time.sleep(0.5)
        # The worker and beat start beside the web process; none of the three may exit.
        time.sleep(STAY_UP_SECONDS)
        assert process.poll() is None, f"make run exited {process.returncode}:\n{tail(log_path)}"
        assert healthy(port)
        output = log_path.read_text(errors="replace")
        assert "beat: Starting" in output, tail(log_path)
        assert "ready." in output, tail(log_path)  # the worker's "celery@host ready."
        assert (tmp_path / "var" / "celery").is_dir()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if env.get("DATABASE_URL", "").startswith("postgres"):
            import psycopg

            parts = urlsplit(env["DATABASE_URL"])
            maintenance = urlunsplit(parts._replace(path="/postgres"))
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{RUN_DATABASE}" WITH (FORCE)')


def tail(path, lines=40):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])

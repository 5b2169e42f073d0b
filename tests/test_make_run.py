"""The README's start command, ``make run``, as a new user runs it: from a ``var/`` that does not
exist yet, in the mode the environment sets (embedded, or PostgreSQL and Redis), the web process,
the worker and beat all start and stay up, and the web server keeps answering while slow
clients hold hundreds of sockets.

In services mode it gets a database of its own on the same PostgreSQL server and a Redis database
of its own (so that what its beat enqueues never reaches the test suite's worker).
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

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
        EVENTS_PORT=str(free_port()),
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


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """``make run`` from a fresh ``var/``, until every test of the module is done."""
    tmp_path = tmp_path_factory.mktemp("make-run")
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
        yield Run(process=process, port=port, env=env, log_path=log_path, var=tmp_path / "var")
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


@dataclass
class Run:
    process: subprocess.Popen
    port: int
    env: dict
    log_path: Path
    var: Path


def test_make_run_starts_web_worker_and_beat_from_a_fresh_var_directory(running):
    # The worker and beat start beside the web process; none of the three may exit.
    time.sleep(STAY_UP_SECONDS)
    log = running.log_path
    assert running.process.poll() is None, f"make run exited:\n{tail(log)}"
    assert healthy(running.port)
    output = log.read_text(errors="replace")
    assert "beat: Starting" in output, tail(log)
    assert "ready." in output, tail(log)  # the worker's "celery@host ready."
    assert (running.var / "celery").is_dir()


SLOW_SOCKETS = 256
SLOW_SECONDS = 6


def test_slow_clients_do_not_stall_the_server(running):
    """256 sockets from one address that never finish their request (half stop in the headers,
    half in a device's body, with its valid token): for six seconds, /healthz and a device's
    callback keep answering, each within a second."""
    created = subprocess.run(  # noqa: S603 (the README's command)
        ["make", "--no-print-directory", "manage", "ARGS=create_http_device alice slow1"],  # noqa: S607
        cwd=BASE_DIR,
        env=running.env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = re.search(r"Bearer ([\w.-]+)", created.stdout)[1]
    path = "/v3/users/alice/devices/slow1/callback/data"
    stalled = []
    try:
        for n in range(SLOW_SOCKETS):
            sock = socket.create_connection(("127.0.0.1", running.port), timeout=5)
            if n % 2:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor".encode())
            else:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                    'Content-Length: 1000\r\n\r\n{"temperature": '.encode()
                )
            stalled.append(sock)
        slowest = 0.0
        deadline = time.monotonic() + SLOW_SECONDS
        while time.monotonic() < deadline:
            started = time.monotonic()
            health = requests.get(f"http://127.0.0.1:{running.port}/healthz", timeout=1)
            call = requests.post(
                f"http://127.0.0.1:{running.port}{path}",
                json={"temperature": 21.5},
                headers={"Authorization": f"Bearer {token}"},
                timeout=1,
            )
            slowest = max(slowest, time.monotonic() - started)
            assert (health.status_code, call.status_code) == (200, 200)
            time.sleep(0.2)
        assert slowest < 1.0
    finally:
        for sock in stalled:
            sock.close()
    assert running.process.poll() is None, tail(running.log_path)


def test_live_events_reach_a_websocket_opened_at_the_web_address(running):
    """As Thinger.io's clients open it: at the API's address, with the user's token in the
    query; the web process hands it to the events process. A device's first call arrives as its
    connection, then as the call."""
    from websockets.sync.client import connect

    base = f"http://127.0.0.1:{running.port}"
    login = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "password", "username": "admin", "password": "make-run-test-password"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    created = subprocess.run(  # noqa: S603 (the README's command)
        ["make", "--no-print-directory", "manage", "ARGS=create_http_device admin live1"],  # noqa: S607
        cwd=BASE_DIR,
        env=running.env,
        capture_output=True,
        text=True,
        check=True,
    )
    device_token = re.search(r"Bearer ([\w.-]+)", created.stdout)[1]
    url = f"ws://127.0.0.1:{running.port}/v1/users/admin/events"
    with connect(f"{url}?authorization={login.json()['access_token']}", open_timeout=10) as ws:
        ws.send(json.dumps({"event": "device_.*", "device": "live1"}))
        ws.ping().wait(5)
        answer = requests.post(
            f"{base}/v3/users/admin/devices/live1/callback/data",
            json={"temperature": 20},
            headers={"Authorization": f"Bearer {device_token}"},
            timeout=10,
        )
        assert answer.status_code == 200
        events = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
    assert [(e["event"], e.get("state", e.get("status"))) for e in events] == [
        ("device_state_change", "connected"),
        ("device_callback_call", 200),
    ], tail(running.log_path)
    # A WebSocket refused at the web address is refused as the API refuses.
    refused = requests.get(
        f"{base}/v1/users/admin/events?authorization=nope",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
        timeout=10,
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "invalid or missing token"
    # The events server logs each socket, never the token in its URL.
    time.sleep(0.5)
    output = running.log_path.read_text(errors="replace")
    assert "/v1/users/admin/events" in output
    assert login.json()["access_token"] not in output
    assert "authorization=nope" not in output


def test_a_dashboard_pages_socket_is_handed_over_too(running):
    """The console's dashboard page opens its live socket at the site's address with its
    session: the web process hands it to the events process as well, and a device's call there
    names the dashboard's widgets it changed."""
    from websockets.sync.client import connect

    base = f"http://127.0.0.1:{running.port}"
    console = requests.Session()
    console.get(f"{base}/login/", timeout=10)
    logged_in = console.post(
        f"{base}/login/",
        data={
            "username": "admin",
            "password": "make-run-test-password",
            "csrfmiddlewaretoken": console.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )
    assert "sessionid" in console.cookies, logged_in.text[:500]
    token = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "password", "username": "admin", "password": "make-run-test-password"},
        timeout=10,
    ).json()["access_token"]
    created = subprocess.run(  # noqa: S603 (the README's command)
        ["make", "--no-print-directory", "manage", "ARGS=create_http_device admin live2"],  # noqa: S607
        cwd=BASE_DIR,
        env=running.env,
        capture_output=True,
        text=True,
        check=True,
    )
    device_token = re.search(r"Bearer ([\w.-]+)", created.stdout)[1]
    widget = {"id": "box", "type": "device_status", "source": {"kind": "device", "device": "live2"}}
    made = requests.post(
        f"{base}/v1/users/admin/dashboards",
        json={"dashboard": "live", "widgets": [widget]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert made.status_code in (200, 201), made.text
    url = f"ws://127.0.0.1:{running.port}/v1/users/admin/dashboards/live/live"
    headers = {"Cookie": f"sessionid={console.cookies['sessionid']}", "Origin": base}
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        answer = requests.post(
            f"{base}/v3/users/admin/devices/live2/callback/data",
            json={"temperature": 20},
            headers={"Authorization": f"Bearer {device_token}"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert json.loads(ws.recv(timeout=5)) == {"widgets": ["box"]}, tail(running.log_path)


def tail(path, lines=40):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])

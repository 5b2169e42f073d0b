"""Test harness for endpoint delivery: a scriptable HTTP receiver on 127.0.0.1, a real Celery
worker process against the test database, and a fake broker for unit tests.

Exported through ``tests/conftest.py``.
"""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from requests.structures import CaseInsensitiveDict

BASE_DIR = Path(__file__).resolve().parent.parent
WORKER_READY_SECONDS = 30


# --- The receiver ---------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: CaseInsensitiveDict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts)


class Receiver:
    """An HTTP server in a thread that records every request and answers as scripted.

    ``receiver.script(503, 503, 200)`` answers the next requests in that order, then the default
    (200 unless ``default=`` says otherwise); items may be status codes or ``Reply`` objects.
    """

    def __init__(self):
        self.requests = []
        self._script = []
        self._default = Reply()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies, default=None):
        with self._changed:
            self._script = [r if isinstance(r, Reply) else Reply(status=r) for r in replies]
            if default is not None:
                self._default = default if isinstance(default, Reply) else Reply(status=default)

    def wait_for(self, count, timeout=10.0):
        """Wait until at least ``count`` requests arrived; returns them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
            return list(self.requests)

    def _next_reply(self, received):
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
            return self._script.pop(0) if self._script else self._default

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = Received(
                    method=self.command,
                    path=self.path,
                    headers=CaseInsensitiveDict(self.headers.items()),
                    body=body,
                )
                reply = receiver._next_reply(received)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format, *args):
                pass

        return Handler

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    """A scriptable HTTP receiver on 127.0.0.1 (endpoints need ENDPOINTS_ALLOW_PRIVATE_NETWORKS
    to reach it)."""
    server = Receiver().start()
    yield server
    server.stop()


# --- A fake broker for unit tests -------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch):
    """Record delivery tasks instead of publishing them: ``[(call_id, options), ...]``.

    Unit tests must not publish: in services mode the broker is a Redis that other test runs and
    workers may share.
    """
    from endpoints.tasks import endpoint_call_deliver

    sent = []
    monkeypatch.setattr(
        endpoint_call_deliver, "apply_async", lambda args, **options: sent.append((*args, options))
    )
    return sent


# --- A real worker ----------------------------------------------------------------------------


@dataclass
class Worker:
    queue: str
    process: subprocess.Popen
    log: Path

    def output(self):
        return self.log.read_text(errors="replace")


def _database_url(db):
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(db['NAME'], safe='')}"


def _purge(queue):
    from thinger_http.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)


def _forget(queue):
    """Remove every trace of a test queue from the shared Redis: its lists, its bindings, and
    the unacknowledged messages of a killed worker (kombu would restore them an hour later)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = [queue, *(f"{queue}\x06\x16{p}" for p in range(1, 10))]
    client.delete(*keys, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, raw in client.hscan_iter("unacked"):
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@contextmanager
def run_worker(log_dir, **environment):
    """Start a real ``celery worker`` process (threads, 2) on the test database and the broker;
    stop it on exit (if it is still running). ``environment`` adds to or overrides its variables.

    It consumes a queue of its own, so that other workers sharing the broker never take its tasks
    and it never takes theirs.
    """
    from django.conf import settings
    from django.db import connection

    queue = f"endpoints-test-{os.getpid()}-{secrets.token_hex(4)}"
    _purge(queue)
    log = Path(log_dir) / f"{queue}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "thinger_http.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "VAR_DIR": str(settings.VAR_DIR),
        "ENDPOINTS_ALLOW_PRIVATE_NETWORKS": "1",
        "ENDPOINTS_RETRY_BASE_SECONDS": "0",
        "ENDPOINTS_CONNECT_TIMEOUT_SECONDS": "2",
        "ENDPOINTS_READ_TIMEOUT_SECONDS": "3",
        "LOG_LEVEL": "INFO",
        **environment,
    }
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "thinger_http", "worker", "-l", "info", "--pool=threads", "-c", "2"),
        *("-Q", queue, "-n", f"{queue}@%h"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    worker = Worker(queue=queue, process=process, log=log)
    try:
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while " ready." not in worker.output():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{worker.output()}")
            time.sleep(0.1)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _forget(queue)


def _needs_services():
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("a real worker needs PostgreSQL and Redis")


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, tmp_path_factory):
    """A real worker shared by a module's tests; use it through ``endpoint_worker``."""
    _needs_services()
    with run_worker(tmp_path_factory.mktemp("worker")) as worker:
        yield worker


@pytest.fixture
def endpoint_worker(celery_worker_process, settings):
    """The real worker, with this process's endpoint deliveries routed to it."""
    settings.ENDPOINTS_TASK_QUEUE = celery_worker_process.queue
    return celery_worker_process


@contextmanager
def broker_unreachable():
    """Point this process's Celery at a closed port: every enqueue fails, as with Redis down."""
    from thinger_http.celery import app

    saved = app.conf.broker_write_url
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_write_url = saved
        app._pool = None
        app.amqp._producer_pool = None

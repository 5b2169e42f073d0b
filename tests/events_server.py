"""Test harness for the live events: the events process's ASGI application served by a real
uvicorn in a thread of the test process (on the test database), and a real WebSocket client.

In embedded mode events reach it through a datagram socket of the test's own; with Redis, through
the Redis pub/sub channel layer under a prefix of the test's own, so that other runs sharing the
Redis never see them. Exported through ``tests/conftest.py``.
"""

import json
import secrets
import socket
import threading
import time
from contextlib import contextmanager

import pytest
from websockets.sync.client import connect

from core import event_bus

READY_SECONDS = 10


class EventsServer:
    def __init__(self):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            "thinger_http.asgi:application",
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + READY_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the events server did not start")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, username, token=None):
        query = f"?authorization={token}" if token else ""
        return f"ws://127.0.0.1:{self.port}/v1/users/{username}/events{query}"

    @contextmanager
    def subscribe(self, username, token, subscription=None, **connect_options):
        """A connected WebSocket with ``subscription`` sent (a dict, or text as is)."""
        with connect(self.url(username, token), open_timeout=5, **connect_options) as socket_:
            if subscription is not None:
                send_subscription(socket_, subscription)
            yield socket_


def send_subscription(socket_, subscription):
    text = subscription if isinstance(subscription, str) else json.dumps(subscription)
    socket_.send(text)
    # The server has read the subscription before the test's first event: a round trip through
    # it (a ping) proves it.
    socket_.ping().wait(5)


def next_event(ws, timeout=5.0):
    return json.loads(ws.recv(timeout=timeout))


def no_event(ws, wait=0.5):
    """True when nothing arrives within ``wait`` seconds."""
    try:
        ws.recv(timeout=wait)
    except TimeoutError:
        return True
    return False


@pytest.fixture
def events_server(settings, tmp_path, transactional_db):
    """A running events process for this test: ``events_server.subscribe(user, token, sub)``."""
    from channels.layers import channel_layers
    from django.db import connection

    if settings.EVENTS_REDIS_URL:
        layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
        prefix = f"test-events-{secrets.token_hex(4)}"
        layers["default"]["CONFIG"]["prefix"] = prefix
        settings.CHANNEL_LAYERS = layers
        environment = {"EVENTS_CHANNEL_PREFIX": prefix}
    else:
        settings.EVENTS_SOCKET = tmp_path / "events.sock"
        environment = {"EVENTS_SOCKET": str(settings.EVENTS_SOCKET)}
    channel_layers.backends = {}
    event_bus._bus.cache_clear()
    # The server's thread closes its database connections after each use, so that none
    # outlives the test (the test database is dropped at the end).
    db = connection.settings_dict
    saved_age, db["CONN_MAX_AGE"] = db["CONN_MAX_AGE"], 0
    server = EventsServer()
    # What another process (a worker) needs in its environment to reach this server.
    server.environment = environment
    server.start()
    yield server
    server.stop()
    db["CONN_MAX_AGE"] = saved_age
    channel_layers.backends = {}
    event_bus._bus.cache_clear()

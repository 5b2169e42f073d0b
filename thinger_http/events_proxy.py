"""The web process's way to the live events' WebSocket: a client opens it at the same address as
the API (Thinger.io's clients derive one from the other), and the web process, which serves
HTTP only, hands the connection to the events process (``EVENTS_HOST``:``EVENTS_PORT``, the
``events`` line of the Procfile) and relays bytes both ways until either side closes.

Under gevent workers only (the default): each relayed socket is a greenlet of the web process.
With other workers, or when the events process is down, the upgrade is answered 503 and a JSON
error. A reverse proxy in front (nginx) can route ``/v1/users/*/events`` to the events process
itself instead, and ``/v1/users/*/dashboards/*/live`` and ``/shared/dashboards/*/live`` as well.
"""

import contextlib
import json
import re
import socket

from django.conf import settings

from core.identifiers import IDENTIFIER_PATTERN

# The live events' socket, and a dashboard page's (dashboards.live), its own or its link's.
_PATH = re.compile(
    rf"/v1/users/{IDENTIFIER_PATTERN}/(events|dashboards/{IDENTIFIER_PATTERN}/live)"
    r"|/shared/dashboards/[^/]+/live"
)
CONNECT_TIMEOUT_SECONDS = 3
CHUNK = 65536


def is_events_upgrade(environ):
    return (
        environ.get("HTTP_UPGRADE", "").lower() == "websocket"
        and environ["REQUEST_METHOD"] == "GET"
        and _PATH.fullmatch(environ.get("PATH_INFO", "")) is not None
    )


def _error(start_response, message):
    body = json.dumps({"error": {"message": message}}).encode()
    start_response(
        "503 Service Unavailable",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _handshake(environ):
    """The client's request as the events process is to get it, with its address."""
    target = environ.get("RAW_URI") or environ["PATH_INFO"]
    lines = [f"GET {target} HTTP/1.1"]
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP"):
            lines.append(f"{key[5:].replace('_', '-').title()}: {value}")
    lines.append(f"X-Forwarded-For: {environ.get('REMOTE_ADDR', '')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def relay(environ, start_response):
    """Hand a WebSocket upgrade to the events process (see the module's docstring)."""
    client = environ.get("gunicorn.socket")
    try:
        import gevent
        from gevent import monkey
        from gunicorn.workers.base_async import ALREADY_HANDLED
    except ImportError:
        return _error(start_response, "live events are served by the events process")
    if client is None or not monkey.is_module_patched("socket"):
        return _error(start_response, "live events are served by the events process")
    try:
        upstream = socket.create_connection(
            (settings.EVENTS_HOST, settings.EVENTS_PORT), timeout=CONNECT_TIMEOUT_SECONDS
        )
    except OSError:
        return _error(start_response, "the events server is not running, retry later")
    upstream.settimeout(None)
    client.settimeout(None)
    upstream.sendall(_handshake(environ))

    def pipe(source, target):
        try:
            while data := source.recv(CHUNK):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    gevent.joinall([gevent.spawn(pipe, client, upstream), gevent.spawn(pipe, upstream, client)])
    upstream.close()
    # The client's socket is shut down: gunicorn's next read of it ends the connection.
    return ALREADY_HANDLED

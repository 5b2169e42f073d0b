"""The ASGI application of the events process (``events`` in the Procfile, uvicorn): the live
events' WebSocket (``thinger_http.events_socket``) and a dashboard page's (``dashboards.live``),
and the whole of the site over HTTP as well,
so that this one server can stand in for the web process (the web process, gunicorn, is the
faster one for devices' calls, and forwards WebSocket upgrades here).

Embedded (no Redis), the process listens on ``EVENTS_SOCKET`` for the events that the web and
worker processes raise (``core.event_bus``) while it runs, from its lifespan's startup.
"""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinger_http.settings")

django_application = get_asgi_application()

from channels.layers import get_channel_layer  # noqa: E402 (Django is set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from core.event_bus import listen_datagrams  # noqa: E402
from core.identifiers import IDENTIFIER_PATTERN  # noqa: E402
from dashboards.live import DashboardLiveConsumer  # noqa: E402
from thinger_http.events_socket import EventsConsumer  # noqa: E402
from thinger_http.log import mask_handlers  # noqa: E402

# uvicorn has set up its logging by now: clients put their token in the URL, which uvicorn's
# lines about each WebSocket name (thinger_http.log).
for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
    mask_handlers(logging.getLogger(name))

EVENTS_PATH = rf"^v1/users/(?P<user>{IDENTIFIER_PATTERN})/events$"
DASHBOARD_LIVE_PATH = (
    rf"^v1/users/(?P<user>{IDENTIFIER_PATTERN})"
    rf"/dashboards/(?P<dashboard>{IDENTIFIER_PATTERN})/live$"
)
SHARED_LIVE_PATH = r"^shared/dashboards/(?P<token>[^/]+)/live$"

router = ProtocolTypeRouter(
    {
        "http": django_application,
        # The session (console pages) as well as tokens (thinger_http.events_socket).
        "websocket": SessionMiddlewareStack(
            URLRouter(
                [
                    re_path(EVENTS_PATH, EventsConsumer.as_asgi()),
                    re_path(DASHBOARD_LIVE_PATH, DashboardLiveConsumer.as_asgi()),
                    re_path(SHARED_LIVE_PATH, DashboardLiveConsumer.as_asgi()),
                ]
            )
        ),
    }
)


async def lifespan(receive, send):
    listener = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                if not settings.EVENTS_REDIS_URL:
                    listener = await listen_datagrams(get_channel_layer(), settings.EVENTS_SOCKET)
            except OSError as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if listener is not None:
                listener.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    return await router(scope, receive, send)

"""A dashboard's live socket, ``/v1/users/{user}/dashboards/{dashboard}/live``: the page of a
dashboard opens one, and is told which of its widgets changed, ``{"widgets": [ids]}``, at most
once per ``COALESCE_SECONDS``; it then fetches those tiles (``dashboards.console``).

Served by the events process beside the live events' socket (``thinger_http.asgi``), it follows
the owner's live events (``core.events``) and turns each into the widgets it affects: a device's
state change or accepted call -> the widgets of the device's status and fields, and its control
widgets (whether the device has picked up their value); a property update -> the widgets of that
property; records stored in a bucket -> that bucket's widgets. The console's session opens it,
from a page of this site (``core.sockets``), with ``?device=`` for the device a selector
picked; a dashboard's read-only link opens ``/shared/dashboards/{token}/live`` with no login.
Who may open it is decided by ``dashboards.selectors.dashboard_for_live``.
"""

import asyncio
import json
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from core.events import group
from core.sockets import console_session_user, refuse_handshake
from dashboards.selectors import dashboard_for_live
from dashboards.widgets import KINDS

# The page is told of changes at most once in this many seconds: a burst of calls is one fetch.
COALESCE_SECONDS = 0.3
# A first change waits this long for the rest of its kind (a call's events come in two messages).
GATHER_SECONDS = 0.05
CLOSE_TOO_SLOW = 1008


class LiveTargets:
    """The widgets each live event affects, indexed once from a dashboard's (valid) widgets."""

    def __init__(self, widgets):
        self.devices, self.properties, self.buckets = {}, {}, {}
        for widget in widgets:
            source, ident = widget["source"], widget["id"]
            if source["kind"] == "bucket":
                self.buckets.setdefault(source["bucket"], []).append(ident)
                continue
            if source["kind"] == "property":
                key = (source["device"], source["property"])
                self.properties.setdefault(key, []).append(ident)
            if source["kind"] == "device" or KINDS[widget["type"]].control:
                self.devices.setdefault(source["device"], []).append(ident)

    def affected(self, event):
        """The ids of the widgets ``event`` changes (none for an event of no interest)."""
        name = event.get("event")
        if name == "device_state_change" or (
            name == "device_callback_call" and event.get("status") == 200
        ):
            return self.devices.get(event.get("device"), [])
        if name == "device_property_update":
            return self.properties.get((event.get("device"), event.get("property")), [])
        if name == "bucket_records_write":
            return self.buckets.get(event.get("bucket"), [])
        return []


class DashboardLiveConsumer(AsyncWebsocketConsumer):
    open_sockets = 0  # in this process

    async def connect(self):
        self.counted = False
        self.pending = set()
        self.flush = None
        self.last_sent = 0.0
        route = self.scope["url_route"]["kwargs"]
        if DashboardLiveConsumer.open_sockets >= settings.EVENTS_MAX_CONNECTIONS:
            return await refuse_handshake(self, 503, "too many open sockets, retry later")
        if "token" in route:
            found = await database_sync_to_async(dashboard_for_live)(token=route["token"])
        else:
            user = await console_session_user(self.scope)
            if user is None:
                return await refuse_handshake(
                    self, 401, "log in to the console to follow this page"
                )
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            found = await database_sync_to_async(dashboard_for_live)(
                user=user,
                username=route["user"],
                identifier=route["dashboard"],
                device=query.get("device", [""])[0].strip() or None,
            )
        if found is None:
            return await refuse_handshake(self, 404, "dashboard not found")
        dashboard, widgets = found
        self.targets = LiveTargets(widgets)
        self.group = group(dashboard.owner.username)
        DashboardLiveConsumer.open_sockets += 1
        self.counted = True
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.flush is not None:
            self.flush.cancel()
            self.flush = None
        if self.counted:
            DashboardLiveConsumer.open_sockets -= 1
            self.counted = False
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """The page says nothing: what it sends is ignored."""

    async def live_events(self, message):
        for event in message["events"]:
            self.pending.update(self.targets.affected(event))
        if self.pending and self.flush is None:
            wait = max(GATHER_SECONDS, self.last_sent + COALESCE_SECONDS - time.monotonic())
            self.flush = asyncio.ensure_future(self.send_pending(wait))

    async def send_pending(self, wait):
        await asyncio.sleep(wait)
        ids, self.pending, self.flush = sorted(self.pending), set(), None
        self.last_sent = time.monotonic()
        try:
            await asyncio.wait_for(
                self.send(text_data=json.dumps({"widgets": ids})),
                settings.EVENTS_SEND_TIMEOUT_SECONDS,
            )
        except TimeoutError:
            await self.close(code=CLOSE_TOO_SLOW, reason="the page does not read its changes")

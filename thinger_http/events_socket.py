"""The live events' WebSocket, ``/v1/users/{user}/events``, as Thinger.io's clients use it.

The token comes as ``?authorization=<token>`` or ``Authorization: Bearer <token>``: the user's
OAuth access token, or a long-lived token that allows ``ReadEvents`` on ``Events``; never a
device's token, and only for the user in the path (staff included). Without a token, the
console's session, from a page of this site (its Origin). A refused handshake is
answered 401 or 403 with the API's JSON error body.

The client then sends a subscription, a JSON object: ``event`` and any other key's value are
regular expressions that must match the whole of the event's field (``{"event": "device_.*",
"device": "esp_.*"}``); a key the event does not have filters it out; no ``event`` means every
event. Sending another subscription replaces it. A subscription that is not one closes the
socket (code 1007) with the reason. Each matching event is sent as one JSON object.
"""

import asyncio
import json
import logging
from urllib.parse import parse_qs

import regex
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.auth import FULL, authenticate_bearer
from core.events import PERMISSION, group
from core.sockets import console_session_user, refuse_handshake

logger = logging.getLogger(__name__)

RESOURCE, ACTION = PERMISSION
MAX_KEYS = 16
MAX_PATTERN_CHARS = 256
# A pattern gets this long to match one field, so that no subscription stalls the process.
MATCH_TIMEOUT_SECONDS = 0.01
CLOSE_BAD_SUBSCRIPTION = 1007
CLOSE_TOO_SLOW = 1008


class BadSubscription(ValueError):
    pass


def parse_subscription(text):
    """``{key: compiled pattern}`` from a subscription's text; BadSubscription says why not."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        raise BadSubscription("the subscription is not JSON") from None
    if not isinstance(value, dict):
        raise BadSubscription("the subscription must be a JSON object")
    if len(value) > MAX_KEYS:
        raise BadSubscription(f"at most {MAX_KEYS} keys")
    patterns = {}
    for key, pattern in value.items():
        if isinstance(pattern, bool):
            pattern = "true" if pattern else "false"
        elif isinstance(pattern, int | float):
            pattern = str(pattern)
        if not isinstance(pattern, str):
            raise BadSubscription(f"'{key[:40]}' must be a string (a regular expression)")
        if len(pattern) > MAX_PATTERN_CHARS:
            raise BadSubscription(f"'{key[:40]}' is longer than {MAX_PATTERN_CHARS} characters")
        try:
            patterns[key] = regex.compile(pattern)
        except regex.error as exc:
            raise BadSubscription(f"'{key[:40]}' is not a regular expression: {exc}") from None
    return patterns


def _text(value):
    return value if isinstance(value, str) else json.dumps(value)


def matches(patterns, event):
    for key, pattern in patterns.items():
        if key not in event:
            return False
        try:
            if pattern.fullmatch(_text(event[key]), timeout=MATCH_TIMEOUT_SECONDS) is None:
                return False
        except TimeoutError:
            return False
    return True


def _token(scope):
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                return rest.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    found = query.get("authorization", [""])[0].strip()
    return found or None


class EventsConsumer(AsyncWebsocketConsumer):
    open_sockets = 0  # in this process

    async def connect(self):
        self.counted = False
        self.patterns = None
        username = self.scope["url_route"]["kwargs"]["user"]
        if EventsConsumer.open_sockets >= settings.EVENTS_MAX_CONNECTIONS:
            return await self.refuse(503, "too many open event sockets, retry later")
        token = _token(self.scope)
        if token:
            found = await database_sync_to_async(authenticate_bearer)(token)
        else:
            found = await self.console_session()
        if found is None:
            return await self.refuse(401, "invalid or missing token")
        user, grant = found
        if user.username != username:
            return await self.refuse(403, "you may not access another user's events")
        if not grant.permits(RESOURCE, None, ACTION):
            return await self.refuse(403, f"this token does not allow {ACTION}")
        self.group = group(username)
        EventsConsumer.open_sockets += 1
        self.counted = True
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def console_session(self):
        """The console's logged-in user, with full rights (``core.sockets``)."""
        user = await console_session_user(self.scope)
        return None if user is None else (user, FULL)

    async def refuse(self, status, message):
        return await refuse_handshake(self, status, message)

    async def disconnect(self, code):
        if self.counted:
            EventsConsumer.open_sockets -= 1
            self.counted = False
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        text = text_data if text_data is not None else bytes_data
        try:
            self.patterns = parse_subscription(text)
        except BadSubscription as exc:
            await self.close(code=CLOSE_BAD_SUBSCRIPTION, reason=f"bad subscription: {exc}"[:120])

    async def live_events(self, message):
        if self.patterns is None:
            return
        for event in message["events"]:
            if not matches(self.patterns, event):
                continue
            try:
                await asyncio.wait_for(
                    self.send(text_data=json.dumps(event)), settings.EVENTS_SEND_TIMEOUT_SECONDS
                )
            except TimeoutError:
                await self.close(code=CLOSE_TOO_SLOW, reason="the client does not read its events")
                return

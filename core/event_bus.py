"""How live events travel from the process that raised them (web, worker, beat) to the events
process that holds the subscribers' WebSockets (``thinger_http.events_socket``).

With Redis (services mode), a publish on the Redis channel of the user's group in Channels' Redis
pub/sub layer: every events process subscribed to that group gets it, on any machine. Embedded,
with no Redis, a datagram to the socket ``EVENTS_SOCKET`` in ``var/``, which the one events
process listens on and hands to its in-memory layer; only processes of the same system user can
write to it.

Live events are best effort, as a WebSocket is: an event raised while no events process runs, or
while Redis is unreachable, is dropped, and never delays or fails what raised it.
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from functools import cache

from django.conf import settings

logger = logging.getLogger(__name__)

# The message the subscribers' consumers get (``EventsConsumer.live_events``).
MESSAGE_TYPE = "live.events"
# After Redis failed, events are dropped for this long instead of each waiting for a timeout.
REDIS_RETRY_SECONDS = 5
DATAGRAM_MAX_BYTES = 60_000


def send(group, events):
    """Hand ``events`` (dicts) to the subscribers of ``group``."""
    _bus(os.getpid()).send(group, {"type": MESSAGE_TYPE, "events": events})


@cache
def _bus(pid):
    # One per process (the pid is the key): a forked worker gets its own socket.
    if settings.EVENTS_REDIS_URL:
        return RedisBus(settings.EVENTS_REDIS_URL)
    return DatagramBus(settings.EVENTS_SOCKET)


class RedisBus:
    """A PUBLISH on the channel Channels' ``RedisPubSubChannelLayer`` subscribes a group to, in
    its serialization, from synchronous code (tests/test_events_socket.py checks that the layer
    delivers it)."""

    def __init__(self, url):
        import redis
        from channels.layers import get_channel_layer

        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.layer = get_channel_layer()
        self.prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
        self.down_until = 0.0

    def send(self, group, message):
        if time.monotonic() < self.down_until:
            return
        import redis

        try:
            self.client.publish(f"{self.prefix}__group__{group}", self.layer.serialize(message))
        except redis.RedisError:
            self.down_until = time.monotonic() + REDIS_RETRY_SECONDS
            logger.warning("live events dropped: Redis is unreachable", exc_info=True)


class DatagramBus:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def send(self, group, message):
        data = json.dumps({"group": group, "message": message}).encode()
        if len(data) > DATAGRAM_MAX_BYTES:
            logger.warning("live event dropped: %d bytes", len(data))
            return
        # OSError: no events process (no socket, or nobody at it), or its buffer is full.
        with contextlib.suppress(OSError):
            self.sock.sendto(data, self.path)


async def listen_datagrams(layer, path):
    """Embedded mode: take the datagrams ``DatagramBus`` sends to ``path`` and give each to
    ``layer``'s group; returns the transport (close it to stop)."""
    path = str(path)
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    old_mask = os.umask(0o177)  # rw for this system user only
    try:
        sock.bind(path)
    finally:
        os.umask(old_mask)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(layer), sock=sock)
    return transport


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, layer):
        self.layer = layer
        self.tasks = set()

    def datagram_received(self, data, addr):
        try:
            item = json.loads(data)
            group, message = item["group"], item["message"]
        except (ValueError, KeyError, TypeError):
            logger.warning("malformed live event datagram dropped")
            return
        task = asyncio.ensure_future(self.layer.group_send(group, message))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

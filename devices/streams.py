"""A device's statistics as Server-Sent Events (GET .../stats with ``Accept: text/event-stream``):
the generator the API view streams, polling the device row for changes."""

import json
import threading
import time

from django.conf import settings

from devices import selectors
from devices.models import Device

# The device columns whose change is a new event: every call moves last_call_at (and so the
# counters), the sweep flips connected.
_STATE_FIELDS = ("connected", "connected_at", "last_call_at", "remote_ip")


class _StreamSlots:
    """How many event streams this process has open. Each holds a server thread for up to
    ``STATS_SSE_SECONDS``: past ``STATS_SSE_MAX_STREAMS`` a stream sends one event and ends, and
    the client's EventSource reconnects after the ``retry`` it names, so device callbacks always
    find a free thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.open = 0

    def take(self, limit):
        with self._lock:
            if self.open >= limit:
                return False
            self.open += 1
            return True

    def give_back(self):
        with self._lock:
            self.open -= 1


_STREAM_SLOTS = _StreamSlots()


def _stats_event(device, days, retry=None):
    stats = json.dumps(selectors.device_stats(device, days), separators=(",", ":"))
    return f"retry: {retry}\ndata: {stats}\n\n" if retry else f"data: {stats}\n\n"


def stats_events(device, days):
    """Server-Sent Events: the stats now, then again whenever the device row changes; a comment
    line keeps the connection open; the stream ends after ``STATS_SSE_SECONDS`` (clients
    reconnect) or when the device is deleted."""
    if not _STREAM_SLOTS.take(settings.STATS_SSE_MAX_STREAMS):
        fresh = Device.objects.filter(pk=device.pk).first()
        if fresh is not None:
            yield _stats_event(fresh, days, retry=settings.STATS_SSE_RETRY_MS)
        return
    try:
        yield from _stats_changes(device, days)
    finally:
        _STREAM_SLOTS.give_back()


def _stats_changes(device, days):
    duration = settings.STATS_SSE_SECONDS
    poll = settings.STATS_SSE_POLL_SECONDS
    keepalive = settings.STATS_SSE_KEEPALIVE_SECONDS
    deadline = time.monotonic() + duration
    rows = Device.objects.filter(pk=device.pk)
    state = None
    last_sent = time.monotonic()
    while True:
        current = rows.values(*_STATE_FIELDS).first()
        if current is None:
            return
        if current != state:
            state = current
            fresh = rows.first()
            if fresh is None:
                return
            yield _stats_event(fresh, days)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= keepalive:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if time.monotonic() >= deadline:
            return
        time.sleep(poll)

"""The callback's rate limit: ``CALLBACK_RATE`` calls per device, DRF's throttle class.

A counter per device and fixed window, in the cache the settings name (``RATELIMIT_USE_CACHE``):
Redis in services mode, where web processes take a busy device's calls in leases (one INCRBY for
several calls), the process's own memory in embedded mode. With Redis unreachable the limit is
skipped and a warning logged: it protects the server, the data comes first.
"""

import logging
import threading
import time
import weakref

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from core.rates import split_rate

logger = logging.getLogger(__name__)


class CallbackRateThrottle(BaseThrottle):
    """At most ``CALLBACK_RATE`` calls per device (off when the setting is empty); ``wait()`` is
    the ``Retry-After`` of a refused call."""

    def allow_request(self, request, view):
        self.retry_after = rate_limited(view.kwargs["user"], view.kwargs["device"])
        return self.retry_after is None

    def wait(self):
        return self.retry_after


def rate_limited(username, identifier):
    """Seconds to wait when the device is over ``CALLBACK_RATE``, else None.

    A counter per device and fixed window. On Redis, calls are counted in leases: a web process
    takes a few calls of the device's window at once (one INCRBY) and counts them down in
    memory, so that a busy device costs Redis a round trip now and then rather than on every
    call (see ``_Leases``). Elsewhere every call is counted in the cache.
    """
    if not settings.CALLBACK_RATE:
        return None
    limit, period = split_rate(settings.CALLBACK_RATE)
    now = time.time()
    window = int(now // period)
    prefix = settings.RATELIMIT_CACHE_PREFIX
    key = f"{prefix}device-callback:{username}/{identifier}:{period}:{window}"
    cache = caches[settings.RATELIMIT_USE_CACHE]
    if isinstance(cache, RedisCache):
        allowed = _leased_call(cache, key, limit, period, window)
    else:
        cache.add(key, 0, period)
        allowed = cache.incr(key) <= limit
    return None if allowed else max(1, int((window + 1) * period - now))


class _Leases:
    """This process's leases of calls, per device for the current window.

    A lease is taken from the device's counter in Redis (INCRBY its size) and spent here, one
    call at a time; the counter never lets more than the limit through, whatever the number of
    processes. Its size is a sixteenth of what the window has left (at most ``MAX``), and one
    near the limit: a device far below its rate costs one INCRBY per ``MAX`` calls, one near it
    is counted call by call, as without leases. Calls a process leased and did not spend (the
    device's next calls went to another process, or the window ended) are the only error: they
    can make the other processes refuse up to a sixteenth of the window's rest early.
    """

    MAX = 64
    SHARE = 16
    # Past this many devices with a lease, the leases are dropped (each is a few calls at most).
    DEVICES = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        self._window = None
        self._leases = {}  # key: [calls left, size of the next lease]

    def spend(self, key, window):
        """(True, _) when this process holds a call of ``key``'s lease, now spent; else
        (False, size of the lease to take)."""
        with self._lock:
            if window != self._window:
                self._leases.clear()
                self._window = window
            lease = self._leases.get(key)
            if lease is None:
                return False, 1
            if lease[0]:
                lease[0] -= 1
                return True, 0
            return False, lease[1]

    def keep(self, key, window, left, count, limit):
        """Keep the ``left`` calls of a lease that brought the counter to ``count``. Threads
        that took leases of one device at the same moment add their calls up: a lease kept
        over another's would leave calls counted in Redis that nobody spends."""
        size = max(1, min(self.MAX, (limit - count) // self.SHARE))
        with self._lock:
            if window != self._window:
                self._leases.clear()
                self._window = window
            if len(self._leases) >= self.DEVICES:
                self._leases.clear()
            lease = self._leases.setdefault(key, [0, size])
            lease[0] += left
            lease[1] = size


_leases = _Leases()


def _leased_call(cache, key, limit, period, window):
    """Whether one more call of ``key`` is within ``limit`` (Redis); True when Redis cannot say."""
    spent, size = _leases.spend(key, window)
    if spent:
        return True
    count = _redis_incr(cache, cache.make_key(key), period, size)
    if count is None:
        return True
    # The calls of this lease that are within the limit: the first is this call's.
    granted = min(size, limit - (count - size))
    if granted <= 0:
        return False
    _leases.keep(key, window, granted - 1, count, limit)
    return True


def _redis_incr(cache, key, period, amount):
    """INCRBY ``key`` (and set its expiry when it is new); None when Redis cannot be reached.

    A connection Redis closed (an idle timeout, a restart) is opened again once; after that the
    limit is skipped: it protects the server, the data comes first, and the call goes on
    unlimited (the database still answers 503 if it is down too).
    """
    for attempt in range(2):
        connection = _redis_connection(cache)
        try:
            connection.send_command("INCRBY", key, amount)
            count = connection.read_response()
            if count == amount:
                connection.send_command("EXPIRE", key, period)
                connection.read_response()
            return count
        except RedisError:
            connection.disconnect()
            if attempt:
                logger.warning("callback rate limit skipped: Redis is unavailable", exc_info=True)
    return None


_redis_connections = weakref.WeakKeyDictionary()


def _redis_connection(cache):
    """A connection to the cache's primary Redis server, kept with the cache object (Django has
    one per thread) for this thread's calls: taking one from the pool and giving it back on
    every call costs about as much as the INCR itself. It connects again on the next call after
    an error."""
    connection = _redis_connections.get(cache)
    if connection is None:
        pool = cache._cache.get_client(write=True).connection_pool
        connection = _redis_connections[cache] = pool.make_connection()
    return connection

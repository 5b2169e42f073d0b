"""The device callback: what devices call. Thin: read the request, call the service, answer."""

import logging
import threading
import time
import weakref
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError

from devices.services import (
    CallbackError,
    callback_authenticate,
    callback_ingest,
    parse_remote_ip,
)
from thinger_http.responses import empty_ok, json_error

logger = logging.getLogger(__name__)

_BEARER = "bearer "


def _token(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[: len(_BEARER)].lower() == _BEARER:
        return header[len(_BEARER) :].strip()
    return request.GET.get("authorization", "").strip()


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate_limited(username, identifier):
    """Seconds to wait when the device is over ``CALLBACK_RATE``, else None.

    A counter per device and fixed window, in the cache django-ratelimit's settings name. On
    Redis, calls are counted in leases: a web process takes a few calls of the device's window
    at once (one INCRBY) and counts them down in memory, so that a busy device costs Redis a
    round trip now and then rather than on every call (see ``_Leases``). Elsewhere every call
    is counted in the cache.
    """
    if not settings.CALLBACK_RATE:
        return None
    limit, period = _split_rate(settings.CALLBACK_RATE)
    now = time.time()
    window = int(now // period)
    prefix = getattr(settings, "RATELIMIT_CACHE_PREFIX", "rl:")
    key = f"{prefix}device-callback:{username}/{identifier}:{period}:{window}"
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
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

    def keep(self, key, left, count, limit):
        """Keep the ``left`` calls of a lease that brought the counter to ``count``."""
        size = max(1, min(self.MAX, (limit - count) // self.SHARE))
        with self._lock:
            if len(self._leases) >= self.DEVICES:
                self._leases.clear()
            self._leases[key] = [left, size]


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
    _leases.keep(key, granted - 1, count, limit)
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


@lru_cache(maxsize=8)
def _split_rate(rate):
    count, _, unit = rate.partition("/")
    return int(count), _PERIODS[unit[-1]] * int(unit[:-1] or 1)


def _read_body(request):
    limit = settings.CALLBACK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
def callback_data(request, user, device, legacy=False):
    if request.method not in ("POST", "GET") or (legacy and request.method != "POST"):
        response = json_error(405, f"method {request.method} is not allowed here")
        response["Allow"] = "POST" if legacy else "GET, POST"
        return response
    try:
        claims = callback_authenticate(token=_token(request), username=user, identifier=device)
        retry_after = _rate_limited(user, device)
        if retry_after:
            raise CallbackError(
                429, "too many requests for this device", {"Retry-After": str(retry_after)}
            )
        body = b""
        if request.method == "POST":
            body = _read_body(request)
            if body is None:
                raise CallbackError(413, f"body is larger than {settings.CALLBACK_MAX_BYTES} bytes")
        result = callback_ingest(
            claims=claims,
            username=user,
            identifier=device,
            body=body,
            store=request.method == "POST",
            query_ts=request.GET.get("ts"),
            remote_ip=parse_remote_ip(request.GET.get("ip"), request.META.get("REMOTE_ADDR")),
        )
    except CallbackError as exc:
        return json_error(exc.status, exc.message, exc.headers)
    except (DataError, IntegrityError):
        logger.warning("callback data refused by the database", exc_info=True)
        return json_error(400, "the data cannot be stored: a value is out of range or invalid")
    except (OperationalError, InterfaceError):
        retry = str(settings.CALLBACK_RETRY_AFTER_SECONDS)
        return json_error(503, "storage unavailable, retry later", {"Retry-After": retry})
    if not result.body:
        return empty_ok(result.headers)
    response = HttpResponse(result.body, status=200)
    for name, value in result.headers.items():
        response[name] = value
    return response

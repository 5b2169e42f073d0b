"""Rates such as ``600/m`` or ``10/15m``, counted in fixed windows in the cache.

Counting is one atomic increment (Redis INCR in services mode, under the cache's lock in
process memory in embedded mode): clients hitting one counter at once are each counted.
"""

import time
from functools import lru_cache

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=16)
def split_rate(rate):
    """``"10/15m"`` -> ``(10, 900)``: the count and the window in seconds."""
    count, _, unit = rate.partition("/")
    return int(count), _PERIODS[unit[-1]] * int(unit[:-1] or 1)


def window(period, now=None):
    """(this window's number, seconds until the next one, at least 1)."""
    now = time.time() if now is None else now
    number = int(now // period)
    return number, max(1, int((number + 1) * period - now))


def hit(cache, key, period):
    """Count one more in ``key`` for a window of ``period`` seconds; returns the new count."""
    cache.add(key, 0, period)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 0, period)
        return cache.incr(key)

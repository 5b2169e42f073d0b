"""The device activity log: the calls to a device's callback that stored nothing (refused with a
4xx, or a body ignored as not JSON), so that its owner can see why a device that sends has no
data.

Nothing is done for an accepted call, and a refusal still costs the web process no query: it is
handed to a worker (``devices.tasks.callback_activity_write``) after its answer is made. A flood
of refusals (an attacker, a device looping on a wrong token, the rate limit) hands over at most
one per device, status and ``ACTIVITY_WRITE_SECONDS``, and at most ``ACTIVITY_USER_PER_SECOND``
per user: the refusals in between are counted (by each process, which gates itself first, so
that a flood costs no round trip to the cache) and added to the row's ``count`` by the next
hand-over. In the database the same status and reason as the device's newest row add to it;
another starts a row, and the device keeps its ``ACTIVITY_PER_DEVICE`` newest.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from devices.models import CallbackActivity, Device

logger = logging.getLogger(__name__)

ACTIVITY_PER_DEVICE = 50
ACTIVITY_WRITE_SECONDS = 1
ACTIVITY_USER_PER_SECOND = 20


# This process's recent hand-overs: key -> [until (monotonic seconds), refusals counted since].
# A flood costs no round trip to the cache: each process gates itself first.
_recent = {}
_RECENT_MAX = 10_000


def callback_activity_record(*, username, identifier, status, reason, remote_ip, size):
    """Note a call of ``username``'s device ``identifier`` that stored nothing."""
    from devices.tasks import callback_activity_write

    key = f"{username}:{identifier}:{status}"
    now = time.monotonic()
    seen = _recent.get(key)
    if seen is not None and now < seen[0]:
        seen[1] += 1
        return
    counted = seen[1] if seen is not None else 0
    if len(_recent) >= _RECENT_MAX:
        _recent.clear()
    _recent[key] = [now + ACTIVITY_WRITE_SECONDS, 0]
    prefix = f"{settings.RATELIMIT_CACHE_PREFIX}activity:"
    try:
        # Across processes: one hand-over per key and second, and a cap per user.
        if not cache.add(f"{prefix}{key}", 1, timeout=ACTIVITY_WRITE_SECONDS):
            _recent[key][1] = counted + 1
            return
        if _over(f"{prefix}{username}", ACTIVITY_USER_PER_SECOND):
            return
        callback_activity_write.apply_async(
            kwargs={
                "username": username,
                "identifier": identifier,
                "status": status,
                "reason": reason[:255],
                "remote_ip": remote_ip,
                "size": size,
                "count": 1 + counted,
            },
            queue=settings.DEVICES_TASK_QUEUE,
            retry=False,
        )
    except Exception:  # the cache or the broker is down: the call is answered all the same
        logger.warning("callback activity not recorded", exc_info=True)


def _over(key, limit):
    """Whether ``key`` passed ``limit`` uses in the current second."""
    window = f"{key}:{int(time.time())}"
    if cache.add(window, 1, timeout=2):
        return False
    return cache.incr(window) > limit


@transaction.atomic
def callback_activity_write(*, username, identifier, status, reason, remote_ip, size, count):
    """Write what ``callback_activity_record`` handed over (the worker's side)."""
    device = (
        Device.objects.filter(owner__username=username, identifier=identifier)
        .values_list("pk", flat=True)
        .first()
    )
    if device is None:  # no such device: nobody to show it to
        return
    now = timezone.now()
    newest = CallbackActivity.objects.filter(device_id=device).order_by("-last_at", "-id").first()
    if newest is not None and (newest.status, newest.reason) == (status, reason):
        CallbackActivity.objects.filter(pk=newest.pk).update(
            count=F("count") + count, last_at=now, remote_ip=remote_ip, size=size
        )
        return
    CallbackActivity.objects.create(
        device_id=device,
        status=status,
        reason=reason,
        first_at=now,
        last_at=now,
        count=count,
        remote_ip=remote_ip,
        size=size,
    )
    stale = CallbackActivity.objects.filter(device_id=device).order_by("-last_at", "-id")[
        ACTIVITY_PER_DEVICE:
    ]
    CallbackActivity.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()

"""Password guessing: failed logins counted per account and per client address, on every way
to log in (``/oauth/token``, the console's ``/login/``, the admin's ``/admin/login/``).

Each failure (Django's ``user_login_failed``, which all three send) counts once against the
account named and once against the address, atomically in the cache (Redis in services mode).
Past ``LOGIN_FAILURES_PER_ACCOUNT`` or ``LOGIN_FAILURES_PER_ADDRESS`` in a window, that way in is
locked for the rest of the window: 429 with ``Retry-After`` and a message saying so, before any
password is checked. The address is the peer's (``REMOTE_ADDR``); ``X-Forwarded-For`` counts only
when the peer is one of ``TRUSTED_PROXIES``.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import caches
from django.dispatch import receiver
from django.shortcuts import render

from core import rates
from core.responses import is_api_path, json_error


@lru_cache(maxsize=8)
def _networks(proxies):
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _trusted(address, networks):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request):
    """The client's address: the peer's, or when the peer is a trusted proxy, the right-most
    address of ``X-Forwarded-For`` that is not one (what a client writes there is not trusted)."""
    remote = request.META.get("REMOTE_ADDR", "")
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not networks or not _trusted(remote, networks):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for address in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not _trusted(address, networks):
            return address
    return remote


def _counters(request, username):
    """(cache key, limit, period) of each counter a login attempt falls under."""
    for scope, rate, ident in (
        ("account", settings.LOGIN_FAILURES_PER_ACCOUNT, (username or "").strip().lower()),
        ("address", settings.LOGIN_FAILURES_PER_ADDRESS, client_address(request)),
    ):
        if rate and ident:
            limit, period = rates.split_rate(rate)
            number, _ = rates.window(period)
            key = f"{settings.RATELIMIT_CACHE_PREFIX}login-failures:{scope}:{ident}:{number}"
            yield key, limit, period


def login_locked(request, username):
    """Seconds until a login as ``username`` from this client may be tried again, or None."""
    cache = caches[settings.RATELIMIT_USE_CACHE]
    waits = [
        rates.window(period)[1]
        for key, limit, period in _counters(request, username)
        if (cache.get(key) or 0) >= limit
    ]
    return max(waits) if waits else None


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs):
    if request is None:
        return
    cache = caches[settings.RATELIMIT_USE_CACHE]
    for key, _, period in _counters(request, credentials.get("username")):
        rates.hit(cache, key, period)


LOCKED_MESSAGE = "too many failed logins: try again in {seconds} seconds"


class LoginLimitMiddleware:
    """Refuses a login attempt while its account or address is locked, before the password is
    checked: JSON on ``/oauth/token``, the login page's own look elsewhere."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path_info in settings.LOGIN_PATHS:
            is_password_grant = request.POST.get("grant_type", "password") == "password"
            seconds = is_password_grant and login_locked(request, request.POST.get("username"))
            if seconds:
                return self.locked(request, seconds)
        return self.get_response(request)

    def locked(self, request, seconds):
        message = LOCKED_MESSAGE.format(seconds=seconds)
        if is_api_path(request.path_info):
            return json_error(429, message, {"Retry-After": str(seconds)})
        response = render(request, "login_locked.html", {"message": message}, status=429)
        response["Retry-After"] = str(seconds)
        return response

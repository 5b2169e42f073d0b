import logging
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AccessToken, RefreshTokenFamily
from core.db import insert_unique, save_changes

logger = logging.getLogger(__name__)

# How stale a token's ``last_used`` may get: it is written at most this often, never on every
# request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@transaction.atomic
def access_token_create(
    *, owner, identifier, name, enabled=True, description="", allow=None, deny=None, expire=None
):
    token = AccessToken(
        owner=owner,
        identifier=identifier,
        name=name,
        description=description,
        enabled=enabled,
        allow=allow if allow is not None else {},
        deny=deny or {},
        expire=expire,
    )
    token.full_clean()
    return insert_unique(token)


def access_token_update(*, token, **fields):
    for name, value in fields.items():
        setattr(token, name, value)
    token.full_clean()
    return save_changes(token, fields)


def access_token_revoke(*, token):
    token.delete()


def access_token_touch(*, token, now=None):
    """Record that ``token`` authenticated a request, at most once per ``LAST_USED_RESOLUTION``.

    Most requests cost nothing: the row just read says it was used recently. Otherwise one
    conditional UPDATE, which only one of many concurrent requests wins (the others find the
    fresh value once its transaction ends). Last use is information, not security: a failed write
    is logged and the request goes on. True when this call wrote it.
    """
    now = now or timezone.now()
    since = now - LAST_USED_RESOLUTION
    if token.last_used is not None and token.last_used > since:
        return False
    stale = Q(last_used__isnull=True) | Q(last_used__lte=since)
    try:
        with transaction.atomic():
            written = AccessToken.objects.filter(stale, pk=token.pk).update(last_used=now)
    except DatabaseError as exc:
        logger.warning("could not record the last use of token %s: %s", token.pk, exc)
        return False
    if written:
        token.last_used = now
    return bool(written)


@transaction.atomic
def user_password_change(*, user, password):
    """Set ``user``'s password and revoke their API logins (refresh token families), so that a
    refresh token copied before the change stops working. The sessions that carry the old
    password's hash are signed out by Django's session verification; the caller keeps its own
    (``update_session_auth_hash``). Long-lived access tokens are not touched: they are revoked
    one by one. Returns the number of refresh token families revoked."""
    user.set_password(password)
    user.save(update_fields=["password"])
    return RefreshTokenFamily.objects.filter(owner=user, revoked=False).update(revoked=True)

"""API authentication: OAuth password/refresh grants, long-lived access tokens, sessions.

One place issues and checks every API credential. Access and refresh tokens are JWTs (HS256)
whose ``usr`` claim names the user, as Thinger.io clients expect to read it without the key, and
whose ``uid`` claim binds them to that account: a token never reads a later account of the same
name. Refresh tokens rotate: each is good for one refresh (``RefreshTokenFamily``).
"""

import time
import uuid
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import AccessToken, RefreshTokenFamily
from accounts.services import access_token_touch

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
TOKEN_JTI_PREFIX = "AccessToken_"  # noqa: S105 (a claim prefix, not a secret)


@dataclass(frozen=True)
class Grant:
    """What a request's credential lets it do: everything the user may, or a token's scope."""

    allow: dict | None = None  # None: the user's full rights (session, OAuth access token)
    deny: dict | None = None

    def permits(self, resource_type, resource, action):
        if self.allow is None:
            return True
        if _matches(self.deny or {}, resource_type, resource, action):
            return False
        return _matches(self.allow, resource_type, resource, action)


FULL = Grant()


def _matches(rules, resource_type, resource, action):
    for type_key in (resource_type, "*"):
        by_name = rules.get(type_key)
        if not isinstance(by_name, dict):
            continue
        for name_key in (resource, "*"):
            if name_key is not None and _action_in(by_name.get(name_key), action):
                return True
    return False


def _action_in(entry, action):
    if entry is None:
        return False
    if isinstance(entry, str):
        return entry in ("*", action)
    if isinstance(entry, list):
        return any(_action_in(item, action) for item in entry)
    if isinstance(entry, dict):
        return "*" in entry or action in entry
    return False


def _encode(claims):
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def _decode(token):
    try:
        return jwt.decode(token, settings.SECRET_KEY, algorithms=[ALGORITHM])
    except jwt.PyJWTError:
        return None


def oauth_tokens_for(user, family=None):
    """The body of a successful ``POST /oauth/token``: a new family of refresh tokens for a
    password login, the family's next token for a refresh."""
    now = int(time.time())
    lifetime = settings.API_ACCESS_TOKEN_SECONDS
    if family is None:
        family = RefreshTokenFamily(owner=user)
    family.current = uuid.uuid4().hex
    family.save()
    access = _encode(
        {"usr": user.username, "uid": user.pk, "typ": ACCESS, "iat": now, "exp": now + lifetime}
    )
    refresh = _encode(
        {
            "usr": user.username,
            "uid": user.pk,
            "typ": REFRESH,
            "iat": now,
            "exp": now + settings.API_REFRESH_TOKEN_SECONDS,
            "fam": family.pk,
            "jti": family.current,
            # A password change invalidates refresh tokens issued before it.
            "pwd": user.password[-12:],
        }
    )
    return {
        "access_token": access,
        "expires_in": lifetime,
        "refresh_token": refresh,
        "token_type": "bearer",
    }


def oauth_refresh(token):
    """The next tokens for a refresh token, or None. The token is spent: presented again (a copy
    in other hands, or a replay), it revokes its whole family."""
    claims = _decode(token or "")
    if not claims or claims.get("typ") != REFRESH:
        return None
    user = _user(claims)
    if user is None or user.password[-12:] != claims.get("pwd"):
        return None
    with transaction.atomic():
        family = (
            RefreshTokenFamily.objects.select_for_update()
            .filter(pk=claims.get("fam"), owner=user, revoked=False)
            .first()
        )
        if family is None:
            return None
        if family.current != claims.get("jti"):
            family.revoked = True
            family.save(update_fields=["revoked"])
            return None
        family.refreshed = timezone.now()
        return oauth_tokens_for(user, family)


def _user(claims):
    """The active account a token's claims name, by id and name alike; None when it is gone
    (a new account of the same name is not it)."""
    uid, name = claims.get("uid"), claims.get("usr")
    if not isinstance(uid, int) or isinstance(uid, bool) or not isinstance(name, str):
        return None
    return get_user_model().objects.filter(pk=uid, username=name, is_active=True).first()


def access_token_value(token: AccessToken):
    """The secret value of a long-lived token, shown to its owner."""
    claims = {
        "jti": f"{TOKEN_JTI_PREFIX}{token.identifier}",
        "usr": token.owner.username,
        "uid": token.owner_id,
        "gen": token.generation,
    }
    if token.expire:
        claims["exp"] = token.expire // 1000
    return _encode(claims)


def authenticate_bearer(raw):
    """(user, grant) for an API bearer token, or None when it is not one of ours or revoked."""
    claims = _decode(raw)
    if not claims or not isinstance(claims.get("usr"), str):
        return None
    if claims.get("typ") == ACCESS:
        user = _user(claims)
        return (user, FULL) if user else None
    jti = claims.get("jti")
    if isinstance(jti, str) and jti.startswith(TOKEN_JTI_PREFIX):
        token = (
            AccessToken.objects.select_related("owner")
            .filter(
                owner__username=claims["usr"],
                owner_id=claims.get("uid") if isinstance(claims.get("uid"), int) else None,
                owner__is_active=True,
                identifier=jti.removeprefix(TOKEN_JTI_PREFIX),
                enabled=True,
            )
            .first()
        )
        if token is None or token.generation != claims.get("gen") or token.is_expired():
            return None
        access_token_touch(token=token)
        return token.owner, Grant(allow=token.allow or {}, deny=token.deny or {})
    return None


def bearer_from_request(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.GET.get("authorization", "").strip() or None


class BearerAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` or ``?authorization=<token>``."""

    def authenticate(self, request):
        raw = bearer_from_request(request)
        if raw is None:
            return None
        found = authenticate_bearer(raw)
        if found is None:
            raise exceptions.AuthenticationFailed("invalid or expired token")
        return found

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """The console's logged-in user, with CSRF enforced as DRF does; full rights."""

    def authenticate(self, request):
        found = super().authenticate(request)
        return (found[0], FULL) if found else None

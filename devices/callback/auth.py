"""Who may call a device's callback: DRF's authentication class for the callback view.

A device token (``Authorization: Bearer <token>`` or ``?authorization=<token>``) is checked
before any query, so a forged or foreign one costs no database work; whether it is still current
(not rotated) is checked against the device's row where the call is written. The owner's API
access tokens are accepted too, within their scope: gateways and plugins post for many devices.
"""

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication

from accounts.auth import authenticate_bearer
from devices.callback.errors import CallbackError
from devices.tokens import InvalidToken, callback_token_decode

_BEARER = "bearer "


def request_token(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[: len(_BEARER)].lower() == _BEARER:
        return header[len(_BEARER) :].strip()
    return request.GET.get("authorization", "").strip()


class OwnerClaims:
    """The owner's API access token: good for every device of that user, whatever its token's
    generation (``generation`` None)."""

    generation = None

    def current_for(self, device):
        return True


OWNER = OwnerClaims()


class CallbackAuthentication(BaseAuthentication):
    """``request.auth`` is the token's claims (``devices.tokens.CallbackClaims`` or ``OWNER``);
    ``request.user`` the owner for their access tokens, else anonymous (a device). Refusals are
    401 and 403 with the callback's JSON error body, and no ``WWW-Authenticate`` challenge."""

    def authenticate(self, request):
        kwargs = request.parser_context["kwargs"]
        return callback_authenticate(request_token(request), kwargs["user"], kwargs["device"])


_DEVICE = AnonymousUser()


def callback_authenticate(token, username, identifier):
    """(user, claims) for a callback ``token`` on the path of ``username``'s device
    ``identifier``; raises CallbackError 401 or 403."""
    if not token:
        raise CallbackError(401, "missing token")
    try:
        claims = callback_token_decode(token)
    except InvalidToken as exc:
        return _owner_token(token, username, identifier, problem=str(exc))
    if not claims.matches(user=username, device=identifier):
        raise CallbackError(403, "this token is for another device")
    return _DEVICE, claims


def _owner_token(token, username, identifier, *, problem):
    found = authenticate_bearer(token)
    if found is None:
        raise CallbackError(401, f"invalid token: {problem}")
    user, grant = found
    if user.username != username:
        raise CallbackError(403, "this token is for another user")
    if not grant.permits("Device", identifier, "CallDeviceCallback"):
        raise CallbackError(403, "this token does not allow CallDeviceCallback")
    return user, OWNER

"""Device callback tokens: one place issues them and one place checks them.

A token is a JWT (HS256) with ``jti`` ``DeviceCallback_<device>``, ``usr`` ``<user>`` and ``gen``,
the device's token generation; rotating the generation makes every older token fail.
"""

import hmac
from dataclasses import dataclass
from functools import lru_cache

import jwt
from django.conf import settings

ALGORITHM = "HS256"
JTI_PREFIX = "DeviceCallback_"


class InvalidToken(Exception):
    """Not a token this server signed (401)."""


@dataclass(frozen=True)
class CallbackClaims:
    user: str
    device: str
    generation: int

    def matches(self, *, user, device):
        return hmac.compare_digest(self.user, user) and hmac.compare_digest(self.device, device)

    def current_for(self, device):
        return hmac.compare_digest(str(self.generation), str(device.token_generation))


def callback_token_for(device) -> str:
    claims = {
        "jti": f"{JTI_PREFIX}{device.identifier}",
        "usr": device.owner.username,
        "gen": device.token_generation,
    }
    return jwt.encode(claims, settings.CALLBACK_TOKEN_KEY, algorithm=ALGORITHM)


def callback_token_decode(token: str) -> CallbackClaims:
    if not token:
        raise InvalidToken("missing token")
    return _verified_claims(token, settings.CALLBACK_TOKEN_KEY)


# A device sends the same token with every call: its signature is checked once per process.
# Only tokens that verified are kept (a forged one is checked each time, as it costs no query),
# and the key is part of the cache key. Rotation still takes effect at once: the generation is
# compared with the device's row on every call.
@lru_cache(maxsize=4096)
def _verified_claims(token, key):
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"require": ["jti", "usr", "gen"]}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    jti, user, generation = claims["jti"], claims["usr"], claims["gen"]
    if not (isinstance(jti, str) and jti.startswith(JTI_PREFIX) and isinstance(user, str)):
        raise InvalidToken("not a device callback token")
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise InvalidToken("not a device callback token")
    return CallbackClaims(user=user, device=jti.removeprefix(JTI_PREFIX), generation=generation)

"""The rules of a callback that depend on the device's state, stated once in Python.

The portable writer (``portable.py``) applies them with the ORM. On PostgreSQL the writer is one
database function (``devices/migrations/0005_callback.sql``) where each rule has its SQL twin,
next to a comment naming it here; ``tests/test_callback_parity.py`` runs one table of scenarios
through both writers and asserts the same rows and answers.
"""

from dataclasses import dataclass
from datetime import timedelta

from devices.callback.errors import CallbackError

# Why a device refuses a call, in this order: the database function returns the same words.
MISSING, ROTATED, DISABLED = "missing", "rotated", "disabled"


@dataclass(frozen=True)
class Written:
    """What a writer did with a call: why the device refused it (None: written), the answer's
    body (None: an empty 200), whether the call connected the device, the id of the property it
    set and that of the bucket it stored records in (None: none); the last three become live
    events."""

    reason: str | None
    body: str | None = None
    came_online: bool = False
    set_property: str | None = None
    wrote_bucket: str | None = None


def refusal(device, generation):
    """``MISSING``, ``ROTATED`` or ``DISABLED`` when the device refuses a call made with a token
    of ``generation`` (None: the owner's token, good for any), else None."""
    if device is None:
        return MISSING
    if generation is not None and generation != device.token_generation:
        return ROTATED
    if not device.enabled:
        return DISABLED
    return None


def refusal_error(reason, *, username, identifier):
    """The answer to a refused call: 404, 401 or 403."""
    if reason == MISSING:
        return CallbackError(404, f"device {identifier!r} of user {username!r} not found")
    if reason == ROTATED:
        return CallbackError(401, "invalid token: it was rotated")
    return CallbackError(403, "device is disabled")


def deadline(at, timeout_minutes):
    """When a device called at ``at`` disconnects if it does not call again."""
    return at + timedelta(minutes=timeout_minutes)


def response_text(device, *, stored, echo, send_value):
    """The answer's body, None for an empty 200: the ``send_property``'s value as the database
    stores it (``send_value``, None for JSON null), or ``echo``, the payload as the call sent it,
    when that property is the one the call set (``stored``: the body was JSON)."""
    if device.send_property_id is None:
        return None
    if stored and device.send_property_id == device.set_property_id:
        return echo
    return "null" if send_value is None else send_value

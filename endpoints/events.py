"""The events of endpoints (see ``core.events``)."""

from core.events import declare

CALL = declare(
    "endpoint_call",
    "endpoint",
    ("status", ["success", "error"]),
    "device",
    description="An endpoint was called (a delivery attempt, or a call from the API or the "
    "console): success or error, with the target's HTTP status.",
)

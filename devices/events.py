"""The events of devices (see ``core.events``)."""

from core.events import declare

STATE_CHANGE = declare(
    "device_state_change",
    "device",
    ("state", ["connected", "disconnected"]),
    "ip",
    description="A device connected (its first call after being disconnected) or disconnected "
    "(its timeout passed without a call).",
)
CALLBACK_CALL = declare(
    "device_callback_call",
    "device",
    ("status", ["200", "400", "401", "403", "404", "413", "429", "503"]),
    "rx_bytes",
    "tx_bytes",
    description="A call to the device's callback, with its answer's status and the bytes "
    "received and sent.",
)
PROPERTY_UPDATE = declare(
    "device_property_update",
    "device",
    "property",
    description="A property of the device got a new value (from the API, the console or the "
    "callback's set_property action).",
)

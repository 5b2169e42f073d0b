"""Thinger.io's ``allow``/``deny`` permissions of long-lived tokens: the presets the console
offers, what a permission document looks like, and a short summary of one.

A document is ``{resource type: {resource name: action, or [action, ...]}}`` where each may be
``"*"``; ``accounts.auth.Grant`` decides what it permits. The action names are those the API
views declare (``actions`` of each view); ``tests/test_console_account.py`` checks the presets
against them.
"""

import json
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from accounts.models import ADMIN_ACCESS


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    description: str
    allow: dict
    deny: dict = field(default_factory=dict)


# What reading everything takes: every action of a GET, except the device's callback token (a
# secret that lets its holder post as the device) and the tokens' own routes.
READ_ACTIONS = {
    "Device": [
        "ListDevices",
        "ReadDeviceStatus",
        "ReadDeviceStatistics",
        "ReadDeviceCallbackConfig",
        "ListDeviceProperties",
        "ReadDeviceProperty",
        "ListDeviceBuckets",
        "ReadDeviceBucket",
    ],
    "Bucket": [
        "ListBuckets",
        "ReadBucketConfig",
        "ReadBucket",
        "ListBucketExports",
        "ReadBucketExport",
    ],
    "Endpoint": [
        "ListEndpoints",
        "ReadEndpointConfig",
        "ReadEndpointCalls",
        "ListEndpointTemplates",
        "ReadEndpointTemplateConfig",
    ],
    "Events": ["ReadEvents"],
    "Dashboard": ["ListDashboards", "ReadDashboard", "ReadDashboardData"],
}

PRESETS = {
    preset.key: preset
    for preset in (
        Preset(
            "full",
            "Full access",
            "Everything you can do: devices, buckets, endpoints, events and tokens.",
            ADMIN_ACCESS,
        ),
        Preset(
            "read",
            "Read only",
            "List and read devices, properties, statistics, buckets, endpoints and live events; "
            "change nothing. Not the devices' callback tokens.",
            {kind: {"*": actions} for kind, actions in READ_ACTIONS.items()},
        ),
        Preset(
            "devices",
            "Devices only",
            "Everything on devices (their properties, callbacks and statistics, and posting "
            "to their callbacks as a gateway does); no buckets, endpoints or tokens.",
            {"Device": {"*": "*"}},
        ),
        Preset(
            "events",
            "Events only",
            "Only the live events WebSocket (Node-RED and n8n triggers).",
            {"Events": {"*": ["ReadEvents"]}},
        ),
    )
}
CUSTOM = "custom"

_TYPE = re.compile(r"^[a-zA-Z0-9_-]{1,32}\Z|^\*\Z")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,32}(?:@[a-zA-Z0-9_]{1,32})?\Z|^\*\Z")
_ACTION = re.compile(r"^[a-zA-Z0-9_*]{1,64}\Z")


def preset_of(allow, deny):
    """The preset these permissions are exactly, or None (custom)."""
    for preset in PRESETS.values():
        if allow == preset.allow and (deny or {}) == preset.deny:
            return preset
    return None


def permissions_summary(allow, deny):
    """(label, detail) for a list: a preset's label, or "Custom" and the documents as compact
    JSON."""
    preset = preset_of(allow, deny)
    if preset is not None:
        return preset.label, ""
    detail = "allow " + json.dumps(allow or {}, separators=(",", ":"))
    if deny:
        detail += " deny " + json.dumps(deny, separators=(",", ":"))
    return "Custom", detail


def validate_permissions(value):
    """Raise a ValidationError saying where ``value`` is not a permission document."""
    if not isinstance(value, dict):
        raise ValidationError('It must be a JSON object, e.g. {"Device": {"*": "*"}}.')
    for kind, names in value.items():
        if not _TYPE.match(kind):
            raise ValidationError(f'"{kind}" is not a resource type (e.g. Device, Bucket, *).')
        if not isinstance(names, dict) or not names:
            raise ValidationError(
                f'"{kind}" must map resource names to actions, e.g. {{"*": ["ReadBucket"]}}.'
            )
        for name, actions in names.items():
            if not _NAME.match(name):
                raise ValidationError(f'"{kind}" → "{name}" is not a resource name or *.')
            entries = actions if isinstance(actions, list) else [actions]
            if not entries or not all(_action_entry(entry) for entry in entries):
                raise ValidationError(
                    f'"{kind}" → "{name}" must be an action ("*" or e.g. "ReadBucket") '
                    "or a list of them."
                )


def _action_entry(entry):
    if isinstance(entry, str):
        return bool(_ACTION.match(entry))
    # Thinger.io's sub-resource form: {"resource": action or [actions]}.
    return isinstance(entry, dict) and all(
        isinstance(actions, str) or (isinstance(actions, list) and actions)
        for actions in entry.values()
    )

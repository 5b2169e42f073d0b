"""Console forms for devices, their callback settings and their properties.

Forms check what a person typed (required, format, JSON); the services decide the rest and their
ValidationErrors are put back on the form by the views.
"""

import json

from django import forms

from core.forms import parse_json_text
from core.identifiers import IDENTIFIER_MAX_LENGTH, identifier_validator
from devices.models import CALLBACK_ACTIONS, QUIET_MAX_MINUTES, TIMEOUT_MAX_MINUTES, Device

ID_HELP = "1 to 32 letters, digits, '_' or '-'. It is part of the callback URL and cannot change."


class DeviceForm(forms.Form):
    identifier = forms.CharField(
        label="Device ID",
        max_length=IDENTIFIER_MAX_LENGTH,
        validators=[identifier_validator],
        help_text=ID_HELP,
        widget=forms.TextInput(attrs={"autofocus": True, "placeholder": "e.g. greenhouse-1"}),
    )
    name = forms.CharField(
        label="Device Name",
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Greenhouse sensor"}),
    )
    description = forms.CharField(
        label="Description",
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "What it is and where it is"}),
    )
    type = forms.ChoiceField(
        label="Device Type",
        choices=Device.Type.choices,
        initial=Device.Type.HTTP,
        help_text="Anything that can send an HTTP request: a Sigfox or LoRa network server, "
        "a script with cURL, a microcontroller.",
    )


class DeviceEditForm(forms.Form):
    name = forms.CharField(label="Device Name", max_length=255, required=False)
    description = forms.CharField(label="Description", max_length=255, required=False)
    enabled = forms.BooleanField(
        label="Enabled",
        required=False,
        help_text="A disabled device's callbacks are refused with 403 and nothing is stored.",
    )


# The console's words for each of CALLBACK_ACTIONS: (label, what it does, what its selector
# lists).
_ACTION_TEXTS = {
    "write_bucket": ("Write bucket", "Store each JSON record in a data bucket.", "bucket"),
    "set_property": (
        "Set property",
        "Keep the last payload as the value of a device property.",
        "property",
    ),
    "call_endpoint": (
        "Call endpoint",
        "Send the payload to an endpoint (webhook, e-mail, IFTTT…) in the background.",
        "endpoint",
    ),
    "send_property": (
        "Response data",
        "Answer each call with a property's value as JSON (otherwise an empty 200).",
        "property",
    ),
}


class CallbackSettingsForm(forms.Form):
    """A checkbox and a selector per action, in the order the callback runs them."""

    # (action, label, what it does, what the selector lists), in the order the callback runs them
    ACTIONS = tuple((action, *_ACTION_TEXTS[action]) for action in CALLBACK_ACTIONS)

    timeout = forms.IntegerField(
        label="Connection timeout (minutes)",
        min_value=1,
        max_value=TIMEOUT_MAX_MINUTES,
        help_text="The device is shown as disconnected after this long without a call.",
        widget=forms.NumberInput(attrs={"style": "max-width: 160px"}),
    )

    def __init__(self, *args, buckets=(), endpoints=(), properties=(), **kwargs):
        super().__init__(*args, **kwargs)
        sources = {
            "bucket": [(b.identifier, _label(b)) for b in buckets],
            "endpoint": [(e.identifier, _label(e)) for e in endpoints],
            "property": [(p.identifier, _label(p)) for p in properties],
        }
        self.rows = []
        for action, label, help_text, kind in self.ACTIONS:
            self.fields[f"{action}_on"] = forms.BooleanField(
                label=label,
                required=False,
                widget=forms.CheckboxInput(attrs={"data-toggles": f"id_{action}"}),
            )
            self.fields[action] = forms.ChoiceField(
                label=f"{label}: {kind}",
                required=False,
                choices=[("", f"Choose {_article(kind)} {kind}…"), *sources[kind]],
                # console.js adds a box that narrows the options (search "Search buckets…").
                widget=forms.Select(attrs={"data-searchable": _PLURALS[kind]}),
            )
            self.rows.append(
                {
                    "action": action,
                    "label": label,
                    "help": help_text,
                    "kind": kind,
                    "has_choices": bool(sources[kind]),
                }
            )

    def bound_rows(self):
        return [
            {**row, "toggle": self[f"{row['action']}_on"], "select": self[row["action"]]}
            for row in self.rows
        ]

    def choose(self, action, identifier):
        """Start with ``identifier`` chosen for ``action`` and the action ticked (the page comes
        back from creating it); nothing when either is not one of the form's. True if chosen."""
        if action not in CALLBACK_ACTIONS or self.is_bound:
            return False
        if not identifier or not self.fields[action].valid_value(identifier):
            return False
        self.initial.update({action: identifier, f"{action}_on": True})
        for row in self.rows:
            row["just_created"] = row["action"] == action
        return True

    def clean(self):
        data = super().clean()
        for action, _, _, kind in self.ACTIONS:
            if data.get(f"{action}_on") and not data.get(action):
                self.add_error(action, f"Choose {_article(kind)} {kind}, or untick this action.")
        return data

    def actions(self):
        """``{action: identifier or None}`` as callback_settings_update takes them."""
        return {
            action: (self.cleaned_data.get(action) or None)
            if self.cleaned_data.get(f"{action}_on")
            else None
            for action, _, _, _ in self.ACTIONS
        }

    @classmethod
    def initial_for(cls, settings):
        """The form's initial values from a device's CallbackSettings."""
        initial = {"timeout": settings.timeout}
        for action, _, _, _ in cls.ACTIONS:
            target = getattr(settings, action)
            initial[f"{action}_on"] = target is not None
            initial[action] = target.identifier if target is not None else ""
        return initial


_PLURALS = {"bucket": "buckets", "endpoint": "endpoints", "property": "properties"}


def _article(noun):
    return "an" if noun[0] in "aeiou" else "a"


def _label(obj):
    return f"{obj.identifier} — {obj.name}" if obj.name else obj.identifier


class JSONValueField(forms.CharField):
    """Any JSON value, typed as text; an empty box is null."""

    widget = forms.Textarea

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        return parse_json_text(text, hint='Text must be in double quotes, e.g. "on".')


def json_text(value):
    """A property value as the text its edit box starts with."""
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False)


class PropertyForm(forms.Form):
    identifier = forms.CharField(
        label="Property ID",
        max_length=IDENTIFIER_MAX_LENGTH,
        validators=[identifier_validator],
        help_text="1 to 32 letters, digits, '_' or '-'.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. settings"}),
    )
    name = forms.CharField(label="Name", max_length=255, required=False)
    description = forms.CharField(label="Description", max_length=255, required=False)
    value = JSONValueField(
        label="Value (JSON)",
        required=False,
        help_text='Any JSON value: an object such as {"led": "on"}, a number, "text", '
        "true or false. Leave empty for null.",
        widget=forms.Textarea(attrs={"class": "code", "rows": 8, "spellcheck": "false"}),
    )

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["identifier"]


class AlertSettingsForm(forms.Form):
    """Whom to tell when a device disconnects or reconnects (``devices.alerts``). On a device's
    page ``mode`` chooses between the owner's default, settings of its own, and none."""

    MODES = [
        ("default", "Use my default alerts"),
        ("custom", "Alerts of its own"),
        ("off", "No alerts for this device"),
    ]

    mode = forms.ChoiceField(choices=MODES, widget=forms.RadioSelect, initial="default")
    on_disconnect = forms.BooleanField(
        label="When it disconnects",
        required=False,
        initial=True,
        help_text="Its connection timeout passed without a call.",
    )
    on_reconnect = forms.BooleanField(
        label="When it reconnects",
        required=False,
        initial=True,
        help_text="Its first call after being disconnected.",
    )
    endpoints = forms.ModelMultipleChoiceField(
        label="Endpoints to call",
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each gets the device, its state, and the time of its last call.",
    )
    quiet_minutes = forms.IntegerField(
        label="Quiet period (minutes)",
        required=False,
        min_value=0,
        max_value=QUIET_MAX_MINUTES,
        initial=15,
        help_text="After an alert, another of the same kind for the device waits this long; a "
        "device that changed meanwhile is reported in its state at the end.",
    )

    def __init__(self, *args, endpoints, per_device, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoints"].queryset = endpoints
        self.fields["endpoints"].label_from_instance = lambda endpoint: (
            f"{endpoint.identifier} ({endpoint.name})" if endpoint.name else endpoint.identifier
        )
        self.per_device = per_device
        if not per_device:
            del self.fields["mode"]
            self.fields["enabled"] = forms.BooleanField(
                label="Alerts on", required=False, initial=True
            )

    @staticmethod
    def initial_for(rule, *, per_device):
        if rule is None:
            return {"mode": "default"} if per_device else {}
        mode = "custom" if rule.enabled else "off"
        return {
            "mode": mode,
            "enabled": rule.enabled,
            "on_disconnect": rule.on_disconnect,
            "on_reconnect": rule.on_reconnect,
            "endpoints": list(rule.endpoints.all()),
            "quiet_minutes": rule.quiet_minutes,
        }

    def clean(self):
        data = super().clean()
        wanted = data.get("mode", "custom") == "custom" and data.get("enabled", True)
        if wanted and not data.get("endpoints"):
            self.add_error("endpoints", "Choose at least one endpoint to call.")
        if wanted and not (data.get("on_disconnect") or data.get("on_reconnect")):
            self.add_error(
                "on_disconnect", "Choose when to alert: on disconnect, reconnect or both."
            )
        return data

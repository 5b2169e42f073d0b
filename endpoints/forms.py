"""Console forms for endpoints: the endpoint itself, and one configuration form per type.

The page renders every type's fields and shows those of the chosen type; only that form is
validated, then ``endpoints.kinds`` (through the services) checks the configuration, and its
``config.<field>`` errors land on the matching field.
"""

from django import forms

from core.forms import parse_json_text
from core.identifiers import IDENTIFIER_MAX_LENGTH, identifier_validator
from endpoints.kinds import (
    KINDS,
    METHODS,
    EmailKind,
    HttpDeviceKind,
    HttpRequestKind,
    IftttKind,
    SmsKind,
    TelegramKind,
    endpoint_templates,
)
from endpoints.models import Endpoint

PLACEHOLDER_HELP = "Placeholders: {{field}} a field of the call's JSON, {{}} the whole JSON."


def _text(label, *, required=False, help_text="", placeholder="", textarea=False, code=False):
    attrs = {}
    if placeholder:
        attrs["placeholder"] = placeholder
    if code:
        attrs["class"] = "code"
        attrs["spellcheck"] = "false"
    if textarea:
        attrs.setdefault("rows", 4)
        widget = forms.Textarea(attrs=attrs)
    else:
        widget = forms.TextInput(attrs=attrs)
    return forms.CharField(
        label=label, required=required, help_text=help_text, widget=widget, strip=not textarea
    )


class EndpointForm(forms.Form):
    identifier = forms.CharField(
        label="Endpoint ID",
        max_length=IDENTIFIER_MAX_LENGTH,
        validators=[identifier_validator],
        help_text="1 to 32 letters, digits, '_' or '-'. It cannot change.",
        widget=forms.TextInput(attrs={"autofocus": True, "placeholder": "e.g. notify_slack"}),
    )
    name = forms.CharField(label="Endpoint Name", max_length=255, required=False)
    description = forms.CharField(label="Description", max_length=255, required=False)
    type = forms.ChoiceField(
        label="Type",
        choices=Endpoint.Type.choices,
        widget=forms.Select(attrs={"data-endpoint-type-select": True}),
    )
    enabled = forms.BooleanField(
        label="Enabled",
        required=False,
        initial=True,
        help_text="A disabled endpoint is not called; its calls fail with a clear error.",
    )

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["identifier"]


class ConfigForm(forms.Form):
    """The configuration of one kind of endpoint (``kind``, whose type and description it
    shows); ``config()`` is what the kind checks."""

    kind = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.type, cls.description = cls.kind.type, cls.kind.description

    def config(self):
        return {name: self.cleaned_data.get(name, "") for name in self.fields}

    @classmethod
    def initial_from(cls, config):
        return {name: config.get(name, "") for name in cls.base_fields}


class HttpRequestConfigForm(ConfigForm):
    kind = HttpRequestKind

    url = _text(
        "URL",
        required=True,
        placeholder="https://example.com/hook",
        help_text="An http:// or https:// URL. " + PLACEHOLDER_HELP,
    )
    method = forms.ChoiceField(label="Method", choices=[(m, m) for m in METHODS], initial="POST")
    headers = _text(
        "Headers",
        textarea=True,
        code=True,
        placeholder="X-Api-Key: 1234",
        help_text="One per line, as Name: value.",
    )
    body_type = forms.ChoiceField(
        label="Body",
        choices=[("json", "The call's JSON"), ("custom", "Custom body")],
        initial="json",
    )
    body = _text(
        "Custom body",
        textarea=True,
        code=True,
        placeholder='{"temperature": {{temperature}}}',
        help_text="Used when Body is “Custom body” (or as a JSON template). " + PLACEHOLDER_HELP,
    )

    def clean_headers(self):
        headers = []
        for number, line in enumerate(self.cleaned_data["headers"].splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition(":")
            if not sep or not key.strip():
                raise forms.ValidationError(f"Line {number}: write it as Name: value.")
            headers.append({"key": key.strip(), "value": value.strip()})
        return headers

    @classmethod
    def initial_from(cls, config):
        initial = super().initial_from(config)
        initial["headers"] = "\n".join(
            f"{h.get('key', '')}: {h.get('value', '')}"
            for h in config.get("headers") or []
            if isinstance(h, dict)
        )
        initial["method"] = config.get("method") or "POST"
        initial["body_type"] = config.get("body_type") or "json"
        return initial


class EmailConfigForm(ConfigForm):
    kind = EmailKind

    recipient = _text(
        "Recipients", required=True, placeholder="ops@example.com", help_text="Comma-separated."
    )
    reply_to = _text("Reply-To", placeholder="optional")
    subject = _text("Subject", placeholder="Greenhouse alert from {{device}}")
    body_type = forms.ChoiceField(
        label="Format", choices=[("text", "Plain text"), ("html", "HTML")], initial="text"
    )
    body = _text("Message", textarea=True, help_text=PLACEHOLDER_HELP)


class IftttConfigForm(ConfigForm):
    kind = IftttKind

    event = _text("Event name", required=True, placeholder="greenhouse_alert")
    key = _text("Webhooks key", required=True, help_text="From IFTTT's Webhooks settings page.")
    value1 = _text("Value 1", placeholder="{{temperature}}", help_text=PLACEHOLDER_HELP)
    value2 = _text("Value 2")
    value3 = _text("Value 3")


class TelegramConfigForm(ConfigForm):
    kind = TelegramKind

    bot_token = _text("Bot token", required=True, placeholder="123456:ABC-def")
    chat_id = _text("Chat ID", required=True, placeholder="-1001234567890")
    text = _text(
        "Message",
        required=True,
        textarea=True,
        placeholder="{{device}}: temperature is {{temperature}} °C",
        help_text=PLACEHOLDER_HELP,
    )


class SmsConfigForm(ConfigForm):
    kind = SmsKind

    account_sid = _text("Account SID", required=True)
    auth_token = _text("Auth token", required=True)
    from_ = _text("From", required=True, placeholder="+15005550006")
    to = _text("To", required=True, placeholder="+34600000000")
    body = _text("Message", required=True, textarea=True, help_text=PLACEHOLDER_HELP)


# "from" is a keyword in Python: the field is declared as from_ and renamed here, in place.
SmsConfigForm.base_fields = {
    ("from" if name == "from_" else name): field
    for name, field in SmsConfigForm.base_fields.items()
}


class HttpDeviceConfigForm(ConfigForm):
    kind = HttpDeviceKind

    url = _text(
        "Callback URL",
        required=True,
        placeholder="https://iot.example.com/v3/users/alice/devices/sensor/callback/data",
    )
    token = _text("Authorization token", required=True, help_text="The device's callback token.")


_FORMS = {
    form.type: form
    for form in (
        HttpRequestConfigForm,
        EmailConfigForm,
        IftttConfigForm,
        TelegramConfigForm,
        SmsConfigForm,
        HttpDeviceConfigForm,
    )
}
# One per kind, in the kinds' order (a kind without a form fails here, at import).
CONFIG_FORMS = {type_: _FORMS[type_] for type_ in KINDS}


def default_configs():
    """Each type's starting configuration: its first ready template's."""
    configs = {}
    for template in endpoint_templates():
        configs.setdefault(template["type"], template["config"])
    return configs


def config_forms(data=None, *, chosen=None, type=None, config=None):
    """One form per type, prefixed with the type; ``config`` fills ``type``'s.

    Only the ``chosen`` type's form is bound to ``data``: the page sends the fields of that type
    alone, so the others, unbound, show their starting values and no errors when the user
    switches to them.
    """
    defaults = default_configs()
    forms_ = []
    for kind, form_class in CONFIG_FORMS.items():
        initial = form_class.initial_from(
            config if kind == type and config is not None else defaults.get(kind, {})
        )
        forms_.append(form_class(data if kind == chosen else None, prefix=kind, initial=initial))
    return forms_


class TestCallForm(forms.Form):
    payload = forms.CharField(
        label="Test payload (JSON)",
        widget=forms.Textarea(attrs={"class": "code", "rows": 3, "spellcheck": "false"}),
        initial='{"temperature": 21.5}',
        help_text="What a device's call would carry; placeholders are filled from it.",
    )

    def clean_payload(self):
        return parse_json_text(self.cleaned_data["payload"])

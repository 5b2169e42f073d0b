"""The console's dashboard form: its settings, and its widgets and layout as JSON (the visual
editor comes later). The form checks that the boxes hold JSON; ``dashboards.services`` checks
what the JSON says, and the view puts its errors on the boxes."""

import json

from django import forms

from core.identifiers import IDENTIFIER_MAX_LENGTH, identifier_validator
from core.text import validate_storable


class JSONTextField(forms.CharField):
    """A JSON document typed as text, shown indented; an empty box is ``empty``."""

    widget = forms.Textarea

    def __init__(self, *, empty, **kwargs):
        self.empty = empty
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return self.empty
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        validate_storable(value)
        return value

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class DashboardForm(forms.Form):
    identifier = forms.CharField(
        label="Dashboard ID",
        max_length=IDENTIFIER_MAX_LENGTH,
        validators=[identifier_validator],
        help_text="1 to 32 letters, digits, '_' or '-'. Used in the API's URLs; it cannot change.",
        widget=forms.TextInput(attrs={"autofocus": True, "placeholder": "e.g. greenhouse"}),
    )
    name = forms.CharField(
        label="Dashboard Name",
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Greenhouse"}),
    )
    description = forms.CharField(label="Description", max_length=255, required=False)
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    device_from_selector = forms.BooleanField(
        label="Device from a selector",
        required=False,
        help_text="A selector at the top of the dashboard picks the device that its widgets "
        "naming a device read (properties, status), so one dashboard serves every device of "
        "the same kind; by default the first device they name. Buckets stay as they are.",
    )
    widgets = JSONTextField(
        label="Widgets (JSON)",
        empty=[],
        required=False,
        initial=[],
        help_text="A list of widgets, each with an id, a type and a source: see the example.",
        widget=forms.Textarea(attrs={"class": "code", "rows": 18, "spellcheck": "false"}),
    )
    layout = JSONTextField(
        label="Layout (JSON)",
        empty={},
        required=False,
        initial={},
        help_text="Where each widget goes on a grid of 12 columns: "
        '{"widget id": {"x": 0, "y": 0, "w": 4, "h": 3}}. A widget without a place goes '
        "below the others.",
        widget=forms.Textarea(attrs={"class": "code", "rows": 8, "spellcheck": "false"}),
    )

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["identifier"]

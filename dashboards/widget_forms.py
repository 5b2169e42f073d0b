"""The console's widget form: one widget of a dashboard, field by field instead of JSON.

The form has the fields its kind needs (the sources it reads, its options); ``widget()`` builds
the widget object from them and ``dashboards.widgets`` with ``dashboards.services`` check it,
as they check the JSON. Their errors name a path (``widgets[3].source.device``): ``add_errors``
puts each on the form's field for that path.
"""

import json
import re
from datetime import UTC, datetime

from django import forms
from django.utils import timezone

from buckets.aggregates import AGG_TYPES
from core.forms import parse_json_text
from core.times import to_ms
from dashboards.widgets import (
    DEFAULT_RANGE,
    DEVICE_FIELDS,
    MAX_RANGES,
    TEXT_MAX,
    UNIT_MAX,
)

RANGE_ROWS = 4
SWITCH_HELP = {
    "on": "JSON: true, 1 or &quot;on&quot;. Empty: true.",
    "off": "JSON: false, 0 or &quot;off&quot;. Empty: false.",
}
SOURCE_LABELS = {
    "property": "A device property",
    "bucket": "A data bucket",
    "device": "The device's status",
}
DEVICE_FIELD_LABELS = {
    "status": "Connected or not",
    "last_call": "Time of the last call",
    "calls_today": "Calls today",
}
# The form's fields each source kind uses (console.js hides the others).
SOURCE_FIELDS = {
    "property": ("device", "property", "field"),
    "bucket": ("bucket", "field", "fields", "range_mode", "range_last", "range_from", "range_to"),
    "device": ("device", "device_field"),
}
_COLOUR_INPUT = {"placeholder": "#rrggbb", "pattern": "#[0-9a-fA-F]{6}", "class": "colour"}


def _label(obj):
    return f"{obj.identifier} — {obj.name}" if obj.name else obj.identifier


def _choices(noun, rows):
    return [("", f"Choose a {noun}…"), *rows]


def _number(value):
    """A float from a form as the JSON keeps it: whole numbers as integers."""
    if value is None:
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _datetime_field(label):
    return forms.DateTimeField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class JSONOptionField(forms.CharField):
    """A switch's value typed as JSON (``true``, ``1``, ``"on"``); an empty box leaves the
    option out."""

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        return parse_json_text(text, hint='Text must be in double quotes, e.g. "on".')


def _json_text(value):
    return json.dumps(value, ensure_ascii=False)


class WidgetForm(forms.Form):
    """A widget of ``kind`` (a ``dashboards.widgets.Kind``) reading the user's own ``devices``,
    ``properties`` and ``buckets``."""

    title = forms.CharField(label="Title", max_length=TEXT_MAX, required=False)
    subtitle = forms.CharField(label="Subtitle", max_length=TEXT_MAX, required=False)
    background = forms.CharField(
        label="Background colour",
        required=False,
        help_text="Written #rrggbb, such as #f0fdf4. Empty: the console's own.",
        widget=forms.TextInput(attrs=_COLOUR_INPUT),
    )

    def __init__(self, *args, kind, devices=(), properties=(), buckets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.ranges = 0
        self._source_fields(kind, devices, properties, buckets)
        self._option_fields(kind)

    # --- Fields -------------------------------------------------------------------------------

    def _source_fields(self, kind, devices, properties, buckets):
        sources = kind.sources
        self.fields["source_kind"] = forms.ChoiceField(
            label="Shows",
            choices=[(name, SOURCE_LABELS[name]) for name in sources],
            initial=sources[0],
            widget=forms.Select(attrs={"data-source-kind": True}),
        )
        if "property" in sources or "device" in sources:
            self.fields["device"] = forms.ChoiceField(
                label="Device",
                required=False,
                choices=_choices("device", [(d.identifier, _label(d)) for d in devices]),
                widget=forms.Select(attrs={"data-searchable": "devices"}),
            )
        if "property" in sources:
            # A property's id is its device's: the list names each once, with its devices,
            # and the service says when the device chosen has no such property.
            on = {}
            for prop in properties:
                on.setdefault(prop.identifier, []).append(prop.device.identifier)
            self.fields["property"] = forms.ChoiceField(
                label="Property",
                required=False,
                choices=_choices(
                    "property",
                    [(ident, f"{ident} (on {', '.join(names)})") for ident, names in on.items()],
                ),
                widget=forms.Select(attrs={"data-searchable": "properties"}),
            )
        if "bucket" in sources:
            self.fields["bucket"] = forms.ChoiceField(
                label="Bucket",
                required=False,
                choices=_choices("bucket", [(b.identifier, _label(b)) for b in buckets]),
                widget=forms.Select(attrs={"data-searchable": "buckets"}),
            )
        if kind.type == "chart":
            self.fields["fields"] = forms.CharField(
                label="Fields",
                required=False,
                help_text="The record fields to draw, one series each, separated by commas: "
                "temperature, humidity.",
            )
        elif kind.type != "device_status":
            self.fields["field"] = forms.CharField(
                label="Field",
                required=False,
                help_text="Optional: a field of the value, such as temperature or gps.lat."
                if kind.type != "map"
                else "Optional, for a property: the field holding the position.",
            )
        if "device" in sources and kind.type != "device_status":
            self.fields["device_field"] = forms.ChoiceField(
                label="Device figure",
                required=False,
                choices=[(name, DEVICE_FIELD_LABELS[name]) for name in DEVICE_FIELDS],
            )
        if kind.series:
            self.fields["range_mode"] = forms.ChoiceField(
                label="Records",
                choices=[("last", "The last…"), ("between", "Between two times")],
                initial="last",
                widget=forms.RadioSelect(attrs={"data-range-mode": True}),
            )
            self.fields["range_last"] = forms.CharField(
                label="The last",
                required=False,
                initial=DEFAULT_RANGE["last"],
                help_text="An interval: 15m, 1h, 1d, 1w or 30d.",
            )
            self.fields["range_from"] = _datetime_field("From")
            self.fields["range_to"] = _datetime_field("To")
            self.fields["range_to"].help_text = "Empty: up to now."
        if kind.type == "chart":
            self.fields["agg_interval"] = forms.CharField(
                label="Aggregate by",
                required=False,
                help_text="Optional: one point per interval (5m, 1h, 1d), worked out by the "
                "database.",
            )
            self.fields["agg_type"] = forms.ChoiceField(
                label="Aggregation",
                required=False,
                choices=[("", "Mean (default)"), *((name, name) for name in AGG_TYPES)],
            )

    def _option_fields(self, kind):
        options = kind.options
        if "unit" in options:
            self.fields["unit"] = forms.CharField(label="Unit", max_length=UNIT_MAX, required=False)
        if "decimals" in options:
            self.fields["decimals"] = forms.IntegerField(
                label="Decimals", required=False, min_value=0, max_value=6
            )
        for name in ("min", "max", "step"):
            if name in options:
                self.fields[name] = forms.FloatField(
                    label=name.capitalize(),
                    required=False,
                    widget=forms.NumberInput(
                        attrs={"step": "any", "placeholder": self._default(kind, name)}
                    ),
                )
        if "color" in options:
            self.fields["color"] = forms.CharField(
                label="Colour",
                required=False,
                help_text="Written #rrggbb. Empty: the console's own.",
                widget=forms.TextInput(attrs=_COLOUR_INPUT),
            )
        if "blink" in options:
            self.fields["blink"] = forms.BooleanField(label="Blink when on", required=False)
        for name in ("lat", "lng"):
            if name in options:
                self.fields[name] = forms.CharField(
                    label="Latitude field" if name == "lat" else "Longitude field",
                    required=False,
                    widget=forms.TextInput(attrs={"placeholder": name}),
                )
        for name in ("on", "off"):
            if name in options:
                self.fields[name] = JSONOptionField(
                    label=f"Value when {name}",
                    required=False,
                    help_text=SWITCH_HELP[name],
                    widget=forms.TextInput(attrs={"class": "mono"}),
                )
        if "ranges" in options:
            kept = len(self.initial.get("ranges", ()))
            self.ranges = min(MAX_RANGES, max(RANGE_ROWS, kept))
            for row in range(self.ranges):
                self.fields[f"range_{row}_from"] = forms.FloatField(
                    label=f"Range {row + 1} from",
                    required=False,
                    widget=forms.NumberInput(attrs={"step": "any"}),
                )
                self.fields[f"range_{row}_to"] = forms.FloatField(
                    label=f"Range {row + 1} to",
                    required=False,
                    widget=forms.NumberInput(attrs={"step": "any"}),
                )
                self.fields[f"range_{row}_color"] = forms.CharField(
                    label=f"Range {row + 1} colour",
                    required=False,
                    widget=forms.TextInput(attrs=_COLOUR_INPUT),
                )

    @staticmethod
    def _default(kind, name):
        if name == "step":
            return "1"
        return str(kind.scale[0] if name == "min" else kind.scale[1])

    # --- For the template ---------------------------------------------------------------------

    def groups(self):
        """The bound fields in three groups: the widget, its source, its options."""
        widget_names = ("title", "subtitle", "background")
        source_names = (
            "source_kind",
            "device",
            "property",
            "bucket",
            "device_field",
            "field",
            "fields",
            "range_mode",
            "range_last",
            "range_from",
            "range_to",
            "agg_interval",
            "agg_type",
        )
        taken = {*widget_names, *source_names}
        options = [
            self[name]
            for name in self.fields
            if name not in taken and not name.startswith("range_")
        ]
        return {
            "widget": [self[name] for name in widget_names],
            "source": [self[name] for name in source_names if name in self.fields],
            "options": options,
        }

    def range_rows(self):
        return [
            [self[f"range_{row}_{part}"] for part in ("from", "to", "color")]
            for row in range(self.ranges)
        ]

    def source_fields(self):
        """``{field name: the source kinds using it}``, for the script that hides the rest."""
        using = {}
        for source in self.kind.sources:
            for name in SOURCE_FIELDS[source]:
                if name in self.fields:
                    using.setdefault(name, []).append(source)
        return using

    # --- Checks -------------------------------------------------------------------------------

    def clean(self):
        data = super().clean()
        for row in range(self.ranges):
            parts = [data.get(f"range_{row}_{part}") for part in ("from", "to", "color")]
            if any(part not in (None, "") for part in parts) and any(
                part in (None, "") for part in parts
            ):
                self.add_error(f"range_{row}_from", "Give the range a from, a to and a colour.")
        between = data.get("range_mode") == "between"
        if between and data.get("range_from") is None and "range_from" not in self.errors:
            self.add_error("range_from", "Give the time the records start from.")
        return data

    # --- The widget object --------------------------------------------------------------------

    def widget(self, ident):
        """The widget these fields describe, with the id ``ident`` (checked by the service)."""
        data = self.cleaned_data
        widget = {"id": ident, "type": self.kind.type}
        for name in ("title", "subtitle", "background"):
            if data.get(name):
                widget[name] = data[name]
        widget["source"] = self._source(data)
        options = self._options(data)
        if options:
            widget["options"] = options
        return widget

    def _source(self, data):
        kind = data["source_kind"]
        source = {"kind": kind}
        if kind in ("property", "device"):
            source["device"] = data.get("device", "")
        if kind == "property":
            source["property"] = data.get("property", "")
        if kind == "bucket":
            source["bucket"] = data.get("bucket", "")
        if kind == "device":
            if self.kind.type != "device_status":
                source["field"] = data.get("device_field", "")
        elif self.kind.type == "chart":
            source["fields"] = [
                part.strip() for part in data.get("fields", "").split(",") if part.strip()
            ]
        elif data.get("field"):
            source["field"] = data["field"]
        if self.kind.series and kind == "bucket":
            if data.get("range_mode") == "between":
                source["range"] = {"from": to_ms(data["range_from"])}
                if data.get("range_to") is not None:
                    source["range"]["to"] = to_ms(data["range_to"])
            elif data.get("range_last"):
                source["range"] = {"last": data["range_last"].strip()}
        if self.kind.type == "chart" and data.get("agg_interval"):
            source["aggregation"] = {"interval": data["agg_interval"].strip()}
            if data.get("agg_type"):
                source["aggregation"]["type"] = data["agg_type"]
        return source

    def _options(self, data):
        options = {}
        for name in ("unit", "color", "lat", "lng"):
            if data.get(name):
                options[name] = data[name]
        if data.get("decimals") is not None:
            options["decimals"] = data["decimals"]
        for name in ("min", "max", "step"):
            if data.get(name) is not None:
                options[name] = _number(data[name])
        for name in ("on", "off"):
            if data.get(name) is not None:
                options[name] = data[name]
        if data.get("blink"):
            options["blink"] = True
        ranges = []
        for row in range(self.ranges):
            low, high, colour = (
                data.get(f"range_{row}_{part}") for part in ("from", "to", "color")
            )
            if low is not None and high is not None and colour:
                ranges.append({"from": _number(low), "to": _number(high), "color": colour})
        if ranges:
            options["ranges"] = ranges
        return options

    # --- Errors -------------------------------------------------------------------------------

    def add_errors(self, found, index):
        """Put the service's errors (``{"widgets[3].options.max": [...]}``) of the widget at
        ``index`` on their fields; the others (another widget's, the layout's) at the top."""
        prefix = f"widgets[{index}]."
        for key, messages in found.items():
            name = self._field_for(key[len(prefix) :]) if key.startswith(prefix) else None
            for message in messages:
                if name in self.fields:
                    self.add_error(name, message)
                else:
                    self.add_error(None, f"{key}: {message}" if name is None else message)

    def _field_for(self, path):
        """The form's field for a path within the widget (``source.range.last``)."""
        source_kind = self.data.get("source_kind")
        if path.startswith("source."):
            rest = path[len("source.") :]
            head = re.split(r"[.\[]", rest, maxsplit=1)[0]
            if head == "range":
                tail = rest[len("range.") :] if rest.startswith("range.") else ""
                return {"last": "range_last", "from": "range_from", "to": "range_to"}.get(
                    tail, "range_last" if self.data.get("range_mode") != "between" else "range_from"
                )
            if head == "aggregation":
                return "agg_type" if rest.endswith(".type") else "agg_interval"
            if head == "field" and source_kind == "device":
                return "device_field"
            return {"kind": "source_kind"}.get(head, head)
        if path.startswith("options."):
            name = re.split(r"[.\[]", path[len("options.") :], maxsplit=1)[0]
            return "range_0_from" if name == "ranges" else name
        return path


def initial_for(widget):
    """The form's values for a widget of the dashboard."""
    source = widget.get("source", {})
    options = widget.get("options", {})
    initial = {
        "title": widget.get("title", ""),
        "subtitle": widget.get("subtitle", ""),
        "background": widget.get("background", ""),
        "source_kind": source.get("kind"),
        "device": source.get("device", ""),
        "property": source.get("property", ""),
        "bucket": source.get("bucket", ""),
    }
    if source.get("kind") == "device":
        initial["device_field"] = source.get("field", "")
    else:
        initial["field"] = source.get("field", "")
    if "fields" in source:
        initial["fields"] = ", ".join(source["fields"])
    span = source.get("range")
    if span and "from" in span:
        initial["range_mode"] = "between"
        initial["range_from"] = _local(span["from"])
        initial["range_to"] = _local(span.get("to"))
        initial["range_last"] = ""
    elif span:
        initial.update(range_mode="last", range_last=span["last"])
    aggregation = source.get("aggregation", {})
    initial["agg_interval"] = aggregation.get("interval", "")
    initial["agg_type"] = aggregation.get("type", "")
    for name in ("unit", "decimals", "min", "max", "step", "color", "blink", "lat", "lng"):
        if name in options:
            initial[name] = options[name]
    for name in ("on", "off"):
        if name in options:
            initial[name] = _json_text(options[name])
    ranges = options.get("ranges", [])
    initial["ranges"] = ranges
    for row, item in enumerate(ranges):
        initial.update(
            {
                f"range_{row}_from": item["from"],
                f"range_{row}_to": item["to"],
                f"range_{row}_color": item["color"],
            }
        )
    return initial


def _local(ms):
    if ms is None:
        return None
    return timezone.localtime(datetime.fromtimestamp(ms / 1000, tz=UTC)).replace(tzinfo=None)

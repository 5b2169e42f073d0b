"""Console forms for buckets: settings, export, clear, and the chart's range."""

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from buckets.models import Bucket, BucketExport
from core.identifiers import IDENTIFIER_MAX_LENGTH, identifier_validator
from core.times import to_ms


class BucketForm(forms.Form):
    identifier = forms.CharField(
        label="Bucket ID",
        max_length=IDENTIFIER_MAX_LENGTH,
        validators=[identifier_validator],
        help_text="1 to 32 letters, digits, '_' or '-'. Used in the API's URLs; it cannot change.",
        widget=forms.TextInput(attrs={"autofocus": True, "placeholder": "e.g. greenhouse_data"}),
    )
    name = forms.CharField(
        label="Bucket Name",
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Greenhouse readings"}),
    )
    description = forms.CharField(label="Description", max_length=255, required=False)
    enabled = forms.BooleanField(
        label="Enabled",
        required=False,
        initial=True,
        help_text="A disabled bucket stores nothing; device callbacks still answer 200.",
    )
    retention_period = forms.IntegerField(
        label="Keep records for",
        required=False,
        min_value=1,
        help_text="Older records are deleted every hour. Leave empty to keep them forever.",
        widget=forms.NumberInput(attrs={"placeholder": "forever"}),
    )
    retention_unit = forms.ChoiceField(
        label="Unit", choices=Bucket.RetentionUnit.choices, initial=Bucket.RetentionUnit.MONTHS
    )

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["identifier"]


def _datetime_field(label):
    return forms.DateTimeField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class _RangeForm(forms.Form):
    """A scope of ``all`` or ``range`` with from and to (inclusive), in the server's time zone."""

    scope = forms.ChoiceField(
        label="Records",
        choices=[("all", "All records"), ("range", "A time range")],
        initial="all",
        widget=forms.RadioSelect,
    )
    start = _datetime_field("From")
    end = _datetime_field("To")

    def clean(self):
        data = super().clean()
        if data.get("scope") != "range":
            return data
        start, end = data.get("start"), data.get("end")
        if start is None and end is None and not self.errors:
            self.add_error("start", "Give a start, an end, or both.")
        if start and end and start > end:
            self.add_error("end", "The end must be after the start.")
        return data

    def bounds(self):
        """(min_ts, max_ts) in milliseconds; None is open."""
        if self.cleaned_data.get("scope") != "range":
            return None, None
        end = self.cleaned_data.get("end")
        if end is not None:
            # A minute-precision "to" includes the whole of that minute.
            end = end + timedelta(seconds=59, microseconds=999000)
        return to_ms(self.cleaned_data.get("start")), to_ms(end)


class ExportForm(_RangeForm):
    prefix = "export"

    data_type = forms.ChoiceField(
        label="Format", choices=BucketExport.DataType.choices, initial=BucketExport.DataType.CSV
    )
    timestamp_format = forms.ChoiceField(
        label="Timestamps",
        choices=BucketExport.TimestampFormat.choices,
        initial=BucketExport.TimestampFormat.ISO,
    )
    field_order = ["data_type", "timestamp_format", "scope", "start", "end"]


class ClearForm(_RangeForm):
    prefix = "clear"


CHART_RANGES = {
    "latest": ("Latest records", None),
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(days=1)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}


class ChartRangeForm(forms.Form):
    range = forms.ChoiceField(
        label="Range",
        choices=[(key, label) for key, (label, _) in CHART_RANGES.items()],
        required=False,
        widget=forms.Select(attrs={"data-autosubmit": True}),
    )

    def bounds(self, now: datetime | None = None):
        """(min_ts, max_ts) in milliseconds: the range ending now; (None, None) for the latest
        records."""
        key = self.cleaned_data.get("range") if self.is_valid() else None
        delta = CHART_RANGES.get(key or "latest")[1]
        if delta is None:
            return None, None
        now = now or timezone.now()
        return to_ms(now - delta), to_ms(now)

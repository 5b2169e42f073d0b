"""The admin's shared pieces: owned assets, read-only rows, JSON shown on one line or indented."""

import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html


def json_preview(value, length=80):
    """A JSON value on one line, cut to ``length`` characters for a changelist column."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= length else f"{text[: length - 1]}…"


def json_block(value):
    """A JSON value indented, for a read-only field of a change page."""
    return format_html("<pre>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


class IndentedJSONField(forms.JSONField):
    """JSON shown indented in its textarea, so that a configuration (an endpoint's, a
    dashboard's widgets) is readable."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class OwnedAdmin(admin.ModelAdmin):
    """Devices, buckets and endpoints keep their owner and id once created, as in the API: a
    device's token names both, and callback settings reference the owner's buckets and
    endpoints."""

    def get_fields(self, request, obj=None):
        # A new object's form starts with whose it is and its id (the model lists its shared
        # fields first); an existing object's shows them read-only at the end.
        fields = super().get_fields(request, obj)
        if obj is not None:
            return fields
        return ["owner", "identifier", *(f for f in fields if f not in ("owner", "identifier"))]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return [*readonly, "owner", "identifier"] if obj else readonly


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only, for rows the system writes (statistics, events, records, calls). Deleting
    stays allowed: without it the admin refuses to delete the devices, buckets and endpoints
    these rows belong to."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

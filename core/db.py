"""Small database helpers shared by the apps' services."""

import json

import orjson
from django.utils import timezone


def save_changes(instance, fields):
    """Write only ``fields`` of a row that must still exist.

    An UPDATE of those columns: a concurrent writer of other columns (a callback, the sweep) keeps
    its change, and a row deleted meanwhile raises the model's DoesNotExist (a 404 in the API)
    instead of being resurrected by an INSERT or failing with a database error.
    """
    model = type(instance)
    fields = list(dict.fromkeys(fields))
    if any(field.name == "modified" for field in model._meta.concrete_fields):
        instance.modified = timezone.now()
        fields = [*fields, "modified"] if "modified" not in fields else fields
    values = {name: getattr(instance, name) for name in fields}
    if not model._default_manager.filter(pk=instance.pk).update(**values):
        raise model.DoesNotExist(f"this {model._meta.verbose_name} no longer exists")
    return instance


def json_dumps(value):
    """``value`` (parsed from JSON, so its numbers are finite) as JSON text: orjson, which writes
    what the standard library would, and the standard library for what orjson refuses (integers
    beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)

"""Small database helpers shared by the apps' services."""

import json

import orjson
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import UniqueConstraint
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
        raise gone(instance)
    return instance


def duplicate_message(model, field="identifier"):
    """The message of ``model``'s unique constraint on ``field`` (with its owner or device): the
    answer to a duplicate id wherever one is refused."""
    [constraint] = [
        c for c in model._meta.constraints if isinstance(c, UniqueConstraint) and field in c.fields
    ]
    return constraint.violation_error_message


def insert_unique(instance, field="identifier"):
    """INSERT a new, validated ``instance`` whose ``field`` is unique (with its owner or device).

    A concurrent create of the same id may commit between the validation and the INSERT, which
    then fails on the constraint: that is the ValidationError the validation would have given a
    moment later, not a 500. The savepoint keeps the caller's transaction usable.
    """
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ValidationError({field: [duplicate_message(type(instance), field)]}) from None
    return instance


def updatable(function, fields, allowed):
    """Refuse fields a partial-update service does not change: a caller's mistake (the API's and
    the console's inputs only carry allowed ones), a TypeError as for a wrong keyword."""
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"{function}() got unexpected fields {sorted(unknown)}")


def gone(instance):
    """The DoesNotExist of ``instance``'s model: its row was deleted by a concurrent request (a
    404 in the API)."""
    model = type(instance)
    return model.DoesNotExist(f"this {model._meta.verbose_name} no longer exists")


def lock_existing(instance):
    """Lock the row of ``instance`` until the caller's transaction ends, or raise its model's
    DoesNotExist if a concurrent request deleted it since it was read.

    For services that write rows referencing it: without the lock such a row would reference
    nothing, which the database refuses only at commit (a 500). The lock (PostgreSQL's FOR NO
    KEY UPDATE) keeps a DELETE out and lets other updates of the row wait only for this
    transaction; on SQLite the transaction already holds the database's write lock.
    """
    model = type(instance)
    rows = model._default_manager.select_for_update(no_key=True).filter(pk=instance.pk)
    if rows.values_list("pk", flat=True).first() is None:
        raise gone(instance)
    return instance


def json_dumps(value):
    """``value`` (parsed from JSON, so its numbers are finite) as JSON text: orjson, which writes
    what the standard library would, and the standard library for what orjson refuses (integers
    beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)

"""Devices, their callback settings and their properties: the writes (HackSoft's services), and
the deletion of users with all they own (devices are the top layer: the only app that sees all
of it).

The device callback itself is ``devices.callback``; the connection-timeout sweep is
``devices.sweep``.
"""

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from buckets.models import Bucket
from buckets.services import bucket_delete
from core.db import gone, insert_unique, lock_existing, save_changes, updatable
from core.events import publish
from core.identifiers import new_token_generation
from devices.callback.rules import deadline
from devices.events import PROPERTY_UPDATE
from devices.models import (
    CALLBACK_ACTIONS,
    TIMEOUT_MAX_MINUTES,
    AlertSettings,
    CallbackSettings,
    Device,
    Property,
)


@transaction.atomic
def device_create(*, owner, identifier, name="", description="", enabled=True):
    """A new HTTP device with its (empty) callback settings; a duplicate id is a
    ValidationError."""
    device = Device(
        owner=owner, identifier=identifier, name=name, description=description, enabled=enabled
    )
    device.full_clean()
    insert_unique(device)
    CallbackSettings.objects.create(device=device)
    return device


def device_rotate_token(*, device):
    """Give the device a new token generation: every token issued before fails from now on."""
    generation = new_token_generation()
    while generation == device.token_generation:
        generation = new_token_generation()
    changed = Device.objects.filter(pk=device.pk).update(
        token_generation=generation, modified=timezone.now()
    )
    if not changed:
        raise gone(device)
    device.token_generation = generation
    return device


_DEVICE_FIELDS = {"name", "description", "enabled"}


@transaction.atomic
def device_update(*, device, **fields):
    """Change a device's name, description or enabled flag (a partial update).

    Only those columns are written, so a callback or sweep changing the connection state at the
    same time keeps its change.
    """
    updatable("device_update", fields, _DEVICE_FIELDS)
    if not fields:
        return device
    for name, value in fields.items():
        setattr(device, name, value)
    device.full_clean()
    return save_changes(device, fields)


@transaction.atomic
def device_delete(*, device):
    """Delete a device with its callback settings, properties, statistics and events; its
    endpoint call log stays, detached. Its token fails from now on (404, then 401 if an
    identical device is created: a new token generation). DoesNotExist if a concurrent request
    deleted it first."""
    deleted, _ = device.delete()
    if not deleted:
        raise gone(device)


# Devices per query when deleting many: bounded by the parameters of one statement, not by rows.
DEVICES_PER_DELETE = 5000


def device_delete_many(*, devices):
    """Delete the devices of a queryset as ``device_delete`` does, ``DEVICES_PER_DELETE`` at a
    time: the ORM lists the devices' ids in its queries (all of them in one, to detach their
    endpoint calls), and a PostgreSQL statement takes at most 65,535 parameters. Returns how
    many."""
    ids = list(devices.values_list("pk", flat=True))
    with transaction.atomic():
        for start in range(0, len(ids), DEVICES_PER_DELETE):
            Device.objects.filter(pk__in=ids[start : start + DEVICES_PER_DELETE]).delete()
    return len(ids)


@transaction.atomic
def users_delete(*, users):
    """Delete the users of a queryset with all they own.

    Their buckets go first through ``bucket_delete`` (records in set-based DELETEs, export files
    removed after commit), then their devices through ``device_delete_many`` (ids in chunks);
    deleting the users cascades to the rest (endpoints and their call logs, tokens, logins). Left
    to the ORM's cascade, every record would be loaded and all the devices' ids put in one query.
    """
    for bucket in Bucket.objects.filter(owner__in=users):
        bucket_delete(bucket=bucket)
    device_delete_many(devices=Device.objects.filter(owner__in=users))
    users.delete()


CALLBACK_TIMEOUT_MAX = TIMEOUT_MAX_MINUTES


def _action_target(device, action, identifier):
    """The object a callback action references: a property of the device, or a bucket or
    endpoint of the device's owner."""
    if identifier is None or identifier == "":
        return None
    model = CallbackSettings._meta.get_field(action).related_model
    kind = model._meta.verbose_name
    if not isinstance(identifier, str):
        raise ValidationError({action: f"must be the id of a {kind}, or null for none"})
    if model is Property:
        candidates = Property.objects.filter(device=device)
    else:
        candidates = model.objects.filter(owner_id=device.owner_id)
    found = candidates.filter(identifier=identifier).first()
    if found is None:
        raise ValidationError({action: f"there is no {kind} {identifier!r}"})
    return found


@transaction.atomic
def callback_settings_update(*, device, actions=None, timeout=None):
    """Set what the device's callback does.

    ``actions`` maps action names to ids (None or "" for off) and, when given, replaces the whole
    set: an absent action is off. ``timeout`` (minutes) is kept when None. A reference to a
    bucket, endpoint or property that does not exist is a ValidationError naming the action.
    A connected device's deadline moves with a new timeout, counted from its last call.
    """
    lock_existing(device)
    callback, _ = CallbackSettings.objects.select_for_update().get_or_create(device=device)
    if actions is not None:
        unknown = sorted(set(actions) - set(CALLBACK_ACTIONS))
        if unknown:
            raise ValidationError({unknown[0]: "unknown callback action"})
        for action in CALLBACK_ACTIONS:
            setattr(callback, action, _action_target(device, action, actions.get(action)))
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise ValidationError({"timeout": "must be a whole number of minutes"})
        if not 1 <= timeout <= CALLBACK_TIMEOUT_MAX:
            raise ValidationError({"timeout": f"must be from 1 to {CALLBACK_TIMEOUT_MAX} minutes"})
        callback.timeout = timeout
        if device.connected and device.last_call_at:
            device.timeout_at = deadline(device.last_call_at, callback.timeout)
            Device.objects.filter(pk=device.pk, connected=True).update(timeout_at=device.timeout_at)
    callback.save()
    return callback


def _check_json_value(value):
    """The value as JSON can hold it: the API and the console refuse the rest first, this is for
    the other callers (the admin, commands)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise ValidationError(
            {"value": "not JSON: NaN, Infinity and numbers too large to store are not JSON numbers"}
        ) from None


@transaction.atomic
def property_create(*, device, identifier, name="", description="", value=None):
    """A new property of the device; a duplicate id is a ValidationError."""
    _check_json_value(value)
    lock_existing(device)
    prop = Property(
        device=device, identifier=identifier, name=name, description=description, value=value
    )
    prop.full_clean()
    created = insert_unique(prop)
    _announce_value(created)
    return created


@transaction.atomic
def property_create_many(*, device, items):
    """New properties of the device from ``items`` (``property_create``'s arguments), all or
    none. The ValidationError of an item that fails names its position in ``index``."""
    created = []
    for index, fields in enumerate(items):
        try:
            created.append(property_create(device=device, **fields))
        except ValidationError as exc:
            exc.index = index
            raise
    return created


_PROPERTY_FIELDS = {"value", "name", "description"}


@transaction.atomic
def property_update(*, prop, **fields):
    """Replace a property's value and optionally its name or description; its id never changes.

    Only the given columns are written, so a callback's ``set_property`` meanwhile is not undone
    unless ``value`` is given.
    """
    updatable("property_update", fields, _PROPERTY_FIELDS)
    if not fields:
        return prop
    if "value" in fields:
        _check_json_value(fields["value"])
    for name, value in fields.items():
        setattr(prop, name, value)
    prop.full_clean()
    saved = save_changes(prop, fields)
    if "value" in fields:
        _announce_value(prop)
    return saved


def json_merge_patch(target, patch):
    """RFC 7396: an object patch merges into an object (recursively; a null member removes that
    key); any other patch replaces the target."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = json_merge_patch(merged.get(key), value)
    return merged


@transaction.atomic
def property_merge(*, prop, value):
    """Merge ``value`` into the property's value (a JSON merge patch); returns the property.

    The row is locked while merging, so two merges at the same time both take effect.
    """
    _check_json_value(value)
    locked = Property.objects.select_for_update().get(pk=prop.pk)
    locked.value = json_merge_patch(locked.value, value)
    locked.save(update_fields=["value", "modified"])
    prop.value, prop.modified = locked.value, locked.modified
    _announce_value(prop)
    return prop


def _announce_value(prop):
    """The live event of a property's new value, for the device's owner once it commits."""
    device = prop.device
    publish(device.owner.username, PROPERTY_UPDATE(device.identifier, property=prop.identifier))


@transaction.atomic
def property_patch(*, prop, **fields):
    """A partial change of a property, in one transaction: ``value``, when given, is merged
    into its value (``property_merge``); name and description are replaced. Returns it."""
    if "value" in fields:
        prop = property_merge(prop=prop, value=fields.pop("value"))
    if fields:
        property_update(prop=prop, **fields)
    return prop


@transaction.atomic
def property_delete(*, prop):
    """Delete a property; callback actions referencing it are switched off (SET NULL)."""
    prop.delete()


# --- Alerts on disconnect and reconnect (devices.alerts) ---------------------------------------


@transaction.atomic
def alert_settings_save(
    *, owner, device=None, enabled, on_disconnect, on_reconnect, endpoints, quiet_minutes
):
    """Set the alerts of ``device``, or the owner's default (``device`` None); returns them.
    The endpoints must be the owner's (a ValidationError on ``endpoints`` otherwise)."""
    if any(endpoint.owner_id != owner.pk for endpoint in endpoints):
        raise ValidationError({"endpoints": "an endpoint belongs to another user"})
    if device is not None:
        lock_existing(device)
    rule = AlertSettings.objects.filter(owner=owner, device=device).first() or AlertSettings(
        owner=owner, device=device
    )
    rule.enabled, rule.on_disconnect, rule.on_reconnect = enabled, on_disconnect, on_reconnect
    rule.quiet_minutes = quiet_minutes
    rule.full_clean(exclude=["owner", "device"])
    rule.save()
    rule.endpoints.set(endpoints)
    return rule


def alert_settings_clear(*, device):
    """The device follows its owner's default alerts again."""
    AlertSettings.objects.filter(device=device).delete()

"""Alerts on disconnect and reconnect: the endpoints a user chose are called when the sweep
disconnects a device and when it connects again.

Beat hands the connection events that the callback and the sweep wrote (``ConnectionEvent``,
``alerts_done`` false) to ``device_alerts_dispatch``, which records an endpoint call for each
alert in the same transaction as it marks the events done: the calls go through the endpoints'
outbox (retried, never lost), and an event is alerted once, whatever runs at the same time (rows
locked, skipping those another dispatch holds). Nothing of this is on the callback's path.

Each device follows its own ``AlertSettings``, else its owner's default. After an alert of a kind
the device's further ones of that kind wait ``quiet_minutes``; a change that came meanwhile is
told when the quiet period ends, if the device's state then is not the one last told.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from core.times import to_ms
from devices.models import AlertSettings, AlertState, ConnectionEvent, Device
from endpoints.services import endpoint_call_record

CONNECTED, DISCONNECTED = ConnectionEvent.Kind.CONNECTED, ConnectionEvent.Kind.DISCONNECTED


def device_alerts_dispatch(*, now=None, limit=None):
    """Alert the new connection events, then the held changes whose quiet period is over;
    returns how many alerts were recorded."""
    now = now or timezone.now()
    with transaction.atomic():
        sent = _dispatch_events(now, limit or settings.ALERTS_BATCH)
    with transaction.atomic():
        sent += _dispatch_held(now)
    return sent


def _dispatch_events(now, limit):
    events = list(
        ConnectionEvent.objects.filter(alerts_done=False)
        .select_for_update(skip_locked=True)
        .order_by("id")[:limit]
    )
    if not events:
        return 0
    devices = {device.pk: device for device in _devices({event.device_id for event in events})}
    rules = _settings_for(devices.values())
    # Only the devices someone is to be told about need a state and their history.
    alerted = [device for pk, device in devices.items() if pk in rules]
    states = _states_for(alerted)
    first_drop = _first_disconnections(alerted)
    sent = 0
    for event in events:
        device = devices[event.device_id]
        rule = rules.get(device.pk)
        if rule is None or not rule.wants(event.kind):
            continue
        if event.kind == CONNECTED and not event.pk > first_drop.get(device.pk, event.pk):
            continue  # its first connection ever: a new device, not a reconnection
        state = states[device.pk]
        if _quiet(state, rule, event.kind, now):
            state.held = True
            continue
        sent += _alert(device, rule, state, event.kind, at=event.at, now=now)
    ConnectionEvent.objects.filter(pk__in=[event.pk for event in events]).update(alerts_done=True)
    _save(states.values())
    return sent


def _dispatch_held(now):
    held = list(AlertState.objects.filter(held=True).select_for_update(skip_locked=True))
    if not held:
        return 0
    devices = {device.pk: device for device in _devices({state.device_id for state in held})}
    rules = _settings_for(devices.values())
    sent = 0
    for state in held:
        device = devices[state.device_id]
        rule = rules.get(device.pk)
        current = CONNECTED if device.connected else DISCONNECTED
        if rule is None or not rule.wants(current) or current == state.told:
            state.held = False  # nothing to tell, or nobody to tell it
            continue
        if _quiet(state, rule, current, now):
            continue  # still quiet: the next dispatch looks again
        at = device.connected_at if device.connected else device.timeout_at
        sent += _alert(device, rule, state, current, at=at or now, now=now)
    _save(held)
    return sent


def _first_disconnections(devices):
    """The id of each device's first disconnection event."""
    rows = (
        ConnectionEvent.objects.filter(device__in=list(devices), kind=DISCONNECTED)
        .values("device_id")
        .annotate(first=Min("id"))
        .order_by()
    )
    return {row["device_id"]: row["first"] for row in rows}


def _devices(ids):
    return Device.objects.select_related("owner").filter(pk__in=ids)


def _settings_for(devices):
    """Each device's rule: its own settings, else its owner's default (None: no alerts)."""
    devices = list(devices)
    rows = (
        AlertSettings.objects.filter(
            Q(device__in=devices) | Q(device__isnull=True, owner__in={d.owner_id for d in devices})
        )
        .prefetch_related("endpoints")
        .order_by()
    )
    own, default = {}, {}
    for row in rows:
        if row.device_id:
            own[row.device_id] = row
        else:
            default[row.owner_id] = row
    chosen = {device.pk: own.get(device.pk, default.get(device.owner_id)) for device in devices}
    return {pk: rule for pk, rule in chosen.items() if rule is not None}


def _states_for(devices):
    ids = [device.pk for device in devices]
    AlertState.objects.bulk_create([AlertState(device_id=pk) for pk in ids], ignore_conflicts=True)
    return {state.device_id: state for state in AlertState.objects.filter(device_id__in=ids)}


def _quiet(state, rule, kind, now):
    told_at = state.connected_told_at if kind == CONNECTED else state.disconnected_told_at
    return told_at is not None and now - told_at < timedelta(minutes=rule.quiet_minutes)


def _alert(device, rule, state, kind, *, at, now):
    """Record a call of each of the rule's enabled endpoints; returns how many."""
    payload = alert_payload(device, kind, at=at)
    calls = 0
    for endpoint in rule.endpoints.all():
        if endpoint.enabled:
            endpoint_call_record(
                endpoint=endpoint, device=device, payload=payload, ts=payload["ts"]
            )
            calls += 1
    state.told = kind
    state.held = False
    if kind == CONNECTED:
        state.connected_told_at = now
    else:
        state.disconnected_told_at = now
    return calls


def alert_payload(device, kind, *, at):
    """What an alert's endpoint receives (its body, and the values of its placeholders)."""
    return {
        "event": "device_state_change",
        "alert": "reconnected" if kind == CONNECTED else "disconnected",
        "user": device.owner.username,
        "device": device.identifier,
        "device_name": device.name,
        "state": str(kind),
        "ts": to_ms(at),
        "last_call": to_ms(device.last_call_at),
        "ip": device.remote_ip,
    }


def _save(states):
    states = list(states)
    if states:
        fields = ["told", "held", "connected_told_at", "disconnected_told_at"]
        AlertState.objects.bulk_update(states, fields)

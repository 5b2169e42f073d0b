"""The connection-timeout sweep: devices whose deadline passed are disconnected (run by beat)."""

import json
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from core.events import publish
from core.times import to_ms
from devices.events import STATE_CHANGE
from devices.models import ConnectionEvent, Device

SWEEP_CHUNK = 5000


def device_sweep_timeouts(*, now=None):
    """Disconnect every connected device whose deadline has passed; returns how many. Each
    disconnection is a live event for the device's owner once its chunk commits.

    Works in chunks of at most ``SWEEP_CHUNK`` devices, each flipped by one ``UPDATE ...
    RETURNING`` whose own ``WHERE connected AND timeout_at <= now`` is the compare-and-swap: a
    concurrent sweep finds those rows already flipped (on PostgreSQL it skips the rows another
    sweep has locked), and a callback that moved ``timeout_at`` forward keeps its device
    connected. Only the rows a statement changed get a "disconnected" event, dated at their
    deadline, written by the same statement on PostgreSQL and in the same transaction elsewhere.
    When nothing is due this is one query on the partial index ``device_timeout_due``.
    """
    now = now or timezone.now()
    total = 0
    while True:
        flipped = _sweep_chunk(now)
        _announce(flipped)
        total += len(flipped)
        if len(flipped) < SWEEP_CHUNK:
            return total


def _announce(flipped):
    by_owner = defaultdict(list)
    for username, identifier, deadline, remote_ip in flipped:
        by_owner[username].append(
            STATE_CHANGE(identifier, ts=to_ms(deadline), state="disconnected", ip=remote_ip)
        )
    for username, events in by_owner.items():
        publish(username, *events)


def _sweep_chunk(now):
    """Flip at most ``SWEEP_CHUNK`` due devices and record their events; returns them as
    (owner's username, device id, deadline, last remote address) rows."""
    devices = connection.ops.quote_name(Device._meta.db_table)
    events = connection.ops.quote_name(ConnectionEvent._meta.db_table)
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    # Table names are the only interpolated values (S608).
    update = (
        f"UPDATE {devices} SET connected = %s WHERE id IN ("  # noqa: S608
        f"SELECT id FROM {devices} WHERE connected AND timeout_at <= %s "
        f"ORDER BY timeout_at LIMIT %s{lock}"
        ") AND connected AND timeout_at <= %s RETURNING id, timeout_at"
    )
    insert = f"INSERT INTO {events} (device_id, kind, at) SELECT id, %s, timeout_at FROM"  # noqa: S608
    users = connection.ops.quote_name(get_user_model()._meta.db_table)
    username = connection.ops.quote_name(
        get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD).column
    )
    # Who they are, for the live events.
    who = (
        f"SELECT u.{username}, d.identifier, f.timeout_at, d.remote_ip FROM flipped f "  # noqa: S608
        f"JOIN {devices} d ON d.id = f.id JOIN {users} u ON u.id = d.owner_id"
    )
    deadline = connection.ops.adapt_datetimefield_value(now)
    params = [False, deadline, SWEEP_CHUNK, deadline]
    kind = ConnectionEvent.Kind.DISCONNECTED.value

    if connection.vendor == "postgresql":
        # One statement is atomic on its own: no BEGIN and COMMIT round trips around it.
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH flipped AS ({update}), recorded AS ({insert} flipped) {who}",
                [*params, kind],
            )
            return cursor.fetchall()

    # The flipped ids go back as one JSON parameter, whatever their number. No savepoint: within
    # a caller's transaction the chunk adds no query of its own.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(update, params)
        flipped = [pk for pk, _ in cursor.fetchall()]
        if not flipped:
            return []
        ids = json.dumps(flipped)
        cursor.execute(
            f"{insert} {devices} WHERE id IN (SELECT value FROM json_each(%s))",  # noqa: S608
            [kind, ids],
        )
        cursor.execute(
            f"WITH flipped AS (SELECT id, timeout_at FROM {devices} "  # noqa: S608
            f"WHERE id IN (SELECT value FROM json_each(%s))) {who}",
            [ids],
        )
        return cursor.fetchall()

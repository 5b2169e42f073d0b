"""The connection-timeout sweep: overdue devices become disconnected, one event per change."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.models import ConnectionEvent, Device
from devices.sweep import device_sweep_timeouts
from devices.tasks import device_sweep_timeouts as sweep_task
from devices.tokens import callback_token_for
from tests.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)


def connected_device(timeout_at, **kwargs):
    """A device that last called 10 minutes before ``timeout_at`` and is connected until then."""
    last_call = timeout_at - 10 * MINUTE
    return DeviceFactory(
        connected=True,
        connected_at=last_call,
        last_call_at=last_call,
        timeout_at=timeout_at,
        **kwargs,
    )


def events(device):
    return list(
        ConnectionEvent.objects.filter(device=device).order_by("at", "id").values_list("kind", "at")
    )


def post_callback(client, device, body):
    """What a device does: POST to its callback URL with its token."""
    path = reverse(
        "device-callback-data", kwargs={"user": device.owner.username, "device": device.identifier}
    )
    return client.post(
        path,
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {callback_token_for(device)}"},
    )


def test_task_disconnects_an_overdue_device_and_records_the_deadline():
    now = timezone.now()
    overdue = connected_device(now - MINUTE)
    not_due = connected_device(now + 5 * MINUTE)

    result = sweep_task.apply()

    assert result.successful()
    assert result.get() == 1
    overdue.refresh_from_db()
    not_due.refresh_from_db()
    assert not overdue.connected
    assert overdue.status == "disconnected"
    assert not_due.connected
    assert events(overdue) == [("disconnected", now - MINUTE)]
    assert events(not_due) == []


def test_device_due_exactly_now_is_disconnected():
    now = timezone.now()
    device = connected_device(now)

    assert device_sweep_timeouts(now=now) == 1

    device.refresh_from_db()
    assert not device.connected


def test_disconnected_and_never_connected_devices_are_left_alone():
    now = timezone.now()
    gone = DeviceFactory(
        connected=False, last_call_at=now - 60 * MINUTE, timeout_at=now - 50 * MINUTE
    )
    never = DeviceFactory()

    assert device_sweep_timeouts(now=now) == 0

    assert not ConnectionEvent.objects.exists()
    gone.refresh_from_db()
    never.refresh_from_db()
    assert (gone.status, never.status) == ("disconnected", "never")


def test_sweeping_twice_records_one_event():
    now = timezone.now()
    device = connected_device(now - MINUTE)

    assert device_sweep_timeouts(now=now) == 1
    assert device_sweep_timeouts(now=now + MINUTE) == 0

    assert events(device) == [("disconnected", now - MINUTE)]


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_record_one_event_per_device(monkeypatch):
    """On PostgreSQL two threads, each with its own connection, race through small chunks.

    SQLite serialises writers, so there the second sweep simply runs after the first, at the
    same ``now``.
    """
    monkeypatch.setattr("devices.sweep.SWEEP_CHUNK", 10)
    now = timezone.now()
    owner = UserFactory()
    devices = [connected_device(now - i * MINUTE, owner=owner) for i in range(1, 81)]

    if connection.vendor == "postgresql":
        results, errors = [], []
        start = threading.Barrier(2)

        def sweep():
            try:
                start.wait(timeout=10)
                results.append(device_sweep_timeouts(now=now))
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
    else:
        results = [device_sweep_timeouts(now=now) for _ in range(2)]

    assert len(results) == 2
    assert sum(results) == len(devices)
    assert not Device.objects.filter(connected=True).exists()
    assert ConnectionEvent.objects.count() == len(devices)
    for device in devices:
        assert events(device) == [("disconnected", device.timeout_at)]


def test_a_callback_after_the_timeout_reconnects_and_a_later_timeout_disconnects_again(client):
    now = timezone.now()
    device = connected_device(now - MINUTE)
    assert device_sweep_timeouts() == 1

    response = post_callback(client, device, {"temperature": 21.5})

    assert response.status_code == 200, response.content
    device.refresh_from_db()
    assert device.connected
    assert device.timeout_at > now
    kinds = [kind for kind, _ in events(device)]
    assert kinds == ["disconnected", "connected"]
    assert device_sweep_timeouts() == 0

    later = device.timeout_at + timedelta(seconds=1)
    assert device_sweep_timeouts(now=later) == 1

    device.refresh_from_db()
    assert not device.connected
    assert [kind for kind, _ in events(device)] == ["disconnected", "connected", "disconnected"]
    assert events(device)[-1][1] == device.timeout_at


def test_a_callback_that_moved_the_deadline_keeps_the_device_connected(client):
    """The sweep decides on the stored deadline, not on a copy read earlier."""
    now = timezone.now()
    device = connected_device(now - MINUTE)

    assert post_callback(client, device, {"on": True}).status_code == 200
    assert device_sweep_timeouts(now=now) == 0

    device.refresh_from_db()
    assert device.connected
    assert events(device) == []


@pytest.mark.django_db(transaction=True)
def test_a_callback_racing_a_sweep_is_not_lost(client):
    """The callback waits for the sweep's row lock, then flips the device back to connected."""
    if connection.vendor != "postgresql":
        pytest.skip("needs row locks and concurrent writers (PostgreSQL)")
    device = connected_device(timezone.now() - MINUTE)
    swept, errors = threading.Event(), []

    def sweep_and_hold_the_lock():
        try:
            with transaction.atomic():
                assert device_sweep_timeouts() == 1
                swept.set()
                threading.Event().wait(0.5)
        except Exception as exc:
            errors.append(exc)
            swept.set()
        finally:
            connection.close()

    thread = threading.Thread(target=sweep_and_hold_the_lock)
    thread.start()
    assert swept.wait(timeout=10)
    response = post_callback(client, device, {"on": True})
    thread.join(timeout=10)

    assert not errors
    assert response.status_code == 200, response.content
    device.refresh_from_db()
    assert device.connected
    assert [kind for kind, _ in events(device)] == ["disconnected", "connected"]


def test_chunks_are_repeated_until_nothing_is_due(monkeypatch):
    monkeypatch.setattr("devices.sweep.SWEEP_CHUNK", 3)
    now = timezone.now()
    owner = UserFactory()
    for i in range(1, 8):
        connected_device(now - i * MINUTE, owner=owner)
    connected_device(now + MINUTE, owner=owner)

    with CaptureQueriesContext(connection) as queries:
        assert device_sweep_timeouts(now=now) == 7

    # Three chunks: 3 + 3 + 1.
    assert sum("UPDATE" in query["sql"] for query in queries) == 3
    assert Device.objects.filter(connected=True).count() == 1
    assert ConnectionEvent.objects.filter(kind="disconnected").count() == 7


def test_nothing_due_is_one_query(django_assert_num_queries):
    now = timezone.now()
    owner = UserFactory()
    connected_device(now + MINUTE, owner=owner)
    DeviceFactory(owner=owner, connected=False, timeout_at=now - 60 * MINUTE)

    with django_assert_num_queries(1):
        assert device_sweep_timeouts(now=now) == 0


def test_query_count_does_not_grow_with_due_devices():
    now = timezone.now()
    owner = UserFactory()
    for i in range(2):
        connected_device(now - 60 * MINUTE - i * MINUTE, owner=owner)
    for i in range(50):
        connected_device(now - i * MINUTE, owner=owner)

    with CaptureQueriesContext(connection) as two:
        assert device_sweep_timeouts(now=now - 60 * MINUTE) == 2
    with CaptureQueriesContext(connection) as fifty:
        assert device_sweep_timeouts(now=now) == 50

    assert len(two) == len(fifty) <= 3
    assert ConnectionEvent.objects.count() == 52


@pytest.mark.services
def test_nothing_due_among_100000_devices_is_one_query_on_the_partial_index(
    django_assert_num_queries,
):
    """Half connected with deadlines ahead, half disconnected long ago (deadlines behind): only
    the partial index skips the latter without reading them."""
    now = timezone.now()
    owner = UserFactory()
    Device.objects.bulk_create(
        (
            Device(
                owner=owner,
                identifier=f"bulk{i}",
                connected=i % 2 == 0,
                timeout_at=now + timedelta(seconds=1 + i % 600)
                if i % 2 == 0
                else now - timedelta(days=1, seconds=i),
            )
            for i in range(100_000)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Device._meta.db_table}")

    with django_assert_num_queries(1) as captured:
        assert device_sweep_timeouts(now=now) == 0

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {captured.captured_queries[0]['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "device_timeout_due" in plan, plan

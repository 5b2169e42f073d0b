"""Every accepted call counts: connection state, events and daily statistics (SPEC 1, 2)."""

import json
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from devices.models import CallbackSettings, ConnectionEvent, Device, DeviceDailyStats
from devices.tokens import callback_token_for
from tests.factories import PropertyFactory, callback_configure


def totals(device):
    """The device's statistics summed over days (a test may run across midnight)."""
    return DeviceDailyStats.objects.filter(device=device).aggregate(
        calls=Sum("calls"), rx=Sum("rx_bytes"), tx=Sum("tx_bytes")
    )


def reloaded(device):
    return Device.objects.get(pk=device.pk)


def test_each_call_is_counted_in_todays_statistics(callback_client, device):
    for n in range(3):
        assert callback_client.post(device, {"n": n}).status_code == 200

    stats = DeviceDailyStats.objects.get(device=device)
    assert stats.date == timezone.localdate()
    assert stats.calls == 3


def test_bytes_received_are_the_request_body_lengths(callback_client, device):
    bodies = [b'{"temperature": 21.5}', b'[{"n": 1}, {"n": 2}]', b"not json"]

    for body in bodies:
        callback_client.post(device, body)

    assert totals(device) == {"calls": 3, "rx": sum(map(len, bodies)), "tx": 0}


def test_bytes_sent_are_the_response_body_lengths(callback_client, device):
    callback_configure(
        device, send_property=PropertyFactory(device=device, value={"led": "on", "every": 60})
    )

    first = callback_client.post(device, b"{}")
    second = callback_client.get(device)

    assert first.content == second.content
    assert json.loads(first.content) == {"led": "on", "every": 60}
    assert totals(device) == {"calls": 2, "rx": 2, "tx": 2 * len(first.content)}


def test_get_counts_as_a_call(callback_client, device):
    response = callback_client.get(device)

    assert response.status_code == 200
    assert totals(device) == {"calls": 1, "rx": 0, "tx": 0}
    assert reloaded(device).connected


def test_statistics_are_kept_per_device(callback_client, device, callback_device):
    callback_client.post(device, b"{}")
    callback_client.post(callback_device, b"{}")
    callback_client.post(callback_device, b"{}")

    assert totals(device)["calls"] == 1
    assert totals(callback_device)["calls"] == 2


def test_call_marks_the_device_connected_until_its_timeout(callback_client, device):
    callback_configure(device, timeout=7)
    before = timezone.now()

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    device = reloaded(device)
    assert device.connected
    assert device.status == "connected"
    assert before <= device.last_call_at <= timezone.now()
    assert device.connected_at == device.last_call_at
    assert device.timeout_at == device.last_call_at + timedelta(minutes=7)
    assert device.remote_ip == "127.0.0.1"


def test_each_call_moves_the_timeout_on(callback_client, device):
    callback_client.post(device, b"{}")
    first = reloaded(device)

    callback_client.post(device, b"{}")
    second = reloaded(device)

    assert second.last_call_at > first.last_call_at
    assert second.timeout_at == second.last_call_at + timedelta(minutes=10)
    assert second.connected_at == first.connected_at


def test_remote_ip_is_the_peer_address(client, callback_client, device):
    response = client.post(
        callback_client.path(device),
        b"{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {callback_token_for(device)}"},
        REMOTE_ADDR="203.0.113.9",
    )

    assert response.status_code == 200
    assert reloaded(device).remote_ip == "203.0.113.9"


@pytest.mark.parametrize(
    ("ip", "stored"),
    [
        ("::ffff:172.17.0.1", "172.17.0.1"),
        ("172.17.0.1", "172.17.0.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("not-an-address", "127.0.0.1"),
    ],
)
def test_ip_query_parameter_is_the_devices_address(callback_client, device, ip, stored):
    response = callback_client.post(device, b"{}", query={"ip": ip})

    assert response.status_code == 200
    assert reloaded(device).remote_ip == stored


def test_first_call_of_a_disconnected_device_writes_one_connected_event(callback_client, device):
    callback_client.post(device, b"{}", query={"ip": "::ffff:172.17.0.1"})

    device = reloaded(device)
    event = ConnectionEvent.objects.get(device=device)
    assert event.kind == ConnectionEvent.Kind.CONNECTED
    assert event.at == device.last_call_at
    assert event.remote_ip == "172.17.0.1"


def test_further_calls_write_no_new_event(callback_client, device):
    callback_client.post(device, b"{}")
    callback_client.post(device, b"{}")
    callback_client.post(device, b"not json")

    assert ConnectionEvent.objects.filter(device=device).count() == 1


def test_device_that_timed_out_writes_a_connected_event_on_its_next_call(callback_client, device):
    long_ago = timezone.now() - timedelta(hours=1)
    Device.objects.filter(pk=device.pk).update(
        connected=False, last_call_at=long_ago, connected_at=long_ago, timeout_at=long_ago
    )

    callback_client.post(device, b"{}")

    device = reloaded(device)
    assert device.connected
    assert device.connected_at == device.last_call_at > long_ago
    assert list(ConnectionEvent.objects.values_list("kind", flat=True)) == ["connected"]


def test_refused_call_does_not_count(callback_client, device, assert_json_error):
    assert_json_error(callback_client.post(device, b"{}", token="garbage"), 401)

    assert not DeviceDailyStats.objects.exists()
    assert not reloaded(device).connected


def test_device_without_callback_settings_still_counts_with_the_default_timeout(
    callback_client, device
):
    CallbackSettings.objects.filter(device=device).delete()

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    device = reloaded(device)
    assert device.timeout_at == device.last_call_at + timedelta(minutes=10)
    assert totals(device)["calls"] == 1

"""Alerts on disconnect and reconnect (issue 16, item 4): a device stops sending, the sweep
disconnects it, the chosen endpoints are called once; it sends again, the reconnect alert is
called once; a flapping device is told once per quiet period, then its state when it ends.

Driven as production drives it: the device's callback over HTTP, the sweep, and the beat task
that dispatches alerts; the alerts are endpoint calls in the outbox (``EndpointCall``), and in
services mode a real worker delivers one to a real HTTP receiver.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from devices.alerts import device_alerts_dispatch
from devices.models import AlertSettings
from devices.sweep import device_sweep_timeouts
from devices.tasks import device_alerts_dispatch as dispatch_task
from endpoints.models import EndpointCall
from tests.factories import DeviceFactory, EndpointFactory, UserFactory, callback_configure

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def hook(alice):
    return EndpointFactory(owner=alice, identifier="pager")


@pytest.fixture
def sensor(alice):
    device = DeviceFactory(owner=alice, identifier="sensor1", name="Greenhouse")
    callback_configure(device, timeout=5)
    return device


def default_alerts(owner, *endpoints, **fields):
    rule = AlertSettings.objects.create(owner=owner, **fields)
    rule.endpoints.set(endpoints)
    return rule


def alerts():
    return [
        (call.endpoint.identifier, call.payload["alert"], call.payload["device"])
        for call in EndpointCall.objects.select_related("endpoint").order_by("id")
    ]


def goes_silent(device, minutes=11):
    """The sweep, ``minutes`` after the device's last call (past every test device's timeout)."""
    device.refresh_from_db()
    return device_sweep_timeouts(now=device.last_call_at + timedelta(minutes=minutes))


def test_a_disconnection_then_the_reconnection_are_each_alerted_once(
    alice, hook, sensor, callback_client, enqueued, django_capture_on_commit_callbacks
):
    default_alerts(alice, hook)
    assert callback_client.post(sensor, {"t": 1}).status_code == 200
    device_alerts_dispatch()
    assert alerts() == []  # a device's first connection is no reconnection

    assert goes_silent(sensor) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert device_alerts_dispatch() == 1
    assert device_alerts_dispatch() == 0
    assert alerts() == [("pager", "disconnected", "sensor1")]
    call = EndpointCall.objects.get()
    sensor.refresh_from_db()
    assert call.device_id == sensor.pk
    assert call.payload == {
        "event": "device_state_change",
        "alert": "disconnected",
        "user": "alice",
        "device": "sensor1",
        "device_name": "Greenhouse",
        "state": "disconnected",
        "ts": int(sensor.timeout_at.timestamp() * 1000),
        "last_call": int(sensor.last_call_at.timestamp() * 1000),
        "ip": sensor.remote_ip,
    }
    assert [pk for pk, _ in enqueued] == [call.pk]  # handed to the workers once it committed

    callback_client.post(sensor, {"t": 2})
    assert dispatch_task.apply().get() == 1  # the task beat runs
    assert device_alerts_dispatch() == 0
    assert alerts() == [("pager", "disconnected", "sensor1"), ("pager", "reconnected", "sensor1")]


def test_a_flapping_device_is_told_once_then_its_state_when_the_quiet_period_ends(
    alice, hook, sensor, callback_client, enqueued
):
    default_alerts(alice, hook, quiet_minutes=15)
    callback_client.post(sensor, {"t": 1})
    goes_silent(sensor)
    now = timezone.now()
    device_alerts_dispatch(now=now)
    for _ in range(3):  # back, gone, back, gone...
        callback_client.post(sensor, {"t": 2})
        goes_silent(sensor)
    assert device_alerts_dispatch(now=now + timedelta(minutes=1)) == 1  # the first reconnection
    assert device_alerts_dispatch(now=now + timedelta(minutes=5)) == 0
    assert alerts() == [("pager", "disconnected", "sensor1"), ("pager", "reconnected", "sensor1")]
    # The quiet period of disconnections ends: it is disconnected, unlike what was last told.
    assert device_alerts_dispatch(now=now + timedelta(minutes=16)) == 1
    assert alerts()[-1] == ("pager", "disconnected", "sensor1")
    assert device_alerts_dispatch(now=now + timedelta(minutes=40)) == 0


def test_a_change_held_in_the_quiet_period_is_dropped_when_the_state_is_back(
    alice, hook, sensor, callback_client, enqueued
):
    default_alerts(alice, hook, quiet_minutes=15)
    callback_client.post(sensor, {"t": 1})
    goes_silent(sensor)
    now = timezone.now()
    device_alerts_dispatch(now=now)
    callback_client.post(sensor, {"t": 2})
    device_alerts_dispatch(now=now)
    goes_silent(sensor)
    device_alerts_dispatch(now=now + timedelta(minutes=1))  # held
    callback_client.post(sensor, {"t": 3})
    device_alerts_dispatch(now=now + timedelta(minutes=2))  # held: reconnect alerted just now
    assert device_alerts_dispatch(now=now + timedelta(minutes=20)) == 0  # connected, as told
    assert [alert for _, alert, _ in alerts()] == ["disconnected", "reconnected"]


def test_a_devices_own_settings_win_over_the_default(alice, hook, callback_client, enqueued):
    other = EndpointFactory(owner=alice, identifier="mail")
    silenced = DeviceFactory(owner=alice, identifier="quiet1")
    own = DeviceFactory(owner=alice, identifier="own1")
    follows = DeviceFactory(owner=alice, identifier="default1")
    default_alerts(alice, hook)
    AlertSettings.objects.create(owner=alice, device=silenced, enabled=False)
    rule = AlertSettings.objects.create(owner=alice, device=own, on_reconnect=False)
    rule.endpoints.set([other])
    for device in (silenced, own, follows):
        callback_client.post(device, {"t": 1})
        goes_silent(device)
    device_alerts_dispatch()
    assert sorted(alerts()) == [
        ("mail", "disconnected", "own1"),
        ("pager", "disconnected", "default1"),
    ]


def test_no_settings_no_alerts_and_a_disabled_endpoint_is_not_called(
    alice, hook, sensor, callback_client, enqueued
):
    callback_client.post(sensor, {"t": 1})
    goes_silent(sensor)
    assert device_alerts_dispatch() == 0
    default_alerts(alice, hook)
    hook.enabled = False
    hook.save()
    callback_client.post(sensor, {"t": 2})
    goes_silent(sensor)
    assert device_alerts_dispatch() == 0
    assert alerts() == []


def test_another_users_default_does_not_apply(alice, hook, sensor, callback_client, enqueued):
    bob = UserFactory(username="bob")
    default_alerts(bob, EndpointFactory(owner=bob))
    callback_client.post(sensor, {"t": 1})
    goes_silent(sensor)
    assert device_alerts_dispatch() == 0


def test_events_from_before_the_alerts_existed_are_not_alerted(
    alice, hook, sensor, callback_client, enqueued
):
    """The migration marks the events it finds as done; dispatch takes only new ones."""
    callback_client.post(sensor, {"t": 1})
    goes_silent(sensor)
    sensor.connection_events.update(alerts_done=True)
    default_alerts(alice, hook)
    assert device_alerts_dispatch() == 0


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_the_alert_once(
    alice, sensor, callback_client, endpoint_worker, receiver, settings
):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    hook = EndpointFactory(
        owner=alice,
        identifier="pager",
        config={
            "url": f"{receiver.url}/alert",
            "method": "POST",
            "headers": [],
            "body_type": "json",
        },
    )
    default_alerts(alice, hook)
    callback_client.post(sensor, {"t": 1})
    goes_silent(sensor)
    assert device_alerts_dispatch() == 1
    received = receiver.wait_for(1)
    assert received[0].path == "/alert"
    assert received[0].json()["alert"] == "disconnected"
    callback_client.post(sensor, {"t": 2})
    assert device_alerts_dispatch() == 1
    received = receiver.wait_for(2)
    assert received[1].json()["alert"] == "reconnected"
    assert device_alerts_dispatch() == 0
    time.sleep(1)
    assert len(receiver.requests) == 2, endpoint_worker.output()


# The console: the user's default alerts, and a device's own.


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


def test_the_default_alerts_are_set_in_the_console(console, alice, hook):
    page = console.get("/alerts/")
    assert page.status_code == 200
    assert b"Default alerts" in page.content
    saved = console.post(
        "/alerts/",
        {"enabled": "on", "on_disconnect": "on", "endpoints": [hook.pk], "quiet_minutes": "5"},
    )
    assert saved.status_code == 302
    rule = AlertSettings.objects.get(owner=alice, device=None)
    assert (rule.enabled, rule.on_disconnect, rule.on_reconnect, rule.quiet_minutes) == (
        True,
        True,
        False,
        5,
    )
    assert list(rule.endpoints.all()) == [hook]
    assert b"Default alerts saved." in console.get("/alerts/").content


def test_alerts_without_an_endpoint_or_a_moment_are_refused_with_form_errors(console, hook):
    page = console.post("/alerts/", {"enabled": "on", "on_disconnect": "on", "quiet_minutes": "5"})
    assert page.status_code == 200
    assert b"Choose at least one endpoint to call." in page.content
    page = console.post("/alerts/", {"enabled": "on", "endpoints": [hook.pk]})
    assert b"Choose when to alert" in page.content
    assert not AlertSettings.objects.exists()


def test_another_users_endpoint_cannot_be_chosen(console, alice):
    strangers = EndpointFactory(owner=UserFactory())
    page = console.post(
        "/alerts/",
        {"enabled": "on", "on_disconnect": "on", "endpoints": [strangers.pk], "quiet_minutes": "5"},
    )
    assert page.status_code == 200
    assert b"Select a valid choice" in page.content
    assert not AlertSettings.objects.exists()


def test_a_device_takes_the_default_its_own_or_none(console, alice, hook, sensor):
    url = "/devices/sensor1/alerts"
    assert b"You have no default alerts yet." in console.get(url).content
    own = {"mode": "custom", "on_reconnect": "on", "endpoints": [hook.pk], "quiet_minutes": "0"}
    assert console.post(url, own).status_code == 302
    rule = AlertSettings.objects.get(device=sensor)
    assert (rule.enabled, rule.on_disconnect, rule.on_reconnect, rule.quiet_minutes) == (
        True,
        False,
        True,
        0,
    )
    assert console.post(url, {"mode": "off"}).status_code == 302
    assert AlertSettings.objects.get(device=sensor).enabled is False
    assert console.post(url, {"mode": "default"}).status_code == 302
    assert not AlertSettings.objects.filter(device=sensor).exists()
    assert console.get("/devices/nope/alerts").status_code == 404
    other = DeviceFactory(owner=UserFactory(), identifier="theirs")
    assert console.get(f"/devices/{other.identifier}/alerts").status_code == 404

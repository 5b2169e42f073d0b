"""A dashboard page kept up to date (issue 17, item 3): its live socket
(``/v1/users/{user}/dashboards/{dashboard}/live``, through a real uvicorn and a real WebSocket
client in whichever mode the suite runs) names the widgets a device's call, a property write or
a bucket write changed; the page fetches those tiles (``/dashboards/{id}/tiles?w=...``). And
whether a control widget's value was picked up by the device, in the tiles and the API."""

import html
import json
import re
import threading
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from dashboards import services
from devices.models import Device, Property
from tests.factories import (
    BucketFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

WIDGETS = [
    {
        "id": "temp",
        "type": "value",
        "source": {"kind": "property", "device": "sensor1", "property": "state", "field": "t"},
    },
    {"id": "box", "type": "device_status", "source": {"kind": "device", "device": "sensor1"}},
    {
        "id": "calls",
        "type": "led",
        "source": {"kind": "device", "device": "sensor1", "field": "calls_today"},
    },
    {
        "id": "history",
        "type": "chart",
        "source": {"kind": "bucket", "bucket": "temps", "fields": ["t"]},
    },
    {
        "id": "power",
        "type": "switch",
        "source": {"kind": "property", "device": "sensor1", "property": "power"},
    },
    {
        "id": "other",
        "type": "value",
        "source": {"kind": "property", "device": "sensor2", "property": "state"},
    },
]


@pytest.fixture
def alice(db):
    user = UserFactory(username="alice")
    sensor = DeviceFactory(owner=user, identifier="sensor1")
    PropertyFactory(device=sensor, identifier="state", value={"t": 20})
    PropertyFactory(device=sensor, identifier="power", value=False)
    PropertyFactory(device=DeviceFactory(owner=user, identifier="sensor2"), identifier="state")
    BucketFactory(owner=user, identifier="temps")
    services.dashboard_create(owner=user, identifier="home", widgets=WIDGETS)
    return user


@pytest.fixture
def sensor(alice):
    return alice.devices.get(identifier="sensor1")


def text(response):
    return html.unescape(response.content.decode())


def tile_ids(page):
    return re.findall(r'<section class="tile[^"]*"[^>]*data-widget="([\w-]+)"', page)


# --- The tiles the page fetches ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_tiles_asked_for_are_drawn_and_unknown_ids_ignored(client, alice):
    client.force_login(alice)

    answer = client.get("/dashboards/home/tiles?w=temp&w=history&w=nosuch")

    assert answer.status_code == 200
    page = text(answer)
    assert sorted(tile_ids(page)) == ["history", "temp"]
    assert ">20<" in page
    assert "<html" not in page
    # None asked for: every tile.
    assert sorted(tile_ids(text(client.get("/dashboards/home/tiles")))) == sorted(
        w["id"] for w in WIDGETS
    )


@pytest.mark.django_db
def test_the_tiles_need_the_owners_login(client, alice):
    assert client.get("/dashboards/home/tiles?w=temp").status_code == 302
    client.force_login(UserFactory(username="bob"))
    assert client.get("/dashboards/home/tiles?w=temp").status_code == 404


@pytest.mark.django_db
def test_the_tiles_cost_the_same_queries_for_one_widget_or_all(
    client, alice, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(alice)
    client.get("/dashboards/home/tiles")  # the session, once
    with CaptureQueriesContext(connection) as all_tiles:
        client.get("/dashboards/home/tiles")
    with django_assert_max_num_queries(len(all_tiles)):
        client.get("/dashboards/home/tiles?w=temp")


# --- Whether the device has picked up a control's value ----------------------------------------


def pickup(client, alice):
    client.force_login(alice)
    data = client.get("/dashboards/home/tiles?w=power")
    match = re.search(r'data-pickup="(\w+)">(.*?)</p>', text(data), re.S)
    return match.group(1), re.sub(r"<[^>]+>", "", match.group(2))


@pytest.mark.django_db
def test_a_control_says_when_the_callback_does_not_answer_with_its_property(client, alice):
    state, words = pickup(client, alice)

    assert state == "not_answered"
    assert "does not answer with this property" in words
    page = text(client.get("/dashboards/home/tiles?w=power"))
    assert 'href="/devices/sensor1/callback/settings"' in page


@pytest.mark.django_db
def test_a_control_waits_for_the_next_call_then_says_it_was_picked_up(
    client, alice, sensor, callback_client
):
    callback_configure(sensor, send_property=sensor.properties.get(identifier="power"))
    client.force_login(alice)
    assert client.post("/dashboards/home/widgets/power/write", {"value": "on"}).status_code == 302

    assert pickup(client, alice) == ("waiting", "Waiting for the device's next call")

    answer = callback_client.post(sensor, {"t": 21})
    assert answer.json() is True
    state, words = pickup(client, alice)
    assert state == "picked_up"
    assert words.startswith("Picked up by the device's call")
    # A new value is waiting again.
    client.post("/dashboards/home/widgets/power/write", {"value": "off"})
    assert pickup(client, alice)[0] == "waiting"


@pytest.mark.django_db
def test_the_api_data_tells_whether_the_value_was_picked_up(alice, sensor, bearer_client):
    callback_configure(sensor, send_property=sensor.properties.get(identifier="power"))
    changed = timezone.now() - timedelta(minutes=5)
    Property.objects.filter(identifier="power").update(modified=changed)
    Device.objects.filter(pk=sensor.pk).update(last_call_at=changed + timedelta(minutes=1))
    api = bearer_client(alice)

    data = api.get("/v1/users/alice/dashboards/home/data").json()

    called = int((changed + timedelta(minutes=1)).timestamp() * 1000)
    assert data["widgets"]["power"]["pickup"] == {"state": "picked_up", "at": called}
    assert "pickup" not in data["widgets"]["temp"]
    Device.objects.filter(pk=sensor.pk).update(last_call_at=changed - timedelta(minutes=1))
    data = api.get("/v1/users/alice/dashboards/home/data").json()
    assert data["widgets"]["power"]["pickup"] == {"state": "waiting", "at": None}


# --- The live socket ---------------------------------------------------------------------------


def live_url(server, user="alice", dashboard="home"):
    return f"ws://127.0.0.1:{server.port}/v1/users/{user}/dashboards/{dashboard}/live"


def session_headers(user, server, origin=None):
    client = Client()
    client.force_login(user)
    return {
        "Cookie": f"sessionid={client.cookies['sessionid'].value}",
        "Origin": origin or f"http://127.0.0.1:{server.port}",
    }


def changed(ws, timeout=1.0):
    return sorted(json.loads(ws.recv(timeout=timeout))["widgets"])


def gathered(ws, wait=0.6):
    """Every widget named in the messages that arrive until none has for ``wait`` seconds."""
    ids = set()
    while True:
        try:
            ids.update(json.loads(ws.recv(timeout=wait))["widgets"])
        except TimeoutError:
            return sorted(ids)


def nothing(ws, wait=0.5):
    try:
        ws.recv(timeout=wait)
    except TimeoutError:
        return True
    return False


@pytest.mark.django_db(transaction=True)
def test_a_callback_names_the_widgets_it_changed_within_a_second(
    events_server, alice, sensor, callback_client
):
    callback_configure(sensor, set_property=sensor.properties.get(identifier="state"))
    callback_client.post(alice.devices.get(identifier="sensor2"), {"t": 1})  # (a first request)
    headers = session_headers(alice, events_server)
    with connect(live_url(events_server), additional_headers=headers, open_timeout=5) as ws:
        sent = time.monotonic()
        assert callback_client.post(sensor, {"t": 22}).status_code == 200
        # The call connects the device, sets its property and is counted: its widgets.
        assert changed(ws) == ["box", "calls", "power", "temp"]
        assert time.monotonic() - sent < 1.0
        assert gathered(ws) in ([], ["box", "calls", "power"])
        # Another device's call changes nothing here.
        callback_client.post(alice.devices.get(identifier="sensor2"), {"t": 1})
        assert nothing(ws)


@pytest.mark.django_db(transaction=True)
def test_a_bucket_write_reaches_its_chart(
    events_server, alice, sensor, callback_client, bearer_client
):
    callback_configure(sensor, write_bucket=alice.buckets.get(identifier="temps"))
    headers = session_headers(alice, events_server)
    with connect(live_url(events_server), additional_headers=headers, open_timeout=5) as ws:
        callback_client.post(sensor, {"t": 22})
        assert "history" in gathered(ws)
        api = bearer_client(alice)
        api.post("/v1/users/alice/buckets/temps/data", {"t": 23}, "application/json")
        assert changed(ws) == ["history"]


@pytest.mark.django_db(transaction=True)
def test_changes_are_sent_at_most_once_per_interval(events_server, alice, bearer_client):
    headers = session_headers(alice, events_server)
    api = bearer_client(alice)
    path = "/v3/users/alice/devices/sensor1/properties/state"
    arrivals = []

    def read(ws):
        # Timed as they arrive, while the writes go on.
        while True:
            try:
                message = json.loads(ws.recv(timeout=1.0))
            except (TimeoutError, ConnectionClosed):
                return
            arrivals.append((time.monotonic(), message))

    with connect(live_url(events_server), additional_headers=headers, open_timeout=5) as ws:
        reader = threading.Thread(target=read, args=(ws,))
        reader.start()
        writes = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            writes += 1
            api.put(path, {"value": {"t": writes}}, content_type="application/json")
        reader.join()
    assert {json.dumps(message) for _, message in arrivals} == {'{"widgets": ["temp"]}'}
    arrivals = [at for at, _ in arrivals]
    assert 1 <= len(arrivals) < writes
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert all(gap >= 0.25 for gap in gaps), gaps


@pytest.mark.django_db(transaction=True)
def test_only_the_owners_session_from_this_site_opens_it(events_server, alice):
    bob = UserFactory(username="bob")
    services.dashboard_create(owner=bob, identifier="bobs", widgets=[])
    cases = [
        ({}, "alice", "home", 401),
        (
            session_headers(alice, events_server, "https://evil.example"),
            "alice",
            "home",
            401,
        ),
        (session_headers(bob, events_server), "alice", "home", 404),
        (session_headers(alice, events_server), "bob", "bobs", 404),
        (session_headers(alice, events_server), "alice", "nosuch", 404),
    ]
    for headers, user, dashboard, status in cases:
        url = live_url(events_server, user, dashboard)
        with pytest.raises(InvalidStatus) as refused, connect(url, additional_headers=headers):
            pass
        assert refused.value.response.status_code == status, (user, dashboard, headers)
        assert json.loads(refused.value.response.body)["error"]["message"]


# --- A read-only link's page, and a dashboard's device picked in its selector ------------------


def shared_live_url(server, token):
    return f"ws://127.0.0.1:{server.port}/shared/dashboards/{token}/live"


@pytest.mark.django_db(transaction=True)
def test_a_shared_link_follows_its_dashboard_without_a_login(
    events_server, alice, sensor, callback_client
):
    callback_configure(sensor, set_property=sensor.properties.get(identifier="state"))
    dashboard = alice.dashboards.get(identifier="home")
    token = services.dashboard_share(dashboard=dashboard)
    with connect(shared_live_url(events_server, token), open_timeout=5) as ws:
        assert callback_client.post(sensor, {"t": 22}).status_code == 200
        assert "temp" in gathered(ws)

    # Its tiles, drawn for the link: controls disabled, nothing of the account linked.
    answer = Client().get(f"/shared/dashboards/{token}/tiles?w=temp&w=power")
    assert answer.status_code == 200
    assert answer["Referrer-Policy"] == "no-referrer"
    page = text(answer)
    assert sorted(tile_ids(page)) == ["power", "temp"]
    assert ">22<" in page
    assert "disabled" in page
    assert "/devices/" not in page

    # A revoked link opens neither.
    services.dashboard_unshare(dashboard=dashboard)
    for url in (shared_live_url(events_server, token), shared_live_url(events_server, "x" * 43)):
        with pytest.raises(InvalidStatus) as refused, connect(url):
            pass
        assert refused.value.response.status_code == 404
    assert Client().get(f"/shared/dashboards/{token}/tiles").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_selector_dashboard_follows_the_device_picked(
    events_server, alice, sensor, callback_client
):
    other = alice.devices.get(identifier="sensor2")
    PropertyFactory(device=other, identifier="power", value=True)
    callback_configure(other, set_property=other.properties.get(identifier="state"))
    callback_configure(sensor, set_property=sensor.properties.get(identifier="state"))
    services.dashboard_update(
        dashboard=alice.dashboards.get(identifier="home"), device_from_selector=True
    )
    headers = session_headers(alice, events_server)
    url = live_url(events_server) + "?device=sensor2"
    with connect(url, additional_headers=headers, open_timeout=5) as ws:
        callback_client.post(sensor, {"t": 5})
        assert nothing(ws)
        callback_client.post(other, {"t": 7})
        assert "temp" in gathered(ws)

    client = Client()
    client.force_login(alice)
    page = text(client.get("/dashboards/home/tiles?device=sensor2&w=temp&w=power"))
    assert ">7<" in page
    assert "?device=sensor2" in page  # the switch writes the picked device's property

    bob = UserFactory(username="bob")
    DeviceFactory(owner=bob, identifier="bobs_device")
    assert client.get("/dashboards/home/tiles?device=bobs_device").status_code == 404
    url = live_url(events_server) + "?device=bobs_device"
    with pytest.raises(InvalidStatus) as refused, connect(url, additional_headers=headers):
        pass
    assert refused.value.response.status_code == 404

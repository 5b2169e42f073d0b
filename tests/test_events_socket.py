"""The live events' WebSocket (issue 15, item 4), through a real uvicorn and a real WebSocket
client, in whichever mode the suite runs: embedded (a datagram socket) or services (Redis).

Events are raised by the real code paths: a device's callback over HTTP, the sweep, the API's
property writes, an export, an endpoint call; and reach the subscriber only once they commit.
"""

import json
import time
from contextlib import ExitStack

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts.auth import access_token_value, oauth_tokens_for
from accounts.services import access_token_create
from buckets.models import BucketExport
from core.events import publish
from devices.events import STATE_CHANGE
from devices.sweep import device_sweep_timeouts
from devices.tokens import callback_token_for
from tests.events_server import next_event, no_event, send_subscription
from tests.factories import (
    BucketFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)
from tests.worker import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_tasks():
    """Tasks run here as a worker would (Celery reads its configuration once: set it there)."""
    from thinger_http.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def token(user):
    return oauth_tokens_for(user)["access_token"]


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def sensor(alice):
    return DeviceFactory(owner=alice, identifier="sensor1")


def call(callback_client, device, body=None, **kwargs):
    return callback_client.post(device, {"temperature": 21} if body is None else body, **kwargs)


def test_a_callback_that_connects_a_device_reaches_the_subscriber_within_a_second(
    events_server, alice, sensor, callback_client
):
    subscription = {"event": "device_state_change", "device": "sensor1", "state": "connected"}
    with events_server.subscribe("alice", token(alice), subscription) as ws:
        sent = time.monotonic()
        answer = call(callback_client, sensor, query={"ip": "198.51.100.4"})
        assert answer.status_code == 200
        event = next_event(ws, timeout=1.0)
        assert time.monotonic() - sent < 1.0
        assert event["event"] == "device_state_change"
        assert event["device"] == "sensor1"
        assert event["state"] == "connected"
        assert event["ip"] == "198.51.100.4"
        assert abs(event["ts"] - time.time() * 1000) < 5000
        # Connected already: the next call is no state change.
        call(callback_client, sensor)
        assert no_event(ws)


def test_every_callback_call_is_an_event_with_its_status_and_bytes(
    events_server, alice, sensor, callback_client
):
    sensor.callback  # noqa: B018 (the settings row exists)
    callback_configure(sensor, send_property=PropertyFactory(device=sensor, identifier="cfg"))
    with events_server.subscribe("alice", token(alice), {"event": "device_callback_call"}) as ws:
        body = json.dumps({"t": 1})
        call(callback_client, sensor, body)
        ok = next_event(ws)
        assert (ok["device"], ok["status"], ok["rx_bytes"]) == ("sensor1", 200, len(body))
        assert ok["tx_bytes"] == len(b"null")
        call(callback_client, sensor, token="not-a-token")
        refused = next_event(ws)
        assert refused["status"] == 401
        assert refused["tx_bytes"] > 0


def test_patterns_match_whole_values_and_a_missing_key_filters_out(
    events_server, alice, callback_client
):
    devices = {name: DeviceFactory(owner=alice, identifier=name) for name in ("esp_1", "esp")}
    devices["xesp_2"] = DeviceFactory(owner=alice, identifier="xesp_2")
    subscription = {"event": "device_.*", "device": "esp_.*", "state": "connected"}
    with events_server.subscribe("alice", token(alice), subscription) as ws:
        for device in devices.values():
            call(callback_client, device)
        event = next_event(ws)
        assert (event["event"], event["device"]) == ("device_state_change", "esp_1")
        # esp and xesp_2 do not match the whole pattern; esp_1's callback_call has no "state".
        assert no_event(ws)


def test_a_new_subscription_replaces_the_last(events_server, alice, sensor, callback_client):
    with events_server.subscribe("alice", token(alice), {"event": "bucket_.*"}) as ws:
        call(callback_client, sensor)
        assert no_event(ws)
        send_subscription(ws, {"event": ".*"})
        call(callback_client, sensor)
        assert next_event(ws)["event"] == "device_callback_call"


def test_nothing_is_sent_before_a_subscription(events_server, alice, sensor, callback_client):
    with events_server.subscribe("alice", token(alice)) as ws:
        call(callback_client, sensor)
        assert no_event(ws)


def test_a_subscriber_never_sees_another_users_events(
    events_server, alice, sensor, callback_client
):
    bob = UserFactory(username="bob")
    bobs = DeviceFactory(owner=bob, identifier="sensor1")
    with (
        events_server.subscribe("bob", token(bob), {"event": ".*"}) as bob_ws,
        events_server.subscribe("alice", token(alice), {"event": ".*"}) as alice_ws,
    ):
        call(callback_client, sensor)
        call(callback_client, sensor, token=callback_token_for(bobs))
        seen = [next_event(alice_ws), next_event(alice_ws), next_event(alice_ws)]
        assert {e["event"] for e in seen} == {"device_state_change", "device_callback_call"}
        assert [e["status"] for e in seen if e["event"] == "device_callback_call"] == [200, 403]
        assert no_event(bob_ws)
    # Nor with his own token in her path.
    with pytest.raises(InvalidStatus) as refused, events_server.subscribe("alice", token(bob)):
        pass
    assert refused.value.response.status_code == 403
    assert b"another user" in refused.value.response.body


@pytest.mark.parametrize(
    "credential",
    ["", "not-a-token", "device"],
    ids=["none", "garbage", "a device's callback token"],
)
def test_a_bad_token_is_refused_at_the_handshake(events_server, sensor, credential):
    value = callback_token_for(sensor) if credential == "device" else credential
    with pytest.raises(InvalidStatus) as refused, events_server.subscribe("alice", value or None):
        pass
    response = refused.value.response
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["message"] == "invalid or missing token"


def test_the_token_may_come_in_the_authorization_header(events_server, alice, sensor):
    from websockets.sync.client import connect

    url = events_server.url("alice")

    with connect(url, additional_headers={"Authorization": f"Bearer {token(alice)}"}) as ws:
        send_subscription(ws, {"event": ".*"})
        publish("alice", STATE_CHANGE("sensor1", state="connected", ip=None))
        assert next_event(ws)["device"] == "sensor1"


def test_a_long_lived_token_needs_the_events_permission(events_server, alice, sensor):
    allowed = access_token_create(
        owner=alice, identifier="events", name="n", allow={"Events": {"*": ["ReadEvents"]}}
    )
    devices_only = access_token_create(
        owner=alice, identifier="devices", name="n", allow={"Device": {"*": "*"}}
    )
    with (
        pytest.raises(InvalidStatus) as refused,
        events_server.subscribe("alice", access_token_value(devices_only)),
    ):
        pass
    assert refused.value.response.status_code == 403
    with events_server.subscribe("alice", access_token_value(allowed), {"event": ".*"}) as ws:
        publish("alice", STATE_CHANGE("sensor1", state="connected", ip=None))
        assert next_event(ws)["event"] == "device_state_change"


@pytest.mark.parametrize(
    ("subscription", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"event": "(unclosed"}', "'event' is not a regular expression"),
        ('{"device": {"a": 1}}', "'device' must be a string"),
    ],
)
def test_a_bad_subscription_closes_with_a_clear_reason(events_server, alice, subscription, reason):
    with (
        events_server.subscribe("alice", token(alice)) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.send(subscription)
        ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1007
    assert closed.value.rcvd.reason.startswith("bad subscription: ")
    assert reason in closed.value.rcvd.reason


def test_the_sweep_announces_a_disconnection(events_server, alice, sensor, callback_client):
    call(callback_client, sensor)
    subscription = {"event": "device_state_change", "state": "disconnected"}
    with events_server.subscribe("alice", token(alice), subscription) as ws:
        from datetime import timedelta

        from django.utils import timezone

        assert device_sweep_timeouts(now=timezone.now() + timedelta(days=1)) == 1
        event = next_event(ws)
        assert (event["device"], event["state"]) == ("sensor1", "disconnected")
        sensor.refresh_from_db()
        assert event["ts"] == int(sensor.timeout_at.timestamp() * 1000)


def test_property_writes_from_the_callback_and_the_api_are_announced(
    events_server, alice, sensor, callback_client, bearer_client
):
    callback_configure(sensor, set_property=PropertyFactory(device=sensor, identifier="state"))
    api = bearer_client(alice)
    with events_server.subscribe("alice", token(alice), {"event": "device_property_update"}) as ws:
        call(callback_client, sensor, {"on": True})
        assert next_event(ws)["property"] == "state"
        path = "/v3/users/alice/devices/sensor1/properties"
        api.post(path, {"property": "mode", "value": 1}, content_type="application/json")
        assert next_event(ws)["property"] == "mode"
        api.put(f"{path}/mode", {"value": 2}, content_type="application/json")
        event = next_event(ws)
        assert (event["device"], event["property"]) == ("sensor1", "mode")


def test_records_stored_by_the_callback_and_the_api_are_announced(
    events_server, alice, sensor, callback_client, bearer_client
):
    bucket = BucketFactory(owner=alice, identifier="temps")
    callback_configure(sensor, write_bucket=bucket)
    api = bearer_client(alice)
    with events_server.subscribe("alice", token(alice), {"event": "bucket_records_write"}) as ws:
        call(callback_client, sensor, [{"t": 1}, {"t": 2}])
        event = next_event(ws)
        assert (event["bucket"], event["device"], event["records"]) == ("temps", "sensor1", 2)
        answer = api.post("/v1/users/alice/buckets/temps/data", {"t": 3}, "application/json")
        assert answer.status_code == 200, answer.content
        event = next_event(ws)
        assert (event["bucket"], event["records"]) == ("temps", 1)
        assert "device" not in event
        # A disabled bucket stores nothing, and nothing is announced.
        bucket.enabled = False
        bucket.save()
        call(callback_client, sensor)
        assert no_event(ws)


def test_an_event_is_sent_only_after_its_transaction_commits(events_server, alice):
    from django.db import transaction

    with events_server.subscribe("alice", token(alice), {"event": ".*"}) as ws:
        with transaction.atomic():
            publish("alice", STATE_CHANGE("sensor1", state="connected", ip=None))
            assert no_event(ws, wait=0.3)
        assert next_event(ws)["device"] == "sensor1"
        with transaction.atomic():
            publish("alice", STATE_CHANGE("sensor2", state="connected", ip=None))
            transaction.set_rollback(True)
        assert no_event(ws)


def test_a_finished_export_is_announced_with_its_file_url(
    events_server, alice, bearer_client, settings, tmp_path, eager_tasks
):
    settings.MEDIA_ROOT = tmp_path
    BucketFactory(owner=alice, identifier="temps")
    api = bearer_client(alice)
    subscription = {"event": "bucket_export_completed", "bucket": "temps"}
    with events_server.subscribe("alice", token(alice), subscription) as ws:
        created = api.post("/v1/users/alice/buckets/temps/exports", {}, "application/json")
        assert created.status_code in (200, 201), created.content
        file = created.json()["file"]
        export = BucketExport.objects.get(file=file)
        assert (export.state, export.error) == ("done", "")
        event = next_event(ws)
        assert event["file"] == file
        assert event["state"] == "done"
        assert event["url"] == f"file://users/alice/buckets/temps/{file}"
    # Where the Node-RED export node then reads it (nodes/bucket-export.js, getFileUrl): the
    # url's path with "exports" before the file's name, under /v1/.
    pieces = event["url"].removeprefix("file://").split("/")
    pieces.insert(len(pieces) - 1, "exports")
    download = api.get("/v1/" + "/".join(pieces))
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"ts")


def test_an_endpoint_call_is_announced(events_server, alice, bearer_client, receiver, settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    from tests.factories import EndpointFactory

    EndpointFactory(
        owner=alice,
        identifier="hook",
        config={
            "url": f"{receiver.url}/hook",
            "method": "POST",
            "headers": [],
            "body_type": "json",
        },
    )
    api = bearer_client(alice)
    with events_server.subscribe("alice", token(alice), {"event": "endpoint_call"}) as ws:
        answer = api.post("/v1/users/alice/endpoints/hook/call", {"a": 1}, "application/json")
        assert answer.status_code == 200, answer.content
        event = next_event(ws)
        assert (event["endpoint"], event["status"], event["status_code"]) == (
            "hook",
            "success",
            200,
        )


def test_a_process_holds_at_most_its_share_of_sockets(events_server, alice, settings):
    settings.EVENTS_MAX_CONNECTIONS = 2
    with ExitStack() as held:
        first = held.enter_context(events_server.subscribe("alice", token(alice)))
        held.enter_context(events_server.subscribe("alice", token(alice)))
        with (
            pytest.raises(InvalidStatus) as refused,
            events_server.subscribe("alice", token(alice)),
        ):
            pass
        assert refused.value.response.status_code == 503
        first.close()
        deadline = time.monotonic() + 5
        while True:
            try:
                held.enter_context(events_server.subscribe("alice", token(alice)))
                break
            except InvalidStatus:
                assert time.monotonic() < deadline
                time.sleep(0.05)


@pytest.mark.services
def test_an_export_by_a_real_worker_is_announced(
    events_server, alice, bearer_client, settings, tmp_path
):
    """The Node-RED export node's wait: the event comes from the worker process, through Redis."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    BucketFactory(owner=alice, identifier="temps")
    api = bearer_client(alice)
    subscription = {"event": "bucket_export_completed", "bucket": "temps"}
    with (
        run_worker(tmp_path, **events_server.environment) as worker,
        events_server.subscribe("alice", token(alice), subscription) as ws,
    ):
        settings.BUCKET_TASK_QUEUE = worker.queue
        created = api.post("/v1/users/alice/buckets/temps/exports", {}, "application/json")
        event = next_event(ws, timeout=30)
        assert event["file"] == created.json()["file"], worker.output()
        assert event["state"] == "done"


def test_a_plain_http_request_for_the_events_is_told_to_upgrade(
    alice, bearer_client, client, assert_json_error
):
    answer = bearer_client(alice).get("/v1/users/alice/events")
    assert_json_error(answer, 426)
    assert answer["Upgrade"] == "websocket"
    # Credentials first, as on the socket.
    assert_json_error(client.get("/v1/users/alice/events"), 401)
    assert_json_error(bearer_client(UserFactory()).get("/v1/users/alice/events"), 403)


def test_a_console_page_subscribes_with_its_session_from_this_site_only(
    events_server, alice, client
):
    """The console's pages (dashboards) have a session, not a token; another site's page would
    send the same cookie, so the Origin must be this host."""
    from websockets.sync.client import connect

    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    site = f"http://127.0.0.1:{events_server.port}"
    url = events_server.url("alice")
    with connect(url, additional_headers={"Cookie": cookie, "Origin": site}) as ws:
        send_subscription(ws, {"event": ".*"})
        publish("alice", STATE_CHANGE("sensor1", state="connected", ip=None))
        assert next_event(ws)["device"] == "sensor1"
    for headers in (
        {"Cookie": cookie, "Origin": "https://evil.example"},
        {"Cookie": cookie},
        {"Origin": site},
    ):
        with pytest.raises(InvalidStatus) as refused, connect(url, additional_headers=headers):
            pass
        assert refused.value.response.status_code == 401

"""The callback's two writers agree: one table of scenarios, run through the PostgreSQL function
and through the portable ORM writer on the same database, leaves the same rows and gets the same
answers (SPEC 1; devices/callback/rules.py).

Each scenario builds the same world (a user, a device, its bucket, properties and endpoint), makes
its calls at one frozen server time, and takes a snapshot of everything a call can write, by ids
rather than primary keys. Both runs happen in one transaction each, rolled back after.
"""

import json
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import connection, transaction

from accounts.auth import oauth_tokens_for
from buckets.models import BucketRecord
from devices.callback import portable, postgresql
from devices.models import ConnectionEvent, Device, DeviceDailyStats, Property
from devices.services import device_rotate_token
from devices.tokens import callback_token_for
from endpoints.models import EndpointCall
from tests.factories import (
    BucketFactory,
    DeviceFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=UTC)
T = 1_700_000_000_000
BODY = {"temperature": 21.5, "humidity": 40}

# What a device's callback does in each scenario: its actions, and the state of what they use.
EVERYTHING = {"bucket": True, "set": "state", "endpoint": True, "send": "reply"}


def call(
    method="POST",
    body=BODY,
    *,
    token="device",
    query=None,
    content_type="application/json",
    device="sensor",
):
    return {
        "device": device,
        "method": method,
        "body": body,
        "token": token,
        "query": query,
        "content_type": content_type,
    }


SCENARIOS = {
    "single record": (EVERYTHING, [call()]),
    "batch": (EVERYTHING, [call(body=[{"n": 1}, {"n": 2}, {"ts": T, "n": 3}])]),
    "own ts": (EVERYTHING, [call(body={"ts": T, "v": 1})]),
    "same ts twice": (EVERYTHING, [call(body={"ts": T, "v": 1}), call(body={"ts": T, "v": 2})]),
    "query ts": (EVERYTHING, [call(body=[{"n": 1}, {"n": 2}], query={"ts": str(T)})]),
    "several at one server millisecond": (EVERYTHING, [call(body={"n": n}) for n in range(3)]),
    "endpoint only": ({"endpoint": True}, [call()]),
    "not json": (EVERYTHING, [call(body=b"temperature=21.5", content_type="text/plain")]),
    "empty body": (EVERYTHING, [call(body=b"")]),
    "get": (EVERYTHING, [call("GET", body=b"")]),
    "answer with the property it sets": (
        {"bucket": True, "set": "state", "send": "state"},
        [
            call(body={"b": 2, "a": 1}),
            call("GET", body=b""),
        ],
    ),
    "json null and a string": (EVERYTHING, [call(body=None), call(body="hello")]),
    "disabled bucket": ({**EVERYTHING, "bucket": "disabled"}, [call()]),
    "disabled endpoint": ({**EVERYTHING, "endpoint": "disabled"}, [call()]),
    "nothing configured": ({}, [call(), call("GET", body=b"")]),
    "rotated token": (EVERYTHING, [call(token="rotated")]),
    "owner token": (EVERYTHING, [call(token="owner")]),
    "disabled device": ({**EVERYTHING, "device": "disabled"}, [call()]),
    "unknown device": (EVERYTHING, [call(token="ghost", device="ghost")]),
    "a disconnected device connects again": ({**EVERYTHING, "device": "was connected"}, [call()]),
}


def build(config):
    """The world of a scenario; returns the device and the tokens its calls use."""
    owner = UserFactory(username="alice")
    device = DeviceFactory(
        owner=owner, identifier="sensor", enabled=config.get("device") != "disabled"
    )
    if config.get("device") == "was connected":
        Device.objects.filter(pk=device.pk).update(
            connected=False, connected_at=AT.replace(hour=1), last_call_at=AT.replace(hour=1)
        )
    properties = {
        name: PropertyFactory(device=device, identifier=name, value=value)
        for name, value in (("state", None), ("reply", {"led": "on", "interval": 60}))
    }
    actions = {}
    if config.get("bucket"):
        actions["write_bucket"] = BucketFactory(
            owner=owner, identifier="readings", enabled=config["bucket"] != "disabled"
        )
    if config.get("endpoint"):
        actions["call_endpoint"] = EndpointFactory(
            owner=owner, identifier="hook", enabled=config["endpoint"] != "disabled"
        )
    for action in ("set", "send"):
        if config.get(action):
            actions[f"{action}_property"] = properties[config[action]]
    callback_configure(device, timeout=7, **actions)
    tokens = {
        "device": callback_token_for(device),
        "owner": oauth_tokens_for(owner)["access_token"],
    }
    tokens["rotated"] = tokens["device"]
    device_rotate_token(device=device)
    tokens["device"] = callback_token_for(device)
    ghost = DeviceFactory(owner=owner, identifier="ghost")
    tokens["ghost"] = callback_token_for(ghost)
    ghost.delete()
    return device, tokens


def snapshot():
    """Everything a call writes, by ids, in a stable order."""
    return {
        "records": list(
            BucketRecord.objects.order_by("bucket__identifier", "ts").values_list(
                "bucket__identifier", "ts", "value", "device"
            )
        ),
        "devices": list(
            Device.objects.order_by("identifier").values_list(
                "identifier", "connected", "connected_at", "last_call_at", "remote_ip", "timeout_at"
            )
        ),
        "properties": list(
            Property.objects.order_by("device__identifier", "identifier").values_list(
                "device__identifier", "identifier", "value", "modified"
            )
        ),
        "events": list(
            ConnectionEvent.objects.order_by("at", "kind").values_list(
                "device__identifier", "kind", "at", "remote_ip"
            )
        ),
        "statistics": list(
            DeviceDailyStats.objects.order_by("device__identifier", "date").values_list(
                "device__identifier", "date", "calls", "rx_bytes", "tx_bytes"
            )
        ),
        "endpoint calls": list(
            EndpointCall.objects.order_by("ts", "payload").values_list(
                "endpoint__identifier",
                "device__identifier",
                "payload",
                "ts",
                "status",
                "attempts",
                "created",
                "next_attempt_at",
                "finished_at",
                "last_error",
            )
        ),
    }


ANSWER_HEADERS = ("Content-Type", "Content-Length", "X-Callback-Ignored", "Retry-After", "Allow")


def run(client, scenario, writer):
    """The scenario's answers, snapshot, enqueued endpoint calls and live events (without their
    times), written by ``writer``."""
    config, calls = SCENARIOS[scenario]
    answers, enqueued, events = [], [], []

    def published(username, *made):
        events.extend((username, {k: v for k, v in e.items() if k != "ts"}) for e in made)

    with transaction.atomic(), mock.patch("django.utils.timezone.now", return_value=AT):
        _, tokens = build(config)
        with (
            mock.patch("devices.callback.ingest.writer", return_value=writer),
            mock.patch.object(transaction, "on_commit", side_effect=enqueued.append),
            mock.patch("devices.callback.ingest.publish", side_effect=published),
            mock.patch("devices.callback.views.publish", side_effect=published),
        ):
            for made in calls:
                body = made["body"]
                if not isinstance(body, bytes):
                    body = json.dumps(body)
                path = f"/v3/users/alice/devices/{made['device']}/callback/data"
                query = "&".join(f"{key}={value}" for key, value in (made["query"] or {}).items())
                response = client.generic(
                    made["method"],
                    f"{path}?{query}" if query else path,
                    body,
                    content_type=made["content_type"],
                    headers={"Authorization": f"Bearer {tokens[made['token']]}"},
                    REMOTE_ADDR="203.0.113.7",
                )
                headers = {name: response.get(name) for name in ANSWER_HEADERS}
                answers.append((response.status_code, response.content, headers))
        state = snapshot()
        transaction.set_rollback(True)
    return answers, state, len(enqueued), events


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the writers differ on PostgreSQL only (elsewhere the portable one is all)")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_both_writers_leave_the_same_rows_and_answer_the_same(
    postgresql_only, client, settings, scenario
):
    settings.CALLBACK_RATE = None

    by_function = run(client, scenario, postgresql.write)
    by_orm = run(client, scenario, portable.write)

    assert by_function[0] == by_orm[0], "answers"
    assert by_function[1] == by_orm[1], "rows"
    assert by_function[2] == by_orm[2], "endpoint calls handed to the workers"
    assert by_function[3] == by_orm[3], "live events"
    statuses = [status for status, _, _ in by_function[0]]
    assert set(statuses) <= {200, 401, 403, 404}


def test_the_scenarios_cover_what_a_call_can_do(postgresql_only, client, settings):
    """The table is not vacuous: between them, the scenarios store records at the server's time
    and at their own, replace one, set a property, record an endpoint call, answer with a
    property, ignore a body, and are refused each way."""
    settings.CALLBACK_RATE = None
    seen = {
        "statuses": set(),
        "records": 0,
        "endpoint calls": 0,
        "ignored": 0,
        "answers": 0,
        "events": set(),
    }
    for scenario in SCENARIOS:
        answers, state, _, events = run(client, scenario, postgresql.write)
        seen["events"] |= {event["event"] for _, event in events}
        seen["statuses"] |= {status for status, _, _ in answers}
        seen["records"] += len(state["records"])
        seen["endpoint calls"] += len(state["endpoint calls"])
        seen["ignored"] += sum(1 for _, _, headers in answers if headers["X-Callback-Ignored"])
        seen["answers"] += sum(1 for _, content, _ in answers if content)

    assert seen["statuses"] == {200, 401, 403, 404}
    assert seen["records"] > 10
    assert seen["endpoint calls"] > 5
    assert seen["ignored"] == 2
    assert seen["answers"] > 10
    assert seen["events"] == {
        "device_callback_call",
        "device_state_change",
        "device_property_update",
        "bucket_records_write",
    }

"""Callbacks in parallel (issue 6, item 2): threads post to a live server on PostgreSQL, each
request in its own connection and transaction, as under production load. Every 200 is a stored
record; the daily counters add up; parallel writes of one explicit ``ts`` leave one record.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from unittest import mock

import pytest
import requests
from django.db.models import Sum

from buckets.models import BucketRecord
from devices.models import ConnectionEvent, Device, DeviceDailyStats, Property
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
from tests.reliability import report

pytestmark = pytest.mark.services

THREADS = 16
T = 1_700_000_000_000
requests_sent = []


def frozen_at(ms):
    """The server's clock stopped at ``ms``, for every thread of the live server."""
    return mock.patch(
        "django.utils.timezone.now", return_value=datetime.fromtimestamp(ms / 1000, tz=UTC)
    )


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if requests_sent:
        report(request, f"parallel requests {sum(requests_sent)}, every 200 stored")


@pytest.fixture
def busy_device(db, settings):
    """A device with every action on and no rate limit."""
    settings.CALLBACK_RATE = None
    device = DeviceFactory()
    callback_configure(
        device,
        write_bucket=BucketFactory(owner=device.owner),
        set_property=PropertyFactory(device=device, identifier="state"),
        call_endpoint=EndpointFactory(owner=device.owner),
        send_property=PropertyFactory(device=device, identifier="reply", value={"led": "on"}),
    )
    return device


@pytest.fixture(autouse=True)
def in_flight(monkeypatch):
    """The most callbacks the server had in progress at once: proof the posts overlapped."""
    from devices.callback import views

    lock, state = threading.Lock(), {"now": 0, "peak": 0}
    ingest = views.callback_ingest

    def counted(**kwargs):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            return ingest(**kwargs)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(views, "callback_ingest", counted)
    return state


def post_all(live_server, device, bodies):
    """POST each body to the device's callback from THREADS threads at once."""
    url = (
        f"{live_server.url}/v3/users/{device.owner.username}/devices/"
        f"{device.identifier}/callback/data"
    )
    headers = {
        "Authorization": f"Bearer {callback_token_for(device)}",
        "Content-Type": "application/json",
        # Django's test server keeps a thread, and its database connection, per open connection.
        "Connection": "close",
    }

    def post(body):
        return requests.post(url, data=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        responses = list(pool.map(post, bodies))
    requests_sent.append(len(bodies))
    return responses


def daily_totals(device):
    return DeviceDailyStats.objects.filter(device=device).aggregate(
        calls=Sum("calls"), rx=Sum("rx_bytes"), tx=Sum("tx_bytes")
    )


def test_200_parallel_callbacks_store_200_records_and_count_them(
    live_server, busy_device, enqueued, in_flight
):
    bodies = [json.dumps({"n": n, "pad": "x" * (n % 13)}).encode() for n in range(200)]

    responses = post_all(live_server, busy_device, bodies)

    assert in_flight["peak"] > 1
    assert [r.status_code for r in responses] == [200] * 200
    assert {r.content for r in responses} == {responses[0].content}
    assert json.loads(responses[0].content) == {"led": "on"}
    stored = BucketRecord.objects.filter(bucket=busy_device.callback.write_bucket)
    assert sorted(value["n"] for value in stored.values_list("value", flat=True)) == list(
        range(200)
    )
    assert stored.values("ts").distinct().count() == 200
    assert EndpointCall.objects.filter(device=busy_device).count() == 200
    assert sorted(call_id for call_id, _ in enqueued) == sorted(
        EndpointCall.objects.values_list("pk", flat=True)
    )
    assert daily_totals(busy_device) == {
        "calls": 200,
        "rx": sum(len(body) for body in bodies),
        "tx": sum(len(r.content) for r in responses),
    }
    state = Property.objects.get(device=busy_device, identifier="state").value
    assert state in [json.loads(body) for body in bodies]
    device = Device.objects.get(pk=busy_device.pk)
    assert device.connected
    # Exactly one call flipped the device to connected, whatever the interleaving.
    assert ConnectionEvent.objects.filter(device=device).count() == 1


def test_parallel_writes_of_the_same_explicit_ts_leave_one_record(
    live_server, busy_device, enqueued, in_flight
):
    ts = 1_700_000_000_000
    bodies = [json.dumps({"ts": ts, "n": n}).encode() for n in range(50)]

    responses = post_all(live_server, busy_device, bodies)

    assert in_flight["peak"] > 1
    assert [r.status_code for r in responses] == [200] * 50
    [record] = BucketRecord.objects.filter(bucket=busy_device.callback.write_bucket)
    assert record.ts == ts
    assert record.value in [{"n": n} for n in range(50)]
    assert daily_totals(busy_device)["calls"] == 50


def test_parallel_batches_that_repeat_their_timestamps_store_each_record_once(
    live_server, busy_device, enqueued
):
    """A device that retries a whole timestamped batch while the first try is still running."""
    batch = json.dumps([{"ts": 1_700_000_000_000 + n, "n": n} for n in range(20)]).encode()

    responses = post_all(live_server, busy_device, [batch] * 20)

    assert [r.status_code for r in responses] == [200] * 20
    stored = BucketRecord.objects.filter(bucket=busy_device.callback.write_bucket)
    assert sorted(stored.values_list("ts", "value")) == [
        (1_700_000_000_000 + n, {"n": n}) for n in range(20)
    ]


def test_parallel_callbacks_in_one_millisecond_get_consecutive_server_times(
    live_server, busy_device, in_flight
):
    """What a device sends (no endpoint, no ts) at a rate above one call per millisecond: the
    bucket gives each record its own millisecond, none is refused and none is lost."""
    busy_device.callback.call_endpoint = None
    busy_device.callback.save()
    bucket = busy_device.callback.write_bucket
    other = BucketRecord.objects.create(bucket=bucket, ts=T + 5, value={"kept": True})
    bodies = [json.dumps({"n": n}).encode() for n in range(120)]

    with frozen_at(T):
        responses = post_all(live_server, busy_device, bodies)

    assert in_flight["peak"] > 1
    assert [r.status_code for r in responses] == [200] * 120
    other.refresh_from_db()
    assert other.value == {"kept": True}
    stored = BucketRecord.objects.filter(bucket=bucket).exclude(pk=other.pk)
    # One millisecond each from the frozen time on, the one a stored record holds left out.
    assert sorted(stored.values_list("ts", flat=True)) == [
        ts for ts in range(T, T + 121) if ts != T + 5
    ]
    assert sorted(value["n"] for value in stored.values_list("value", flat=True)) == list(
        range(120)
    )
    assert daily_totals(busy_device)["calls"] == 120


def test_50_devices_posting_at_once_into_one_bucket_store_every_call_once_with_its_device(
    live_server, settings, in_flight
):
    """A fleet sharing a bucket, every call at the same server millisecond: each 200 is one
    record, none is refused or lost, no two share a ts, and each says which device wrote it."""
    settings.CALLBACK_RATE = None
    owner = UserFactory()
    bucket = BucketFactory(owner=owner)
    devices = [DeviceFactory(owner=owner, identifier=f"fleet{n}") for n in range(50)]
    for device in devices:
        callback_configure(device, write_bucket=bucket)
    calls = [(device, n) for n in range(4) for device in devices]

    def post(made):
        device, n = made
        url = (
            f"{live_server.url}/v3/users/{owner.username}/devices/{device.identifier}/callback/data"
        )
        headers = {
            "Authorization": f"Bearer {callback_token_for(device)}",
            "Content-Type": "application/json",
            "Connection": "close",
        }
        body = json.dumps({"sender": device.identifier, "n": n})
        return requests.post(url, data=body, headers=headers, timeout=60)

    with frozen_at(T), ThreadPoolExecutor(max_workers=THREADS) as pool:
        responses = list(pool.map(post, calls))
    requests_sent.append(len(calls))

    assert in_flight["peak"] > 1
    assert [r.status_code for r in responses] == [200] * len(calls)
    stored = list(BucketRecord.objects.filter(bucket=bucket).values_list("ts", "value", "device"))
    assert len(stored) == len(calls)
    assert sorted(ts for ts, _, _ in stored) == list(range(T, T + len(calls)))
    assert all(value["sender"] == device for _, value, device in stored)
    assert sorted((value["sender"], value["n"]) for _, value, _ in stored) == sorted(
        (device.identifier, n) for device, n in calls
    )

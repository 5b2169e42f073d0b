"""A device's statistics through the REST API (SPEC 2), as JSON and as Server-Sent Events
(SPEC 9): connection state, totals and the daily series, counted by real callbacks."""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from devices.models import Device
from devices.streams import _STREAM_SLOTS
from tests.factories import (
    DeviceDailyStatsFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db

STATS = "/v3/users/alice/devices/d1/stats"
STATS_V1 = "/v1/users/alice/devices/d1/stats"
KEYS = {
    "connected",
    "connected_ts",
    "ip_address",
    "rx_bytes",
    "tx_bytes",
    "calls",
    "last_call_ts",
    "daily",
}


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def device(owner):
    return DeviceFactory(owner=owner, identifier="d1")


@pytest.fixture
def api(bearer_client, owner):
    return bearer_client(owner)


@pytest.fixture
def fast_events(settings):
    settings.STATS_SSE_SECONDS = 5
    settings.STATS_SSE_POLL_SECONDS = 0.01
    settings.STATS_SSE_KEEPALIVE_SECONDS = 60
    settings.STATS_SSE_MAX_STREAMS = 2
    yield settings
    assert _STREAM_SLOTS.open == 0, "a stream was left open"
    _STREAM_SLOTS.open = 0


def read(api, path=STATS):
    response = api.get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def ms(moment):
    return int(moment.timestamp() * 1000)


def test_a_new_device_has_zeros_and_thirty_days(api, device):
    body = read(api)

    assert set(body) == KEYS
    assert body["connected"] is False
    assert body["connected_ts"] is None
    assert body["ip_address"] is None
    assert (body["rx_bytes"], body["tx_bytes"], body["calls"]) == (0, 0, 0)
    assert len(body["daily"]) == 30
    assert body["daily"][-1] == {
        "date": timezone.localdate().isoformat(),
        "calls": 0,
        "rx_bytes": 0,
        "tx_bytes": 0,
    }
    assert body["daily"][0]["date"] == (timezone.localdate() - timedelta(days=29)).isoformat()


def test_totals_after_real_callbacks(api, device, callback_client):
    callback_configure(
        device, send_property=PropertyFactory(device=device, identifier="reply", value=[1, 2])
    )
    first, second = b'{"temperature": 21.5}', b'{"temperature": 22}'

    replies = [
        callback_client.post(device, first, query={"ip": "::ffff:172.17.0.1"}),
        callback_client.post(device, second, query={"ip": "::ffff:172.17.0.1"}),
    ]

    assert [reply.status_code for reply in replies] == [200, 200]
    sent = sum(len(reply.content) for reply in replies)
    body = read(api)
    device.refresh_from_db()
    assert body["connected"] is True
    assert body["connected_ts"] == ms(device.connected_at)
    assert body["last_call_ts"] == ms(device.last_call_at)
    assert body["ip_address"] == "172.17.0.1"
    assert body["calls"] == 2
    assert body["rx_bytes"] == len(first) + len(second)
    assert body["tx_bytes"] == sent == 2 * len(b"[1, 2]")  # the value as the database stores it
    assert body["daily"][-1] == {
        "date": timezone.localdate().isoformat(),
        "calls": 2,
        "rx_bytes": len(first) + len(second),
        "tx_bytes": sent,
    }


def test_ignored_bodies_count_as_calls(api, device, callback_client):
    assert callback_client.post(device, b"not json", content_type="text/plain").status_code == 200

    body = read(api)

    assert body["calls"] == 1
    assert body["rx_bytes"] == len(b"not json")


def test_daily_series_has_zeros_for_quiet_days_and_totals_cover_all_days(api, device):
    today = timezone.localdate()
    DeviceDailyStatsFactory(device=device, date=today - timedelta(days=3), calls=4, rx_bytes=40)
    DeviceDailyStatsFactory(device=device, date=today - timedelta(days=40), calls=1, rx_bytes=9)

    body = read(api)

    by_date = {day["date"]: day for day in body["daily"]}
    assert by_date[(today - timedelta(days=3)).isoformat()]["calls"] == 4
    assert by_date[(today - timedelta(days=2)).isoformat()] == {
        "date": (today - timedelta(days=2)).isoformat(),
        "calls": 0,
        "rx_bytes": 0,
        "tx_bytes": 0,
    }
    assert (today - timedelta(days=40)).isoformat() not in by_date
    assert (body["calls"], body["rx_bytes"]) == (5, 49)


def test_days_parameter(api, device):
    assert len(read(api, f"{STATS}?days=7")["daily"]) == 7
    assert len(read(api, f"{STATS}?days=")["daily"]) == 30
    assert len(read(api, f"{STATS}?days=100000")["daily"]) == 366


@pytest.mark.parametrize("days", ["0", "-1", "abc"])
def test_bad_days_are_400(api, device, assert_json_error, days):
    message = assert_json_error(api.get(f"{STATS}?days={days}"), 400)

    assert message.startswith("days:")


def test_the_deprecated_v1_path_answers_the_same(api, device, callback_client):
    callback_client.post(device, {"n": 1})

    assert read(api, STATS_V1) == read(api, STATS)


# Server-Sent Events.


def open_stream(api, path=STATS):
    response = api.get(path, headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/event-stream"
    return response, iter(response.streaming_content)


def close_stream(response):
    """Close a stream as the server does when the client goes. The end-of-request signal must
    not close the test's database connection (Django's test client takes the same care)."""
    with mock.patch.object(connection, "close_if_unusable_or_obsolete"):
        response.close()


def event(chunk):
    text = chunk.decode()
    assert text.startswith("data: ") and text.endswith("\n\n"), text
    return json.loads(text[len("data: ") :])


def test_the_first_event_carries_the_stats(api, device, fast_events, callback_client):
    callback_client.post(device, {"n": 1})

    response, chunks = open_stream(api)

    assert event(next(chunks)) == read(api)
    close_stream(response)


def test_an_event_follows_each_change(api, device, fast_events, callback_client):
    response, chunks = open_stream(api)
    assert event(next(chunks))["calls"] == 0

    callback_client.post(device, {"n": 1})
    after_one = event(next(chunks))
    callback_client.post(device, {"n": 2})
    after_two = event(next(chunks))

    assert (after_one["calls"], after_one["connected"]) == (1, True)
    assert after_two["calls"] == 2
    close_stream(response)


def test_a_disconnection_is_an_event(api, device, fast_events, callback_client):
    callback_client.post(device, {"n": 1})
    response, chunks = open_stream(api)
    assert event(next(chunks))["connected"] is True

    Device.objects.filter(pk=device.pk).update(connected=False)

    assert event(next(chunks))["connected"] is False
    close_stream(response)


def test_keep_alive_comments_while_nothing_changes(api, device, fast_events):
    fast_events.STATS_SSE_KEEPALIVE_SECONDS = 0
    response, chunks = open_stream(api)
    event(next(chunks))

    assert next(chunks) == b": keep-alive\n\n"
    close_stream(response)


def test_the_stream_ends_after_the_configured_time(api, device, fast_events):
    fast_events.STATS_SSE_SECONDS = 0.05

    response, chunks = open_stream(api)

    events = [chunk for chunk in chunks if chunk.startswith(b"data: ")]
    assert len(events) == 1
    close_stream(response)


def test_the_stream_ends_when_the_device_is_deleted(api, device, fast_events):
    response, chunks = open_stream(api)
    event(next(chunks))

    device.delete()

    assert list(chunks) == []
    close_stream(response)


def test_streams_past_the_limit_send_one_event_and_ask_to_retry(
    api, device, fast_events, callback_client
):
    fast_events.STATS_SSE_MAX_STREAMS = 1
    fast_events.STATS_SSE_RETRY_MS = 7000
    first, first_chunks = open_stream(api)
    event(next(first_chunks))

    busy, busy_chunks = open_stream(api)
    chunks = list(busy_chunks)

    assert len(chunks) == 1
    retry, _, data = chunks[0].decode().partition("\n")
    assert retry == "retry: 7000"
    assert event(data.encode())["calls"] == 0
    close_stream(busy)
    close_stream(first)
    again, again_chunks = open_stream(api)  # the slot was given back
    event(next(again_chunks))
    callback_client.post(device, {"n": 1})
    assert event(next(again_chunks))["calls"] == 1
    close_stream(again)


def test_the_v1_path_streams_too(api, device, fast_events):
    response, chunks = open_stream(api, STATS_V1)

    assert event(next(chunks))["calls"] == 0
    close_stream(response)


def test_stream_errors_are_json(client, api, owner, device, fast_events, assert_json_error):
    headers = {"Accept": "text/event-stream"}

    assert_json_error(client.get(STATS, headers=headers), 401)
    assert_json_error(api.get("/v3/users/alice/devices/nope/stats", headers=headers), 404)


# Who may.


def test_without_credentials_is_401(client, device, assert_json_error):
    assert_json_error(client.get(STATS), 401)
    assert_json_error(client.get(STATS_V1), 401)


def test_another_users_device_is_403_but_staff_may_read(bearer_client, device, assert_json_error):
    mallory = bearer_client(UserFactory(username="mallory"))
    staff = bearer_client(UserFactory(username="root", is_staff=True))

    assert_json_error(mallory.get(STATS), 403)
    assert read(staff)["calls"] == 0


def test_unknown_device_is_404(api, owner, assert_json_error):
    DeviceFactory(identifier="d1")  # another user's

    assert_json_error(api.get(STATS), 404)
    assert_json_error(api.get(STATS_V1), 404)

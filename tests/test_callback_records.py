"""What a callback body becomes in the bucket: records and their timestamps (SPEC 1: Body)."""

import json
import time
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.utils import timezone

from buckets.models import BucketRecord
from devices.models import Device, DeviceDailyStats
from endpoints.models import EndpointCall
from tests.factories import BucketFactory, DeviceFactory, callback_configure

T = 1_700_000_000_000  # an explicit timestamp, ms


@pytest.fixture
def bucket_device(db):
    device = DeviceFactory()
    callback_configure(device, write_bucket=BucketFactory(owner=device.owner))
    return device


def stored():
    """The bucket's records as (ts, value), oldest first."""
    return list(BucketRecord.objects.order_by("ts").values_list("ts", "value"))


def now_ms():
    return int(time.time() * 1000)


def frozen_at(ms):
    """Freeze the server's clock at ``ms`` so server-assigned timestamps collide on purpose."""
    return mock.patch(
        "django.utils.timezone.now", return_value=datetime.fromtimestamp(ms / 1000, tz=UTC)
    )


def test_object_is_one_record_at_server_time(callback_client, bucket_device):
    before = now_ms()
    response = callback_client.post(bucket_device, b'{"temperature": 21.5, "humidity": 40}')
    after = now_ms()

    assert response.status_code == 200
    [(ts, value)] = stored()
    assert value == {"temperature": 21.5, "humidity": 40}
    assert before <= ts <= after


def test_array_of_objects_is_a_batch_of_one_record_each(callback_client, bucket_device):
    response = callback_client.post(bucket_device, b'[{"n": 1}, {"n": 2}, {"n": 3}]')

    assert response.status_code == 200
    assert [value for _, value in stored()] == [{"n": 1}, {"n": 2}, {"n": 3}]


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'"hello"', "hello"),
        (b"42", 42),
        (b"21.5", 21.5),
        (b"true", True),
        (b"[1, 2, 3]", [1, 2, 3]),
        (b'[{"n": 1}, 2]', [{"n": 1}, 2]),
        (b"[]", []),
        (b"null", None),
    ],
)
def test_any_other_json_value_is_one_record(callback_client, bucket_device, body, value):
    response = callback_client.post(bucket_device, body)

    assert response.status_code == 200
    [(_, stored_value)] = stored()
    assert stored_value == value


def test_records_own_ts_is_used_and_removed_from_the_value(callback_client, bucket_device):
    response = callback_client.post(bucket_device, {"ts": T, "temperature": 21.5})

    assert response.status_code == 200
    assert stored() == [(T, {"temperature": 21.5})]


def test_ts_query_parameter_is_used_when_the_record_has_none(callback_client, bucket_device):
    response = callback_client.post(bucket_device, {"temperature": 21.5}, query={"ts": T})

    assert response.status_code == 200
    assert stored() == [(T, {"temperature": 21.5})]


def test_ts_query_parameter_applies_to_a_json_string_too(callback_client, bucket_device):
    response = callback_client.post(bucket_device, b'"hello"', query={"ts": T})

    assert response.status_code == 200
    assert stored() == [(T, "hello")]


def test_records_own_ts_wins_over_the_query_parameter(callback_client, bucket_device):
    response = callback_client.post(bucket_device, {"ts": T, "n": 1}, query={"ts": T + 5000})

    assert response.status_code == 200
    assert stored() == [(T, {"n": 1})]


@pytest.mark.parametrize("ts", ["0", ""])
def test_ts_query_parameter_zero_or_empty_means_server_time(callback_client, bucket_device, ts):
    before = now_ms()
    response = callback_client.post(bucket_device, {"temperature": 21.5}, query={"ts": ts})
    after = now_ms()

    assert response.status_code == 200
    [(ts, value)] = stored()
    assert value == {"temperature": 21.5}
    assert before <= ts <= after


def test_batch_of_records_with_their_own_ts_stores_each_at_its_ts(callback_client, bucket_device):
    body = [{"ts": T, "n": 1}, {"ts": T + 1000, "n": 2}, {"ts": T + 2000, "n": 3}]

    response = callback_client.post(bucket_device, body)

    assert response.status_code == 200
    assert stored() == [(T, {"n": 1}), (T + 1000, {"n": 2}), (T + 2000, {"n": 3})]


def test_same_explicit_ts_twice_is_stored_once_with_the_second_value(
    callback_client, bucket_device
):
    first = callback_client.post(bucket_device, {"ts": T, "n": 1})
    second = callback_client.post(bucket_device, {"ts": T, "n": 2})

    assert (first.status_code, second.status_code) == (200, 200)
    assert stored() == [(T, {"n": 2})]


def test_two_posts_at_the_same_server_time_are_both_stored(callback_client, bucket_device):
    with frozen_at(T):
        callback_client.post(bucket_device, {"n": 1})
        callback_client.post(bucket_device, {"n": 2})

    assert stored() == [(T, {"n": 1}), (T + 1, {"n": 2})]


def test_two_quick_posts_without_ts_are_both_stored(callback_client, bucket_device):
    callback_client.post(bucket_device, {"n": 1})
    callback_client.post(bucket_device, {"n": 2})

    assert [value for _, value in stored()] == [{"n": 1}, {"n": 2}]


def test_server_time_never_overwrites_a_record_with_an_explicit_ts(callback_client, bucket_device):
    callback_client.post(bucket_device, {"ts": T, "n": 1})
    with frozen_at(T):
        callback_client.post(bucket_device, {"n": 2})

    assert stored() == [(T, {"n": 1}), (T + 1, {"n": 2})]


def test_batch_with_the_query_ts_keeps_every_record_and_a_retry_replaces_them(
    callback_client, bucket_device
):
    batch = [{"n": 1}, {"n": 2}, {"n": 3}]

    callback_client.post(bucket_device, batch, query={"ts": T})
    callback_client.post(bucket_device, batch, query={"ts": T})

    assert stored() == [(T, {"n": 1}), (T + 1, {"n": 2}), (T + 2, {"n": 3})]


def test_record_ts_zero_means_server_time_and_leaves_the_value(callback_client, bucket_device):
    before = now_ms()
    callback_client.post(bucket_device, {"ts": 0, "n": 1})

    [(ts, value)] = stored()
    assert value == {"n": 1}
    assert ts >= before


def test_batch_without_ts_stores_all_its_records(callback_client, bucket_device):
    batch = [{"n": n} for n in range(5)]

    with frozen_at(T):
        callback_client.post(bucket_device, batch)
        callback_client.post(bucket_device, batch)

    assert [value for _, value in stored()] == batch + batch
    assert len({ts for ts, _ in stored()}) == 10


@pytest.mark.parametrize("ts", ["abc", "-5", "1.5", str(2**63)])
def test_bad_ts_query_parameter_is_400_and_stores_nothing(
    callback_client, callback_device, assert_json_error, assert_nothing_stored, ts
):
    response = callback_client.post(callback_device, {"temperature": 21.5}, query={"ts": ts})

    assert_json_error(response, 400)
    assert_nothing_stored()


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": 1e400}',
        b'[{"n": 1}, {"n": -1e400}]',
        # Longer than Python converts (4,300 digits): too large, not "not JSON" with a 200.
        b'{"n": ' + b"9" * 5000 + b"}",
        b'[{"n": -' + b"1" * 5000 + b"}]",
    ],
)
def test_number_too_large_to_store_is_400_and_stores_nothing(
    callback_client, callback_device, assert_json_error, assert_nothing_stored, body
):
    callback_client.client.raise_request_exception = False

    response = callback_client.post(callback_device, body)

    assert_json_error(response, 400)
    assert_nothing_stored()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8", ""]
)
def test_json_is_data_whatever_the_content_type_parameters(
    callback_client, bucket_device, content_type
):
    response = callback_client.post(bucket_device, b'{"t": 1}', content_type=content_type)

    assert response.status_code == 200
    assert [value for _, value in stored()] == [{"t": 1}]


def test_json_body_is_data_even_when_sent_as_text(callback_client, bucket_device):
    response = callback_client.post(bucket_device, b'{"t": 1}', content_type="text/plain")

    assert response.status_code == 200
    assert [value for _, value in stored()] == [{"t": 1}]


def test_utf8_text_is_stored_as_sent(callback_client, bucket_device):
    body = json.dumps({"city": "Zaragoza ñ €"}, ensure_ascii=False).encode()

    response = callback_client.post(
        bucket_device, body, content_type="application/json; charset=utf-8"
    )

    assert response.status_code == 200
    assert [value for _, value in stored()] == [{"city": "Zaragoza ñ €"}]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"temperature=21.5", "application/x-www-form-urlencoded"),
        (b'{"temperature": 21.5', "application/json"),
        (b"NaN", "application/json"),
        (b"\xff\xfe\x00", "application/octet-stream"),
    ],
)
def test_body_that_is_not_json_is_200_and_ignored(
    callback_client, callback_device, body, content_type
):
    response = callback_client.post(callback_device, body, content_type=content_type)

    assert response.status_code == 200
    assert response["X-Callback-Ignored"]
    assert not BucketRecord.objects.exists()
    assert not EndpointCall.objects.exists()
    device = Device.objects.get(pk=callback_device.pk)
    assert device.callback.set_property.value is None


def test_ignored_body_is_answered_with_an_empty_body(callback_client, bucket_device):
    response = callback_client.post(bucket_device, b"temperature=21.5", content_type="text/plain")

    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == "0"
    assert not response.has_header("Content-Type")
    assert response["X-Callback-Ignored"] == "body is not JSON"


@pytest.mark.parametrize("body", [b"", b"  \r\n"])
def test_empty_body_is_200_and_ignored(callback_client, bucket_device, body):
    response = callback_client.post(bucket_device, body)

    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Callback-Ignored"]
    assert not BucketRecord.objects.exists()


def test_ignored_body_still_counts_as_a_call(callback_client, bucket_device):
    before = timezone.now()
    response = callback_client.post(bucket_device, b"not json")

    assert response.status_code == 200
    device = Device.objects.get(pk=bucket_device.pk)
    assert device.connected
    assert device.last_call_at >= before
    stats = DeviceDailyStats.objects.get(device=device)
    assert (stats.calls, stats.rx_bytes) == (1, len(b"not json"))


def test_body_at_the_size_limit_is_stored(callback_client, bucket_device, settings):
    body = json.dumps({"text": "x" * 100}).encode()
    settings.CALLBACK_MAX_BYTES = len(body)

    response = callback_client.post(bucket_device, body)

    assert response.status_code == 200
    assert BucketRecord.objects.count() == 1


def test_body_over_the_size_limit_is_413_and_stores_nothing(
    callback_client, callback_device, settings, assert_json_error, assert_nothing_stored
):
    body = json.dumps({"text": "x" * 100}).encode()
    settings.CALLBACK_MAX_BYTES = len(body) - 1

    response = callback_client.post(callback_device, body)

    assert_json_error(response, 413)
    assert_nothing_stored()


@pytest.mark.parametrize(
    "body",
    [
        rb'{"name": "a\u0000b"}',
        rb'{"a\u0000": 1}',
        rb'[{"n": 1}, {"n": "\ud800"}]',
    ],
    ids=["nul-in-value", "nul-in-key", "lone-surrogate-in-batch"],
)
def test_text_no_database_can_store_is_a_400_with_nothing_stored(
    callback_client, bucket_device, assert_json_error, body
):
    """PostgreSQL's jsonb refuses NUL characters and lone surrogates: refused alike everywhere,
    before any write, while an escaped backslash before "u0000" is ordinary text."""
    response = callback_client.post(bucket_device, body)

    assert "cannot be stored" in assert_json_error(response, 400)
    assert stored() == []
    assert not DeviceDailyStats.objects.exists()
    assert callback_client.post(bucket_device, rb'{"path": "C:\\u0000"}').status_code == 200
    assert [value for _, value in stored()] == [{"path": "C:\\u0000"}]

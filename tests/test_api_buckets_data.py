"""Bucket data through the REST API: write, read and page as clients do (SPEC 4 and 9), per
device, clear; who may; and that a read is one index range scan with a LIMIT."""

import json
import time
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import connection

from buckets import selectors, services
from buckets.models import BucketRecord
from tests.api_checks import assert_empty_ok
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db

T = 1_700_000_000_000
DATA = "/v1/users/alice/buckets/temps/data"


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def api(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def bucket(owner):
    return BucketFactory(owner=owner, identifier="temps")


@pytest.fixture
def records(bucket):
    """25 records, one a second from T, value {"n": i}."""
    BucketRecord.objects.bulk_create(
        BucketRecord(bucket=bucket, ts=T + i * 1000, value={"n": i}) for i in range(25)
    )
    return [T + i * 1000 for i in range(25)]


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def stored(bucket):
    return list(
        BucketRecord.objects.filter(bucket=bucket).order_by("ts").values_list("ts", "value")
    )


def now_ms():
    return int(time.time() * 1000)


# Write.


def test_write_an_object_at_server_time(api, bucket):
    before = now_ms()
    response = post(api, DATA, {"temperature": 21.5})
    after = now_ms()

    assert_empty_ok(response)
    [(ts, value)] = stored(bucket)
    assert value == {"temperature": 21.5}
    assert before <= ts <= after


def test_write_an_array_with_own_timestamps(api, bucket):
    response = post(api, DATA, [{"ts": T, "n": 1}, {"ts": T + 5, "n": 2}, {"n": 3}])

    assert_empty_ok(response)
    rows = stored(bucket)
    assert rows[:2] == [(T, {"n": 1}), (T + 5, {"n": 2})]
    assert rows[2][1] == {"n": 3}
    assert rows[2][0] > T + 5


def test_writes_at_one_server_time_from_the_api_and_a_device_never_overwrite_each_other(
    api, bucket, owner, callback_client
):
    """The API and each device claim server times from their own counters; a millisecond the
    other already used goes to the next claim."""
    device = DeviceFactory(owner=owner)
    callback_configure(device, write_bucket=bucket)
    frozen = mock.patch(
        "django.utils.timezone.now", return_value=datetime.fromtimestamp(T / 1000, tz=UTC)
    )

    with frozen:
        post(api, DATA, [{"n": 1}, {"n": 2}])
        callback_client.post(device, {"n": 3})
        callback_client.post(device, {"n": 4})
        post(api, DATA, {"n": 5})

    assert stored(bucket) == [
        (T, {"n": 1}),
        (T + 1, {"n": 2}),
        (T + 2, {"n": 3}),
        (T + 3, {"n": 4}),
        (T + 4, {"n": 5}),
    ]


def test_write_with_an_existing_timestamp_replaces_the_record(api, bucket):
    post(api, DATA, {"ts": T, "n": 1})
    post(api, DATA, {"ts": T, "n": 2})

    assert stored(bucket) == [(T, {"n": 2})]


def test_write_keeps_a_ts_that_is_not_a_number(api, bucket):
    post(api, DATA, {"ts": "yesterday", "n": 1})

    [(_, value)] = stored(bucket)
    assert value == {"ts": "yesterday", "n": 1}


def test_write_an_empty_array_stores_nothing(api, bucket):
    assert_empty_ok(post(api, DATA, []))
    assert stored(bucket) == []


def test_write_to_a_disabled_bucket_stores_nothing(api, owner):
    BucketFactory(owner=owner, identifier="temps", enabled=False)

    assert_empty_ok(post(api, DATA, {"n": 1}))
    assert not BucketRecord.objects.exists()


def test_a_large_batch_is_written_in_several_statements(api, bucket):
    post(api, DATA, [{"ts": T + i, "n": i} for i in range(2500)])

    assert BucketRecord.objects.filter(bucket=bucket).count() == 2500


@pytest.mark.parametrize("body", ["hello", 42, [1, 2], [{"n": 1}, 2], None])
def test_write_refuses_what_is_not_objects(api, bucket, body, assert_json_error):
    assert_json_error(post(api, DATA, body), 400)
    assert stored(bucket) == []


def test_write_refuses_a_form(api, bucket, assert_json_error):
    response = api.post(DATA, {"n": "1"})

    assert_json_error(response, 400)


def test_write_refuses_a_number_too_large_to_store(api, bucket, assert_json_error):
    response = api.post(DATA, '[{"n": 1}, {"n": -1e400}]', content_type="application/json")

    assert_json_error(response, 400)
    assert stored(bucket) == []


def test_write_refuses_a_ts_out_of_range(api, bucket, assert_json_error):
    message = assert_json_error(post(api, DATA, {"ts": 1e300, "n": 1}), 400)

    assert message.startswith("ts:")
    assert stored(bucket) == []


# Read.


def test_read_returns_ts_and_val_newest_first(api, records):
    response = api.get(DATA)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body[0] == {"ts": records[-1], "val": {"n": 24}}
    assert [item["ts"] for item in body] == records[::-1]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_read_on_both_versions(api, records, version):
    response = api.get(f"/{version}/users/alice/buckets/temps/data?items=2&sort=asc")

    assert response.status_code == 200
    assert response.json() == [{"ts": T, "val": {"n": 0}}, {"ts": T + 1000, "val": {"n": 1}}]


def test_read_bounds_are_inclusive(api, records):
    response = api.get(f"{DATA}?min_ts={records[3]}&max_ts={records[6]}")

    assert [item["ts"] for item in response.json()] == records[6:2:-1]


def test_read_an_empty_bucket(api, bucket):
    assert api.get(DATA).json() == []


def test_paging_down_by_moving_max_ts(api, records):
    """As clients do: newest first, then max_ts just below the last ts, until a short page."""
    seen, pages, max_ts = [], [], ""
    while True:
        page = api.get(f"{DATA}?items=10&max_ts={max_ts}").json()
        pages.append(len(page))
        seen += [item["ts"] for item in page]
        if len(page) < 10:
            break
        max_ts = page[-1]["ts"] - 1

    assert seen == records[::-1]
    assert pages == [10, 10, 5]


def test_paging_up_by_moving_min_ts(api, records):
    seen, min_ts = [], records[0]
    while True:
        page = api.get(f"/v2/users/alice/buckets/temps/data?items=10&sort=asc&min_ts={min_ts}")
        page = page.json()
        seen += [item["ts"] for item in page]
        if len(page) < 10:
            break
        min_ts = page[-1]["ts"] + 1

    assert seen == records


def test_at_most_1000_items_a_page(api, bucket):
    BucketRecord.objects.bulk_create(
        BucketRecord(bucket=bucket, ts=T + i, value=i) for i in range(1001)
    )

    assert len(api.get(DATA).json()) == 1000
    assert len(api.get(f"{DATA}?items=5000").json()) == 1000
    assert api.get(f"{DATA}?items=1000&max_ts={T}").json() == [{"ts": T, "val": 0}]


def test_empty_and_unknown_parameters_are_ignored(api, records):
    query = "items=&min_ts=&max_ts=&sort=&agg=&agg_type=&tz=Europe/Madrid&tags=x&"

    response = api.get(f"{DATA}?{query}")

    assert response.status_code == 200
    assert [item["ts"] for item in response.json()] == records[::-1]


def test_a_decimal_timestamp_is_tolerated(api, records):
    response = api.get(f"{DATA}?max_ts={records[1]}.0")

    assert [item["ts"] for item in response.json()] == [records[1], records[0]]


@pytest.mark.parametrize(
    ("query", "field"),
    [("items=abc", "items"), ("items=0", "items"), ("sort=up", "sort"), ("min_ts=abc", "min_ts")],
)
def test_bad_parameters_are_400(api, records, query, field, assert_json_error):
    message = assert_json_error(api.get(f"{DATA}?{query}"), 400)

    assert message.startswith(f"{field}:")


def test_read_is_one_index_range_scan_with_a_limit(bucket, records):
    """The plan reads the (bucket, ts) unique index in order: no sort, whatever the size."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A tiny table would be scanned and sorted: make that the planner's last resort.
            for method in ("seqscan", "bitmapscan", "sort"):
                cursor.execute(f"SET LOCAL enable_{method} = off")
    for sort in ("asc", "desc"):
        rows = selectors.bucket_records(bucket=bucket, items=10, max_ts=T + 5000, sort=sort)
        plan = rows.explain()
        assert "LIMIT" in str(rows.query).upper()
        if connection.vendor == "postgresql":
            assert "Index Scan" in plan, plan
            assert "bucket_record_unique_ts" in plan, plan
            assert "Sort" not in plan, plan
        else:  # SQLite names the index of the table's UNIQUE (bucket_id, ts) itself
            assert "INDEX" in plan, plan
            assert "(bucket_id=? AND ts<?)" in plan, plan
            assert "TEMP B-TREE" not in plan, plan


# Per device.


@pytest.fixture
def device(owner, bucket):
    device = DeviceFactory(owner=owner, identifier="sensor1")
    callback_configure(device, write_bucket=bucket)
    return device


def test_device_buckets_lists_the_bucket_it_writes_to(api, device):
    BucketFactory(owner=device.owner, identifier="unrelated")

    response = api.get("/v3/users/alice/devices/sensor1/buckets")

    assert response.status_code == 200
    [item] = response.json()
    assert item["bucket"] == "temps"
    assert item["config"] == {"source": "api"}


def test_device_buckets_is_empty_when_it_writes_nowhere(api, owner):
    DeviceFactory(owner=owner, identifier="idle")

    assert api.get("/v3/users/alice/devices/idle/buckets").json() == []


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_device_bucket_read(api, device, records, version):
    response = api.get(f"/{version}/users/alice/devices/sensor1/buckets/temps/data?items=3")

    assert response.status_code == 200
    assert [item["ts"] for item in response.json()] == records[:-4:-1]


def test_device_bucket_read_of_a_bucket_the_device_does_not_write_is_404(
    api, device, assert_json_error
):
    BucketFactory(owner=device.owner, identifier="other")

    assert_json_error(api.get("/v3/users/alice/devices/sensor1/buckets/other/data"), 404)


@pytest.mark.parametrize(
    "path",
    ["/v3/users/alice/devices/nope/buckets", "/v3/users/alice/devices/nope/buckets/temps/data"],
)
def test_unknown_device_is_404(api, bucket, path, assert_json_error):
    assert_json_error(api.get(path), 404)


# Clear.


def test_clear_all(api, bucket, records):
    other = BucketRecordFactory()

    assert_empty_ok(api.delete(DATA))

    assert stored(bucket) == []
    assert list(BucketRecord.objects.all()) == [other]


def test_clear_a_range_bounds_inclusive(api, bucket, records):
    assert_empty_ok(api.delete(f"{DATA}?min_ts={records[2]}&max_ts={records[20]}"))

    assert [ts for ts, _ in stored(bucket)] == records[:2] + records[21:]


def test_clear_before_a_time(api, bucket, records):
    assert_empty_ok(api.delete(f"{DATA}?max_ts={records[9]}&min_ts="))

    assert [ts for ts, _ in stored(bucket)] == records[10:]


def test_bucket_clear_goes_in_chunks(bucket, records, monkeypatch):
    monkeypatch.setattr(services, "RECORDS_PER_DELETE", 4)

    assert services.bucket_clear(bucket, min_ts=records[1]) == 24
    assert [ts for ts, _ in stored(bucket)] == records[:1]
    assert services.bucket_clear(bucket) == 1


# Who may.

ROUTES = [
    ("GET", DATA),
    ("GET", "/v2/users/alice/buckets/temps/data"),
    ("POST", DATA),
    ("DELETE", DATA),
    ("GET", "/v3/users/alice/devices/sensor1/buckets"),
    ("GET", "/v3/users/alice/devices/sensor1/buckets/temps/data"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_without_credentials_is_401(client, device, records, method, path, assert_json_error):
    assert_json_error(client.generic(method, path, "{}", "application/json"), 401)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_another_user_is_403(client, device, records, method, path, assert_json_error):
    client.force_login(UserFactory(username="mallory"))

    assert_json_error(client.generic(method, path, "{}", "application/json"), 403)
    assert BucketRecord.objects.count() == 25


def test_staff_may_read_but_not_write_or_clear(client, device, records, assert_json_error):
    client.force_login(UserFactory(username="staff", is_staff=True))

    assert len(client.get(DATA).json()) == 25
    assert client.get("/v3/users/alice/devices/sensor1/buckets").status_code == 200
    assert_json_error(post(client, DATA, {"n": 1}), 403)
    assert_json_error(client.delete(DATA), 403)
    assert BucketRecord.objects.count() == 25


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_bucket_is_404(api, method, assert_json_error):
    response = api.generic(method, "/v1/users/alice/buckets/nope/data", "{}", "application/json")

    assert_json_error(response, 404)


def test_a_token_scoped_to_reading_one_bucket(api, client, owner, records, assert_json_error):
    BucketFactory(owner=owner, identifier="mybucket")
    BucketRecordFactory(bucket__owner=owner, bucket__identifier="other")
    created = post(
        api,
        "/v1/users/alice/tokens",
        {
            "token": "t",
            "name": "t",
            "enabled": True,
            "allow": {"Bucket": {"mybucket": ["ReadBucket"]}},
        },
    )
    assert created.status_code == 200, created.content
    api.logout()
    bearer = {"Authorization": f"Bearer {created.json()['access_token']}"}

    assert client.get("/v1/users/alice/buckets/mybucket/data", headers=bearer).json() == []
    assert client.get("/v2/users/alice/buckets/mybucket/data", headers=bearer).status_code == 200
    write = client.post(
        "/v1/users/alice/buckets/mybucket/data", "{}", "application/json", headers=bearer
    )
    assert_json_error(write, 403)
    assert_json_error(client.delete("/v1/users/alice/buckets/mybucket/data", headers=bearer), 403)
    assert_json_error(client.get(DATA, headers=bearer), 403)
    assert_json_error(client.get("/v1/users/alice/buckets/other/data", headers=bearer), 403)
    assert_json_error(client.get("/v1/users/alice/buckets", headers=bearer), 403)

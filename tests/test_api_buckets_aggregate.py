"""Aggregated bucket reads (issue 15, item 5; SPEC section 10): ``agg`` and ``agg_type`` give one
record per interval, computed in the database, the same on SQLite and PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BucketFactory, BucketRecordFactory, UserFactory

pytestmark = pytest.mark.django_db

HOUR = 3_600_000
T = 1_700_000_000_000 - 1_700_000_000_000 % (24 * HOUR)  # a UTC midnight
DATA = "/v1/users/alice/buckets/temps/data"


@pytest.fixture
def api(client):
    client.force_login(UserFactory(username="alice"))
    return client


@pytest.fixture
def bucket(db):
    from django.contrib.auth import get_user_model

    return BucketFactory(owner=get_user_model().objects.get(username="alice"), identifier="temps")


def write(bucket, *records):
    for ts, value, *device in records:
        BucketRecordFactory(bucket=bucket, ts=ts, value=value, device=(device or [None])[0])


def read(api, query):
    response = api.get(f"{DATA}?{query}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def two_hours(api, bucket):
    write(
        bucket,
        (T + 1_000, {"t": 20, "env": {"hum": 40, "ok": True}, "tags": [1, 2], "name": "a"}),
        (T + 2_000, {"t": 22.5, "env": {"hum": 50}}),
        (T + 3_000, {"t": 24}),
        (T + HOUR + 5, {"t": 10, "env": {"hum": 30}}),
        (T + 3 * HOUR, {"other": 1}),
    )
    return bucket


@pytest.mark.parametrize(
    ("agg_type", "first", "second"),
    [
        ("mean", {"t": 22.166666666666668, "env.hum": 45}, {"t": 10, "env.hum": 30}),
        ("min", {"t": 20, "env.hum": 40}, {"t": 10, "env.hum": 30}),
        ("max", {"t": 24, "env.hum": 50}, {"t": 10, "env.hum": 30}),
        ("sum", {"t": 66.5, "env.hum": 90}, {"t": 10, "env.hum": 30}),
        ("count", {"t": 3, "env.hum": 2}, {"t": 1, "env.hum": 1}),
    ],
)
def test_each_interval_holds_the_aggregate_of_each_numeric_field(
    api, two_hours, agg_type, first, second
):
    body = read(api, f"agg=1h&agg_type={agg_type}&sort=asc&min_ts={T}&max_ts={T + 2 * HOUR}")

    assert [item["ts"] for item in body] == [T, T + HOUR]
    assert body[0]["val"] == pytest.approx(first)
    assert body[1]["val"] == pytest.approx(second)


def test_mean_is_the_default_and_newest_interval_comes_first(api, two_hours):
    body = read(api, "agg=1h")

    assert [item["ts"] for item in body] == [T + 3 * HOUR, T + HOUR, T]
    assert body[0]["val"] == {"other": 1}
    assert body[2]["val"]["t"] == pytest.approx(22.1666666)


def test_items_counts_intervals_and_pages_move_like_raw_reads(api, two_hours):
    first = read(api, "agg=1h&items=2")
    rest = read(api, f"agg=1h&items=2&max_ts={first[-1]['ts'] - 1}")

    assert [item["ts"] for item in first] == [T + 3 * HOUR, T + HOUR]
    assert [item["ts"] for item in rest] == [T]


def test_bare_numbers_aggregate_to_a_number(api, bucket):
    write(bucket, (T + 1, 5), (T + 2, 7), (T + 60_001, 1))

    assert read(api, "agg=1m&agg_type=sum&sort=asc") == [
        {"ts": T, "val": 12},
        {"ts": T + 60_000, "val": 1},
    ]


def test_days_and_weeks_are_utc_and_weeks_start_on_monday(api, bucket):
    monday = 1_699_833_600_000  # 2023-11-13 00:00 UTC, a Monday
    write(bucket, (monday - 1, 1), (monday, 2), (monday + 6 * 24 * HOUR, 3))

    weeks = read(api, "agg=1w&agg_type=count&sort=asc")
    days = read(api, "agg=1d&agg_type=count&sort=asc")

    assert weeks == [{"ts": monday - 7 * 24 * HOUR, "val": 1}, {"ts": monday, "val": 2}]
    assert [item["ts"] for item in days] == [monday - 24 * HOUR, monday, monday + 6 * 24 * HOUR]


def test_the_device_filter_applies(api, bucket):
    write(bucket, (T + 1, {"t": 1}, "a"), (T + 2, {"t": 3}, "b"))

    assert read(api, "agg=1h&device=b") == [{"ts": T, "val": {"t": 3}}]


def test_an_interval_whose_records_hold_no_number_is_empty(api, bucket):
    write(bucket, (T + 1, {"s": "text", "b": False}), (T + 2, [1, 2]), (T + 3, None))
    write(bucket, (T + HOUR, "text"), (T + HOUR + 1, {"big": int("9" * 400)}))

    assert read(api, "agg=1h&sort=asc") == [{"ts": T, "val": {}}, {"ts": T + HOUR, "val": {}}]


@pytest.mark.parametrize("query", ["agg=&agg_type=", "agg=", "agg_type=max"])
def test_an_empty_agg_is_a_raw_read(api, two_hours, query):
    body = read(api, query)

    assert len(body) == 5
    assert body[0]["ts"] == T + 3 * HOUR


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("agg=1x", "agg"),
        ("agg=0m", "agg"),
        ("agg=h", "agg"),
        ("agg=1h&agg_type=median", "agg_type"),
        ("agg=-1h", "agg"),
    ],
)
def test_a_bad_agg_is_a_400_naming_the_parameter(api, two_hours, assert_json_error, query, field):
    message = assert_json_error(api.get(f"{DATA}?{query}"), 400)

    assert message.startswith(field)


def test_the_database_returns_aggregates_not_records(api, bucket):
    write(bucket, *[(T + i * 60_000, {"t": i, "deep": {"er": {"v": i}}}) for i in range(300)])

    with CaptureQueriesContext(connection) as queries:
        body = read(api, "agg=1h&agg_type=max&sort=asc")

    assert body == [{"ts": T, "val": {"deep.er.v": 59, "t": 59}}] + [
        {"ts": T + h * HOUR, "val": {"deep.er.v": h * 60 + 59, "t": h * 60 + 59}}
        for h in range(1, 5)
    ]
    aggregating = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert 1 <= len(aggregating) <= 2
    assert len(queries.captured_queries) <= 8  # with the session, user and bucket lookups


def test_records_of_a_shape_the_sample_missed_are_counted_too(api, bucket, monkeypatch):
    """On PostgreSQL the fields come from a sample; records of another shape (an extra field,
    a field turned object, a bare number) take the generic walk, and both parts add up."""
    from buckets import aggregates

    monkeypatch.setattr(aggregates, "SAMPLE", 3)
    write(bucket, *[(T + i, {"t": 1, "env": {"h": 2}}) for i in range(20)])
    write(
        bucket,
        (T + 100, {"t": 1, "env": {"h": 2}, "extra": 5}),
        (T + 101, {"t": {"inner": 7}, "env": {"h": 2}}),
        (T + 102, {"t": 3, "env": {"h": 2, "deeper": {"x": 1}}}),
        (T + 103, 4),
        (T + 104, {"t": 1, "env": "flat"}),
    )
    write(bucket, *[(T + 200 + i, {"t": 1, "env": {"h": 2}}) for i in range(20)])

    assert read(api, "agg=1h&agg_type=count") == [
        {
            "ts": T,
            "val": {"": 1, "env.deeper.x": 1, "env.h": 43, "extra": 1, "t": 43, "t.inner": 1},
        }
    ]
    assert read(api, "agg=1h&agg_type=sum")[0]["val"]["t"] == 45


@pytest.mark.parametrize("path", ["sampled shape", "generic walk"])
def test_what_counts_as_a_number_is_the_same_on_each_path(api, bucket, monkeypatch, path):
    """On PostgreSQL a record of the sampled shape is read through its columns, any other
    through the generic walk: each path finds the same numbers (SQLite has one path)."""
    from buckets import aggregates

    if path == "generic walk":
        monkeypatch.setattr(aggregates, "_shape", lambda scope: None)
    numbers = [12, -0.5, 2.5e299, 5e-324]
    others = ["12", "-3", "", True, None, [1, 2], 10**300, -(10**300), 1e300, int("9" * 400)]
    write(bucket, *[(T + i, {"v": value}) for i, value in enumerate(numbers + others)])

    def aggregate(agg_type):
        return read(api, f"agg=1h&agg_type={agg_type}")[0]["val"]["v"]

    assert aggregate("count") == len(numbers)
    assert aggregate("sum") == pytest.approx(sum(numbers))
    assert aggregate("min") == -0.5
    assert aggregate("max") == 2.5e299


@pytest.mark.parametrize("agg_type", ["mean", "min", "max", "sum", "count"])
def test_named_fields_aggregate_as_the_whole_record_does(api, bucket, agg_type):
    """A chart names its fields (``bucket_chart(fields=...)``): on PostgreSQL each is read
    straight from the record, not through the sample and walk; the figures are the same as
    those of every field, kept to the named ones. A number in a path names a key, not a list's
    element; a field that is an object, text, true or too large is no number."""
    from buckets.aggregates import bucket_aggregate, bucket_chart

    values = [
        {"t": 20, "env": {"hum": 40, "0": 7}, "list": [5]},
        {"t": 22.5, "env": {"hum": 50, "0": 9}},
        {"t": "24", "env": "flat"},
        {"t": {"inner": 3}, "env": {"hum": True}},
        {"t": 10**300, "list": [1, 2]},
        4,
        {"t": 1, "extra": 2},
    ]
    write(bucket, *[(T + i * 1_000, value) for i, value in enumerate(values)])
    write(bucket, (T + HOUR, {"other": 1}), (T + HOUR + 1, {"t": -3}))
    named = ["t", "env.hum", "env.0", "list.0", "missing"]

    def kept(rows):
        return [
            {"ts": row["ts"], "val": {k: v for k, v in row["val"].items() if k in named}}
            for row in rows
        ]

    every = read(api, f"agg=1h&agg_type={agg_type}&sort=asc")
    some = bucket_aggregate(
        bucket=bucket, step_ms=HOUR, agg_type=agg_type, sort="asc", fields=named
    )

    assert some == kept(every)
    assert [row["ts"] for row in some] == [T, T + HOUR]
    assert set(some[0]["val"]) == {"t", "env.hum", "env.0"}
    assert bucket_chart(
        bucket=bucket, min_ts=T, max_ts=T + HOUR + 1, fields=named, step_ms=HOUR, agg_type=agg_type
    ) == (HOUR, some)

"""What a dashboard's widgets show (issue 17, item 2), read in one request:
``GET /v1/users/{user}/dashboards/{dashboard}/data`` and ``dashboards.selectors.dashboard_data``.
Property fields, buckets' last records and series (raw for a range of few records, aggregated in
the database otherwise), device status, maps; sources deleted since; a bounded number of
queries whatever the number of widgets."""

from datetime import timedelta

import pytest
from django.utils import timezone

from buckets import aggregates
from core.times import to_ms
from dashboards import services
from dashboards.selectors import dashboard_data
from tests.api_checks import assert_json_ok
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceDailyStatsFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HOUR = 3_600_000
# 2024-01-01T00:00:00Z: intervals start on the hour.
T0 = 1_704_067_200_000


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def sensor(alice):
    now = timezone.now()
    device = DeviceFactory(
        owner=alice, identifier="sensor1", connected=True, last_call_at=now, connected_at=now
    )
    PropertyFactory(
        device=device,
        identifier="state",
        value={"temperature": 21.5, "gps": {"lat": 40.4, "lng": -3.7}, "on": True},
    )
    return device


@pytest.fixture
def readings(alice):
    bucket = BucketFactory(owner=alice, identifier="readings")
    for i in range(6):  # two hours, three records each
        BucketRecordFactory(
            bucket=bucket,
            ts=T0 + i * 20 * 60_000,
            value={
                "temperature": 20 + i,
                "humidity": 50 - i,
                "label": "x",
                "lat": 40 + i,
                "lng": 3,
            },
        )
    return bucket


def board(owner, widgets, identifier="board"):
    return services.dashboard_create(owner=owner, identifier=identifier, widgets=widgets)


def prop(ident, field=None, kind="value"):
    source = {"kind": "property", "device": "sensor1", "property": "state"}
    if field:
        source["field"] = field
    return {"id": ident, "type": kind, "source": source}


def test_a_property_field_with_the_time_the_property_changed(alice, sensor):
    dashboard = board(
        alice, [prop("temp", "temperature"), prop("lat", "gps.lat"), prop("all"), prop("x", "no")]
    )

    data = dashboard_data(dashboard)["widgets"]

    modified = to_ms(sensor.properties.get().modified)
    assert data["temp"] == {"value": 21.5, "ts": modified}
    assert data["lat"]["value"] == 40.4
    assert data["all"]["value"]["gps"] == {"lat": 40.4, "lng": -3.7}
    assert data["x"] == {"value": None, "ts": modified}


def test_a_buckets_last_record(alice, readings):
    widgets = [
        {
            "id": "t",
            "type": "gauge",
            "source": {"kind": "bucket", "bucket": "readings", "field": "temperature"},
        },
        {"id": "all", "type": "text", "source": {"kind": "bucket", "bucket": "readings"}},
    ]
    BucketFactory(owner=alice, identifier="empty")
    widgets.append({"id": "e", "type": "value", "source": {"kind": "bucket", "bucket": "empty"}})

    data = dashboard_data(board(alice, widgets))["widgets"]

    last = T0 + 5 * 20 * 60_000
    assert data["t"] == {"value": 25, "ts": last}
    assert data["all"]["value"]["humidity"] == 45
    assert data["e"] == {"value": None, "ts": None}


def test_a_devices_status_last_call_and_calls_today(alice, sensor):
    today = timezone.localdate(timezone.now(), timezone.get_default_timezone())
    DeviceDailyStatsFactory(device=sensor, date=today, calls=7)
    DeviceDailyStatsFactory(device=sensor, date=today - timedelta(days=1), calls=99)
    DeviceFactory(owner=alice, identifier="quiet")
    widgets = [
        {"id": "box", "type": "device_status", "source": {"kind": "device", "device": "sensor1"}},
        {
            "id": "calls",
            "type": "value",
            "source": {"kind": "device", "device": "sensor1", "field": "calls_today"},
        },
        {
            "id": "led",
            "type": "led",
            "source": {"kind": "device", "device": "quiet", "field": "status"},
        },
        {
            "id": "last",
            "type": "text",
            "source": {"kind": "device", "device": "sensor1", "field": "last_call"},
        },
    ]

    data = dashboard_data(board(alice, widgets), now_ms=123)["widgets"]

    assert data["box"] == {
        "status": "connected",
        "connected": True,
        "last_call": to_ms(sensor.last_call_at),
        "calls_today": 7,
    }
    assert data["calls"] == {"value": 7, "ts": 123}
    assert data["led"]["value"] == "never"
    assert data["last"]["value"] == to_ms(sensor.last_call_at)


def chart(source_changes=None, ident="c"):
    source = {
        "kind": "bucket",
        "bucket": "readings",
        "fields": ["temperature", "humidity", "label"],
        "range": {"from": T0, "to": T0 + 2 * HOUR},
    }
    source.update(source_changes or {})
    return {"id": ident, "type": "chart", "source": source}


def test_a_chart_of_few_records_draws_them_as_they_are(alice, readings):
    data = dashboard_data(board(alice, [chart()]))["widgets"]["c"]

    assert data["interval"] is None and data["aggregation"] is None
    assert (data["from"], data["to"]) == (T0, T0 + 2 * HOUR)
    series = {one["field"]: one["points"] for one in data["series"]}
    assert series["temperature"] == [[T0 + i * 20 * 60_000, 20 + i] for i in range(6)]
    assert series["humidity"][0] == [T0, 50]
    assert series["label"] == []  # not a number


def test_a_chart_with_an_aggregation_gets_it_from_the_database(alice, readings):
    widget = chart({"aggregation": {"interval": "1h", "type": "max"}})

    data = dashboard_data(board(alice, [widget]))["widgets"]["c"]

    assert (data["interval"], data["aggregation"]) == (HOUR, "max")
    series = {one["field"]: one["points"] for one in data["series"]}
    assert series["temperature"] == [[T0, 22], [T0 + HOUR, 25]]
    assert series["humidity"] == [[T0, 50], [T0 + HOUR, 47]]


def test_a_chart_of_more_records_than_it_draws_shows_means_per_interval(
    alice, readings, monkeypatch
):
    monkeypatch.setattr(aggregates, "CHART_RECORDS", 4)
    monkeypatch.setattr(aggregates, "CHART_POINTS", 2)

    data = dashboard_data(board(alice, [chart()]))["widgets"]["c"]

    assert (data["interval"], data["aggregation"]) == (HOUR, "mean")
    series = {one["field"]: one["points"] for one in data["series"]}
    assert series["temperature"] == [[T0, 21], [T0 + HOUR, 24]]


def test_a_relative_range_ends_now(alice, readings):
    widget = chart({"range": {"last": "1h"}})

    data = dashboard_data(board(alice, [widget]), now_ms=T0 + 2 * HOUR)["widgets"]["c"]

    assert (data["from"], data["to"]) == (T0 + HOUR, T0 + 2 * HOUR)
    temperatures = next(one for one in data["series"] if one["field"] == "temperature")
    assert [value for _, value in temperatures["points"]] == [23, 24, 25]


def test_a_map_of_bucket_records_and_of_a_property(alice, sensor, readings):
    widgets = [
        {
            "id": "track",
            "type": "map",
            "source": {"kind": "bucket", "bucket": "readings", "range": {"from": T0}},
        },
        {**prop("here", "gps", kind="map")},
    ]

    data = dashboard_data(board(alice, widgets))["widgets"]

    assert [(p["lat"], p["lng"]) for p in data["track"]["points"]] == [
        (40 + i, 3) for i in range(6)
    ]
    assert data["here"]["points"] == [
        {"lat": 40.4, "lng": -3.7, "ts": to_ms(sensor.properties.get().modified)}
    ]


def _error_keys(value):
    if isinstance(value, dict):
        return ("error" in value) + sum(_error_keys(item) for item in value.values())
    if isinstance(value, list):
        return sum(_error_keys(item) for item in value)
    return 0


def test_a_source_deleted_since_says_so_and_the_rest_still_shows(alice, sensor, readings):
    dashboard = board(
        alice,
        [
            prop("temp", "temperature"),
            {
                "id": "box",
                "type": "device_status",
                "source": {"kind": "device", "device": "sensor1"},
            },
            chart(),
        ],
    )
    sensor.properties.get().delete()
    readings.delete()

    data = dashboard_data(dashboard)["widgets"]

    assert data["temp"] == {
        "value": None,
        "ts": None,
        "unavailable": 'property "state" of device "sensor1" no longer exists',
    }
    assert data["c"]["unavailable"] == 'bucket "readings" no longer exists'
    assert data["box"]["status"] == "connected"
    assert _error_keys(data) == 0  # Thinger.io's clients take any "error" key for a failure


def test_the_api_answers_every_widget_at_once(alice, sensor, readings, bearer_client):
    board(alice, [prop("temp", "temperature"), chart()], identifier="greenhouse")

    body = assert_json_ok(bearer_client(alice).get("/v1/users/alice/dashboards/greenhouse/data"))

    assert set(body) == {"ts", "widgets"}
    assert body["widgets"]["temp"]["value"] == 21.5
    assert body["widgets"]["c"]["series"][0]["field"] == "temperature"


def _many(count):
    """``count`` widgets reading properties, device status and buckets' last records, over
    several devices and buckets."""
    kinds = ["value", "gauge", "led", "text"]
    widgets = []
    for i in range(count):
        device = f"sensor{i % 3 + 1}"
        if i % 3 == 0:
            source = {"kind": "property", "device": device, "property": "state", "field": "t"}
        elif i % 3 == 1:
            source = {"kind": "device", "device": device, "field": "calls_today"}
        else:
            source = {"kind": "bucket", "bucket": f"bucket{i % 2}", "field": "t"}
        widgets.append({"id": f"w{i}", "type": kinds[i % 4], "source": source})
    return widgets


@pytest.fixture
def fleet(alice):
    for n in (1, 2, 3):
        device = DeviceFactory(owner=alice, identifier=f"sensor{n}")
        PropertyFactory(device=device, identifier="state", value={"t": n})
        DeviceDailyStatsFactory(
            device=device, date=timezone.localdate(timezone.now(), timezone.get_default_timezone())
        )
    for n in (0, 1):
        BucketRecordFactory(
            bucket=BucketFactory(owner=alice, identifier=f"bucket{n}"), value={"t": 1}
        )


def test_the_values_cost_four_queries_whatever_the_number_of_widgets(
    alice, fleet, django_assert_max_num_queries
):
    small = board(alice, _many(6), identifier="small")
    large = board(alice, _many(36), identifier="large")

    with django_assert_max_num_queries(4):
        dashboard_data(small)
    with django_assert_max_num_queries(4):
        data = dashboard_data(large)
    assert data["widgets"]["w0"]["value"] == 1
    assert data["widgets"]["w35"]["value"] == 1


def test_charts_and_maps_add_a_bounded_number_each(
    alice, fleet, readings, django_assert_max_num_queries, monkeypatch
):
    widgets = _many(9) + [
        chart(ident="raw"),
        chart({"aggregation": {"interval": "1h"}}, ident="agg"),
        {"id": "m", "type": "map", "source": {"kind": "bucket", "bucket": "readings"}},
    ]
    dashboard = board(alice, widgets)

    # Four for the values; a raw chart: a count and a read; an aggregated one: on PostgreSQL a
    # sample of the range (two), the aggregate, and the walk of records of other shapes; a map:
    # one read.
    with django_assert_max_num_queries(4 + 2 + 4 + 1):
        data = dashboard_data(dashboard)
    assert data["widgets"]["agg"]["interval"] == HOUR

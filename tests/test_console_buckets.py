"""Console pages for buckets: list, create, edit, delete, records (paged), chart (of the records,
or of their means over a range holding many), exports with progress and download, clearing, and
isolation between users."""

import json
import time

import pytest
from django.urls import reverse

from buckets.aggregates import CHART_INTERVALS, CHART_POINTS, CHART_RECORDS, chart_interval
from buckets.models import Bucket, BucketExport, BucketRecord
from tests.factories import BucketExportFactory, BucketFactory, BucketRecordFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def eager_tasks():
    """Exports run inside the request: Celery's own configuration is changed and restored (it
    reads Django's CELERY_* settings once, so changing those would last for the session)."""
    from thinger_http.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def bucket(user):
    return BucketFactory(owner=user, identifier="b1", name="Readings")


def get(console, name, *args, **params):
    response = console.get(reverse(name, args=args), params)
    assert response.status_code == 200, response.content[:500]
    return response


def test_empty_list_says_what_to_do(console):
    body = get(console, "console-bucket-list").content.decode()

    assert "No data buckets yet" in body
    assert reverse("console-bucket-create") in body


def test_list_shows_own_buckets_with_their_latest_record(console, user, bucket):
    BucketRecordFactory(bucket=bucket, ts=T0)
    BucketFactory(owner=user, identifier="empty1")
    BucketFactory(identifier="theirs")

    body = get(console, "console-bucket-list").content.decode()

    assert "b1" in body and "Readings" in body and "empty1" in body
    assert "theirs" not in body
    assert 'datetime="2023-11-14T22:13:20+00:00"' in body
    assert "No records yet" in body


def test_create_bucket(console, user):
    response = console.post(
        reverse("console-bucket-create"),
        {
            "identifier": "b2",
            "name": "New",
            "enabled": "on",
            "retention_period": "3",
            "retention_unit": "days",
        },
    )

    assert response["Location"] == reverse("console-bucket", args=["b2"])
    bucket = Bucket.objects.get(owner=user, identifier="b2")
    assert (bucket.name, bucket.enabled, bucket.retention_period, bucket.retention_unit) == (
        "New",
        True,
        3,
        "days",
    )


def test_create_bucket_errors_are_on_their_fields(console, bucket):
    bad = console.post(reverse("console-bucket-create"), {"identifier": "a b"})
    duplicate = console.post(
        reverse("console-bucket-create"), {"identifier": "b1", "retention_unit": "months"}
    )

    assert "identifier" in bad.context["form"].errors
    assert duplicate.context["form"].errors["identifier"] == [
        "You already have a bucket with this ID."
    ]


def test_edit_bucket(console, bucket):
    response = console.post(
        reverse("console-bucket-edit", args=["b1"]),
        {"name": "Renamed", "retention_period": "", "retention_unit": "months"},
    )

    assert response.status_code == 302
    bucket.refresh_from_db()
    assert (bucket.name, bucket.enabled, bucket.retention_period) == ("Renamed", False, None)


def test_delete_bucket(console, bucket):
    BucketRecordFactory(bucket=bucket)

    response = console.post(reverse("console-bucket-delete", args=["b1"]))

    assert response["Location"] == reverse("console-bucket-list")
    assert not Bucket.objects.exists() and not BucketRecord.objects.exists()


def test_detail_of_an_empty_bucket_says_how_to_fill_it(console, bucket):
    body = get(console, "console-bucket", "b1").content.decode()

    assert "No records yet" in body
    assert "Write bucket" in body


def test_records_are_paged_newest_first(console, bucket):
    for i in range(30):
        BucketRecordFactory(bucket=bucket, ts=T0 + i * 1000, value={"n": i})

    first = get(console, "console-bucket", "b1")
    records = first.context["records"]
    older = first.context["older"]
    second = get(console, "console-bucket", "b1", before=older)

    assert [json.loads(r["value"])["n"] for r in records] == list(range(29, 4, -1))
    assert f"?before={older}" in first.content.decode()
    assert [json.loads(r["value"])["n"] for r in second.context["records"]] == [4, 3, 2, 1, 0]
    assert second.context["older"] is None
    assert "Newest" in second.content.decode()


def test_chart_has_a_series_per_numeric_field(console, bucket):
    BucketRecordFactory(bucket=bucket, ts=T0, value={"t": 20, "h": 40, "label": "x"})
    BucketRecordFactory(bucket=bucket, ts=T0 + 1000, value={"t": 21.5, "ok": True})
    BucketRecordFactory(bucket=bucket, ts=T0 + 2000, value=7)

    chart = get(console, "console-bucket", "b1").context["chart"]

    assert chart["series"] == [
        {"label": "h", "points": [[T0, 40]]},
        {"label": "t", "points": [[T0, 20], [T0 + 1000, 21.5]]},
        {"label": "value", "points": [[T0 + 2000, 7]]},
    ]


def test_list_keeps_a_long_name_on_one_line(console, user):
    name = ("Greenhouse north wall, upper shelf " * 8)[:255]
    BucketFactory(owner=user, identifier="long1", name=name, description=name)

    body = get(console, "console-bucket-list").content.decode()

    assert f'<span class="truncate" title="{name}">{name}</span>' in body
    assert f'<span class="sub truncate" title="{name}">{name}</span>' in body


def test_chart_range_limits_the_records(console, bucket):
    BucketRecordFactory(bucket=bucket, ts=T0, value={"t": 1})

    latest = get(console, "console-bucket", "b1", range="latest").context["chart"]
    last_hour = get(console, "console-bucket", "b1", range="1h")

    assert latest["records"] == 1
    assert last_hour.context["chart"]["records"] == 0
    assert "No records in this range" in last_hour.content.decode()


HOUR = 3_600_000


def recent(days, every=HOUR):
    """Whole multiples of ``every`` from a step after the start of the last ``days`` days to a
    step before now: a range of that many days ending a moment later holds them all, and each
    interval of ``every`` from them only what a test writes at them."""
    now = int(time.time() * 1000)
    first = (now - days * 24 * HOUR) // every * every + 2 * every
    return list(range(first, now // every * every - every, every))


def write_records(bucket, records):
    BucketRecord.objects.bulk_create(
        BucketRecord(bucket=bucket, ts=ts, value=value) for ts, value in records
    )


def test_a_range_holding_few_records_draws_them(console, bucket):
    minutes = recent(1, 60_000)[-CHART_RECORDS:]
    write_records(bucket, [(ts, {"t": i}) for i, ts in enumerate(minutes)])

    response = get(console, "console-bucket", "b1", range="24h")
    chart = response.context["chart"]

    assert chart["interval"] is None
    assert chart["records"] == CHART_RECORDS
    assert chart["series"] == [{"label": "t", "points": [[ts, i] for i, ts in enumerate(minutes)]}]
    assert "means of the numeric fields" not in response.content.decode()


def test_a_range_holding_more_records_draws_their_hourly_means(console, bucket):
    """Two records an hour for 30 days: the chart draws one mean an hour, as the API's
    ``agg=1h`` reads it, and says so."""
    hours = recent(30)
    records = [
        (ts + 60_000 * half, {"t": 2 * i + half}) for i, ts in enumerate(hours) for half in (0, 1)
    ]
    write_records(bucket, [*records, (hours[0] + 1, 7)])

    response = get(console, "console-bucket", "b1", range="30d")
    chart = response.context["chart"]
    body = response.content.decode()

    assert len(records) > CHART_RECORDS
    assert chart["interval"] == "hourly"
    assert chart["records"] is None
    assert chart["series"] == [
        {"label": "t", "points": [[ts, 2 * i + 0.5] for i, ts in enumerate(hours)]},
        {"label": "value", "points": [[hours[0], 7]]},
    ]
    assert "Hourly means of the numeric fields" in body
    assert 'data-means="hourly"' in body
    api = console.get(
        "/v1/users/alice/buckets/b1/data",
        {"agg": "1h", "sort": "asc", "min_ts": hours[0], "max_ts": hours[-1] + HOUR - 1},
    ).json()
    assert [[item["ts"], item["val"]["t"]] for item in api] == chart["series"][0]["points"]


def test_means_and_records_chart_the_same_fields_nested_ones_too(console, bucket):
    every_5_minutes = recent(7, 300_000)
    write_records(bucket, [(ts, {"t": 1, "env": {"h": 2}, "on": True}) for ts in every_5_minutes])

    means = get(console, "console-bucket", "b1", range="7d").context["chart"]
    records = get(console, "console-bucket", "b1").context["chart"]

    assert means["interval"] == "15-minute"
    assert [serie["label"] for serie in means["series"]] == ["env.h", "t"]
    assert records["interval"] is None
    assert [serie["label"] for serie in records["series"]] == ["env.h", "t"]


@pytest.mark.parametrize(
    ("span", "interval"),
    [
        (HOUR, "1-minute"),
        (24 * HOUR, "5-minute"),
        (7 * 24 * HOUR, "15-minute"),
        (30 * 24 * HOUR, "hourly"),
        (365 * 24 * HOUR, "12-hour"),
        (10 * 365 * 24 * HOUR, "weekly"),
    ],
)
def test_the_interval_makes_a_few_hundred_points(span, interval):
    step = chart_interval(span)

    assert CHART_INTERVALS[step] == interval
    assert span / step <= CHART_POINTS


def test_export_runs_and_downloads(
    console, bucket, eager_tasks, django_capture_on_commit_callbacks
):
    BucketRecordFactory(bucket=bucket, ts=T0, value={"t": 1})
    BucketRecordFactory(bucket=bucket, ts=T0 + 1000, value={"t": 2})

    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(
            reverse("console-bucket-export", args=["b1"]),
            {
                "export-data_type": "csv",
                "export-timestamp_format": "milliseconds",
                "export-scope": "all",
            },
        )

    assert response.status_code == 302
    export = BucketExport.objects.get()
    progress = get(console, "console-bucket-export-progress", "b1", export.file).json()
    assert (progress["state"], progress["progress"], progress["rows"]) == ("done", 100, 2)
    assert "Download" in progress["row"]
    assert "data-export-progress" not in progress["row"]
    download = get(console, "console-bucket-export-download", "b1", export.file)
    assert b"".join(download.streaming_content).decode().splitlines() == [
        "ts;t",
        f"{T0};1",
        f"{T0 + 1000};2",
    ]
    assert download["Content-Disposition"] == f'attachment; filename="{export.file}"'


def test_running_export_row_follows_its_progress(console, bucket):
    export = BucketExportFactory(bucket=bucket, state="running", progress=40)

    body = get(console, "console-bucket", "b1").content.decode()
    progress = get(console, "console-bucket-export-progress", "b1", export.file).json()

    url = reverse("console-bucket-export-progress", args=["b1", export.file])
    assert f'data-export-progress="{url}"' in body
    assert "width: 40%" in body
    assert progress["state"] == "running" and progress["progress"] == 40
    assert "data-export-progress" in progress["row"]


def test_export_range(console, bucket, eager_tasks, django_capture_on_commit_callbacks):
    BucketRecordFactory(bucket=bucket, ts=T0 - 3_600_000, value={"t": 0})
    BucketRecordFactory(bucket=bucket, ts=T0, value={"t": 1})

    with django_capture_on_commit_callbacks(execute=True):
        console.post(
            reverse("console-bucket-export", args=["b1"]),
            {
                "export-data_type": "json",
                "export-timestamp_format": "milliseconds",
                "export-scope": "range",
                "export-start": "2023-11-14T22:00",
            },
        )

    export = BucketExport.objects.get()
    assert export.min_ts == T0 - 800_000 and export.max_ts is None
    assert export.rows == 1


def test_export_range_needs_a_bound(console, bucket):
    response = console.post(
        reverse("console-bucket-export", args=["b1"]),
        {"export-data_type": "json", "export-timestamp_format": "iso", "export-scope": "range"},
    )

    # Back to the bucket's page, which shows the form as it was sent, with its error.
    assert response.status_code == 302
    assert response["Location"] == reverse("console-bucket", args=["b1"]) + "#exports"
    form = get(console, "console-bucket", "b1").context["export_form"]
    assert form.errors["start"] == ["Give a start, an end, or both."]
    assert form["data_type"].value() == "json"
    assert not BucketExport.objects.exists()
    # Once: the next visit shows a fresh form.
    assert not get(console, "console-bucket", "b1").context["export_form"].is_bound


def test_export_redirects_to_the_bucket_page(
    console, bucket, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(
            reverse("console-bucket-export", args=["b1"]),
            {"export-data_type": "csv", "export-timestamp_format": "iso", "export-scope": "all"},
            follow=True,
        )

    assert response.redirect_chain == [(reverse("console-bucket", args=["b1"]) + "#exports", 302)]
    assert response.request["REQUEST_METHOD"] == "GET"
    assert "started: it appears below" in response.content.decode()


def test_not_ready_export_is_not_downloadable(console, bucket):
    export = BucketExportFactory(bucket=bucket)

    response = console.get(reverse("console-bucket-export-download", args=["b1", export.file]))

    assert response.status_code == 404


def test_delete_export(console, bucket):
    export = BucketExportFactory(bucket=bucket, state="done")

    response = console.post(reverse("console-bucket-export-delete", args=["b1", export.file]))

    assert response.status_code == 302
    assert not BucketExport.objects.exists()


def test_clear_all_after_confirming(console, bucket):
    BucketRecordFactory.create_batch(3, bucket=bucket)
    first = get(console, "console-bucket", "b1").content.decode()

    asked = console.post(
        reverse("console-bucket-clear", args=["b1"]), {"clear-scope": "all"}, follow=True
    )

    # The first post checks the range and asks; the page's address is the bucket's.
    assert 'id="confirm-clear"' not in first
    assert asked.redirect_chain == [(reverse("console-bucket", args=["b1"]) + "#clear", 302)]
    assert asked.context["confirm_clear"]
    body = asked.content.decode()
    assert 'id="confirm-clear"' in body and 'name="confirmed"' in body
    assert "All the records of" in body
    assert BucketRecord.objects.count() == 3

    cleared = console.post(
        reverse("console-bucket-clear", args=["b1"]),
        {"clear-scope": "all", "confirmed": "1"},
        follow=True,
    )

    assert not BucketRecord.objects.exists()
    assert cleared.redirect_chain == [(reverse("console-bucket", args=["b1"]), 302)]
    assert "3 records deleted" in cleared.content.decode()
    assert not cleared.context["confirm_clear"]


def test_clear_a_range(console, bucket):
    for minute in range(5):  # 22:13:20, 22:14:20, ... 22:17:20
        BucketRecordFactory(bucket=bucket, ts=T0 + minute * 60_000)

    data = {
        "clear-scope": "range",
        "clear-start": "2023-11-14T22:14",
        "clear-end": "2023-11-14T22:15",
    }
    asked = console.post(reverse("console-bucket-clear", args=["b1"]), data, follow=True)
    console.post(reverse("console-bucket-clear", args=["b1"]), {**data, "confirmed": "1"})

    body = asked.content.decode()
    assert "from Nov 14, 2023 22:14 to Nov 14, 2023 22:15" in body
    assert '<input type="hidden" name="clear-start" value="2023-11-14T22:14"' in body
    assert list(BucketRecord.objects.order_by("ts").values_list("ts", flat=True)) == [
        T0,
        T0 + 180_000,
        T0 + 240_000,
    ]


@pytest.mark.parametrize("confirmed", [{}, {"confirmed": "1"}])
def test_clear_checks_the_range_before_asking(console, bucket, confirmed):
    BucketRecordFactory(bucket=bucket)

    response = console.post(
        reverse("console-bucket-clear", args=["b1"]),
        {
            "clear-scope": "range",
            "clear-start": "2023-11-15T00:00",
            "clear-end": "2023-11-14T00:00",
            **confirmed,
        },
        follow=True,
    )

    assert response.redirect_chain == [(reverse("console-bucket", args=["b1"]) + "#clear", 302)]
    assert response.context["clear_form"].errors["end"] == ["The end must be after the start."]
    assert not response.context["confirm_clear"]
    assert 'id="confirm-clear"' not in response.content.decode()
    assert BucketRecord.objects.exists()


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "console-bucket", ["theirs"]),
        ("get", "console-bucket-edit", ["theirs"]),
        ("get", "console-bucket-export-progress", ["theirs", "f.csv"]),
        ("get", "console-bucket-export-download", ["theirs", "f.csv"]),
        ("post", "console-bucket-edit", ["theirs"]),
        ("post", "console-bucket-delete", ["theirs"]),
        ("post", "console-bucket-clear", ["theirs"]),
        ("post", "console-bucket-export", ["theirs"]),
        ("post", "console-bucket-export-delete", ["theirs", "f.csv"]),
    ],
)
def test_another_users_bucket_is_404(console, method, name, args):
    theirs = BucketFactory(identifier="theirs", name="Theirs")
    BucketRecordFactory(bucket=theirs)
    BucketExportFactory(bucket=theirs, file="f.csv", state="done")

    data = {"clear-scope": "all", "name": "Mine", "retention_unit": "months"}
    data.update(
        {"export-data_type": "csv", "export-timestamp_format": "iso", "export-scope": "all"}
    )
    response = getattr(console, method)(reverse(name, args=args), data)

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    assert BucketRecord.objects.filter(bucket=theirs).exists()
    assert BucketExport.objects.filter(bucket=theirs).count() == 1

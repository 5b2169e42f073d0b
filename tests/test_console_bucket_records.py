"""A bucket's records table in the console (issue 16): records that are flat objects as columns,
one per field (JSON otherwise), the device that wrote each, and how many records the bucket
holds, counted without reading a large bucket whole."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from buckets import console as bucket_console
from tests.factories import BucketFactory, BucketRecordFactory, DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000_000


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def bucket(user):
    return BucketFactory(owner=user, identifier="b1")


def records_page(console):
    response = console.get(reverse("console-bucket", args=["b1"]))
    assert response.status_code == 200
    return response


def table(response):
    """(header cells, rows of cells) of the records table, as text."""
    html = response.content.decode().split('id="records-table"')[1].split("</table>")[0]
    head, body = html.split("</thead>")
    header = [cell.split(">", 1)[1].split("<")[0] for cell in head.split("<th ")[1:]]
    rows = []
    for row in body.split("<tr ")[1:]:
        cells = []
        for cell in row.split("<td")[1:]:
            inner = cell.split(">", 1)[1].split("</td>")[0]
            while "<" in inner:  # the text without its tags
                before, rest = inner.split("<", 1)
                inner = before + rest.split(">", 1)[1]
            cells.append(inner.strip())
        rows.append(cells)
    return header, rows


def test_flat_records_are_columns_with_the_device(console, user, bucket):
    DeviceFactory(owner=user, identifier="sensor1")
    BucketRecordFactory(bucket=bucket, ts=T0, value={"temperature": 21.5, "humidity": 48})
    BucketRecordFactory(
        bucket=bucket,
        ts=T0 + 1000,
        value={"temperature": 22, "door": "open", "alarm": False, "note": None},
        device="sensor1",  # as the device's callback writes it
    )

    response = records_page(console)
    header, rows = table(response)

    assert response.context["record_columns"] == [
        "alarm",
        "door",
        "humidity",
        "note",
        "temperature",
    ]
    assert header[2:] == ["alarm", "door", "humidity", "note", "temperature"]
    assert header[:2] == ["Time (UTC)", "Device"]
    # Newest first: text as it is, numbers, true/false and null as JSON, "—" where a record has
    # no such field; the device that wrote it, or "API".
    assert rows[0][1:] == ["sensor1", "false", "open", "—", "null", "22"]
    assert rows[1][1:] == ["API", "—", "—", "48", "—", "21.5"]
    body = response.content.decode()
    assert 'data-label="temperature"' in body


def test_a_record_that_is_not_flat_shows_its_json_across_the_columns(console, bucket):
    BucketRecordFactory(bucket=bucket, ts=T0, value={"temperature": 20})
    BucketRecordFactory(bucket=bucket, ts=T0 + 1, value={"gps": {"lat": 1.5, "lon": 2}})
    BucketRecordFactory(bucket=bucket, ts=T0 + 2, value=[1, 2])
    BucketRecordFactory(bucket=bucket, ts=T0 + 3, value="hello")

    response = records_page(console)
    header, rows = table(response)

    assert header[2:] == ["temperature"]
    assert [row[2] for row in rows] == [
        "&quot;hello&quot;",
        "[1, 2]",
        "{&quot;gps&quot;: {&quot;lat&quot;: 1.5, &quot;lon&quot;: 2}}",
        "20",
    ]
    assert response.content.decode().count('colspan="1"') == 3


def test_no_flat_record_is_one_value_column(console, bucket):
    BucketRecordFactory(bucket=bucket, ts=T0, value={"gps": {"lat": 1.5}})
    BucketRecordFactory(bucket=bucket, ts=T0 + 1, value=21.5)

    response = records_page(console)
    header, rows = table(response)

    assert response.context["record_columns"] is None
    assert header[2:] == ["Value"]
    assert [row[2] for row in rows] == ["21.5", "{&quot;gps&quot;: {&quot;lat&quot;: 1.5}}"]
    assert "colspan" not in response.content.decode()


def test_too_many_fields_is_one_value_column(console, bucket):
    fields = {f"f{i:02d}": i for i in range(bucket_console.RECORD_COLUMNS_MAX + 1)}
    BucketRecordFactory(bucket=bucket, ts=T0, value=fields)

    header, rows = table(records_page(console))

    assert header[2:] == ["Value"]
    assert rows[0][2].startswith("{&quot;f00&quot;: 0")


def test_the_count_is_the_buckets_whole(console, bucket):
    assert "0 records" in records_page(console).content.decode()
    BucketRecordFactory(bucket=bucket, ts=T0)
    assert records_page(console).context["record_total"] == "1 record"
    for i in range(1, 30):
        BucketRecordFactory(bucket=bucket, ts=T0 + i)
    BucketRecordFactory(bucket=BucketFactory(owner=bucket.owner), ts=T0)  # another bucket's

    response = records_page(console)

    assert len(response.context["records"]) == 25  # a page
    assert response.context["record_total"] == "30 records"
    assert '<span id="record-total">30 records</span>, newest first.' in response.content.decode()


def test_the_count_stops_at_its_limit(console, bucket, monkeypatch):
    monkeypatch.setattr(bucket_console, "RECORD_COUNT_LIMIT", 5)
    for i in range(6):
        BucketRecordFactory(bucket=bucket, ts=T0 + i)

    with CaptureQueriesContext(connection) as queries:
        response = records_page(console)

    assert response.context["record_total"] == "More than 5 records"
    [count] = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert "LIMIT 6" in count.upper()

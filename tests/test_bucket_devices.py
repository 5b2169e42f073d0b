"""Each record knows the device whose callback wrote it (issue 14, item 2): bucket reads return it
as ``device`` beside ``ts`` and ``val`` and filter on it, exports and the console show it; the
API's own writes have none."""

import json

import pytest
from django.urls import reverse

from buckets.models import BucketRecord
from tests.factories import BucketFactory, DeviceFactory, UserFactory, callback_configure

pytestmark = pytest.mark.django_db

T = 1_700_000_000_000
DATA = "/v1/users/alice/buckets/shared/data"


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def api(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def fleet(owner, callback_client):
    """Two devices that write one bucket through their callbacks, and one record the API wrote:
    at T (sensor1), T+1 (sensor2), T+2 (the API), T+3 (sensor1)."""
    bucket = BucketFactory(owner=owner, identifier="shared")
    devices = {name: DeviceFactory(owner=owner, identifier=name) for name in ("sensor1", "sensor2")}
    for device in devices.values():
        callback_configure(device, write_bucket=bucket)
    assert callback_client.post(devices["sensor1"], {"ts": T, "n": 0}).status_code == 200
    assert callback_client.post(devices["sensor2"], {"ts": T + 1, "n": 1}).status_code == 200
    return bucket, devices


def write_through_the_api(api, body):
    response = api.post(DATA, json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content


def test_reads_say_which_device_wrote_each_record(api, fleet, callback_client):
    _, devices = fleet
    write_through_the_api(api, {"ts": T + 2, "n": 2})
    callback_client.post(devices["sensor1"], {"ts": T + 3, "n": 3})

    response = api.get(DATA, {"sort": "asc"})

    assert response.status_code == 200
    assert response.json() == [
        {"ts": T, "val": {"n": 0}, "device": "sensor1"},
        {"ts": T + 1, "val": {"n": 1}, "device": "sensor2"},
        {"ts": T + 2, "val": {"n": 2}},
        {"ts": T + 3, "val": {"n": 3}, "device": "sensor1"},
    ]


def test_records_at_the_server_time_know_their_device_too(api, fleet, callback_client):
    _, devices = fleet

    callback_client.post(devices["sensor2"], {"late": True})

    [latest] = api.get(DATA, {"items": 1}).json()
    assert latest["val"] == {"late": True}
    assert latest["device"] == "sensor2"


def test_device_filters_a_read_and_pages_as_usual(api, fleet, callback_client):
    _, devices = fleet
    for n in range(4, 9):
        callback_client.post(devices["sensor1"], {"ts": T + n, "n": n})

    first = api.get(DATA, {"device": "sensor1", "items": 3}).json()
    rest = api.get(DATA, {"device": "sensor1", "items": 3, "max_ts": first[-1]["ts"] - 1}).json()

    assert [record["val"]["n"] for record in first + rest] == [8, 7, 6, 5, 4, 0]
    assert {record["device"] for record in first + rest} == {"sensor1"}
    assert api.get(DATA, {"device": "sensor2"}).json() == [
        {"ts": T + 1, "val": {"n": 1}, "device": "sensor2"}
    ]
    assert api.get(DATA, {"device": "nobody"}).json() == []
    assert len(api.get(DATA, {"device": ""}).json()) == 7  # empty: no filter


def test_a_record_keeps_its_device_when_the_device_is_deleted(api, fleet):
    _, devices = fleet

    devices["sensor1"].delete()

    assert api.get(DATA, {"sort": "asc", "items": 1}).json() == [
        {"ts": T, "val": {"n": 0}, "device": "sensor1"}
    ]


EXPORTS = "/v1/users/alice/buckets/shared/exports"


@pytest.fixture
def export(api, django_capture_on_commit_callbacks):
    """An export through the API, written by the task once its request commits: the file."""

    def run(data_type):
        body = {"data_type": data_type, "timestamp_format": "milliseconds"}
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(EXPORTS, json.dumps(body), content_type="application/json")
        download = api.get(f"{EXPORTS}/{response.json()['file']}")
        assert download.status_code == 200
        return b"".join(download.streaming_content).decode()

    return run


def test_csv_export_has_a_device_column(api, fleet, export):
    write_through_the_api(api, {"ts": T + 2, "n": 2})

    text = export("csv")

    assert text.splitlines() == [
        "ts;device;n",
        f"{T};sensor1;0",
        f"{T + 1};sensor2;1",
        f"{T + 2};;2",
    ]


def test_json_export_has_the_device_of_each_record(api, fleet, export):
    write_through_the_api(api, {"ts": T + 2, "n": 2})

    records = json.loads(export("json"))

    assert records == [
        {"ts": T, "val": {"n": 0}, "device": "sensor1"},
        {"ts": T + 1, "val": {"n": 1}, "device": "sensor2"},
        {"ts": T + 2, "val": {"n": 2}},
    ]


def test_arff_export_has_a_device_attribute(fleet, export):
    text = export("arff")

    assert "@attribute device string\n@attribute n numeric" in text
    assert text.splitlines()[-2:] == [f"{T},'sensor1',0", f"{T + 1},'sensor2',1"]


def test_console_records_table_shows_the_device(client, owner, fleet, api):
    write_through_the_api(api, {"ts": T + 2, "n": 2})

    page = client.get(reverse("console-bucket", args=["shared"])).content.decode()

    table = page[page.index('id="records-table"') :]
    assert ">Device</th>" in table
    rows = table.split("<tr data-ts=")[1:]
    assert [("sensor1" in row, "sensor2" in row, ">API<" in row) for row in rows] == [
        (False, False, True),
        (False, True, False),
        (True, False, False),
    ]
    assert BucketRecord.objects.filter(device__isnull=True).count() == 1

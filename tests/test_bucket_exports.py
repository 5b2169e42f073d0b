"""Bucket exports (SPEC 4): created through the API, written by the Celery task (run in process),
listed with their progress, downloaded, deleted; CSV, JSON and ARFF checked line by line."""

import csv
import io
import json
import time

import pytest

from buckets import exports, selectors, services
from buckets.models import BucketExport, BucketRecord
from buckets.services import export_name, export_storage
from tests.factories import BucketExportFactory, BucketFactory, UserFactory
from tests.worker import run_worker

pytestmark = pytest.mark.django_db

T = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
EXPORTS = "/v1/users/alice/buckets/temps/exports"

RECORDS = [
    (T, {"temperature": 21.5, "humidity": 40}),
    (T + 1000, {"temperature": 22, "note": 'a;b "q"'}),
    (T + 2000, {"nested": {"a": 1}, "list": [1, 2], "flag": True, "none": None}),
    (T + 3500, "hello"),
    (T + 4000, 7),
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    """Tasks run in process when enqueued, as a worker would run them (Celery reads its
    configuration from Django's settings as it goes)."""
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
def bucket(owner):
    bucket = BucketFactory(owner=owner, identifier="temps")
    BucketRecord.objects.bulk_create(
        BucketRecord(bucket=bucket, ts=ts, value=value) for ts, value in RECORDS
    )
    return bucket


@pytest.fixture
def export(api, bucket, django_capture_on_commit_callbacks):
    """Create an export through the API and let the task write it; returns the file's text."""

    def run(**body):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(EXPORTS, json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.content
        created = response.json()
        assert created["state"] == "pending"
        download = api.get(f"{EXPORTS}/{created['file']}")
        assert download.status_code == 200, download.content
        return b"".join(download.streaming_content).decode()

    return run


def csv_lines(text):
    return text.splitlines()


# CSV.

CSV_HEADER = "ts;flag;humidity;list;nested;none;note;temperature;value"
CSV_CELLS = [
    ";;40;;;;;21.5;",
    ';;;;;;"a;b ""q""";22;',
    ';true;;[1,2];"{""a"":1}";;;;',
    ";;;;;;;;hello",
    ";;;;;;;;7",
]


@pytest.mark.parametrize(
    ("timestamp_format", "stamps"),
    [
        (
            "iso",
            [
                "2023-11-14T22:13:20.000Z",
                "2023-11-14T22:13:21.000Z",
                "2023-11-14T22:13:22.000Z",
                "2023-11-14T22:13:23.500Z",
                "2023-11-14T22:13:24.000Z",
            ],
        ),
        ("seconds", ["1700000000", "1700000001", "1700000002", "1700000003.5", "1700000004"]),
        ("milliseconds", [str(ts) for ts, _ in RECORDS]),
    ],
)
def test_csv(export, timestamp_format, stamps):
    text = export(data_type="csv", timestamp_format=timestamp_format)

    assert csv_lines(text) == [CSV_HEADER] + [
        stamp + cells for stamp, cells in zip(stamps, CSV_CELLS, strict=True)
    ]
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[2][6] == 'a;b "q"'


def test_csv_is_the_default(export):
    assert csv_lines(export())[0] == CSV_HEADER


def test_csv_of_an_empty_bucket_has_the_ts_column(export, bucket):
    BucketRecord.objects.all().delete()

    assert csv_lines(export()) == ["ts"]


def test_csv_of_objects_only_has_no_value_column(export, bucket):
    BucketRecord.objects.filter(ts__gte=T + 3500).delete()

    assert csv_lines(export(timestamp_format="milliseconds"))[0] == (
        "ts;flag;humidity;list;nested;none;note;temperature"
    )


def test_csv_an_empty_object_needs_no_value_column(export, bucket):
    BucketRecord.objects.all().delete()
    BucketRecord.objects.create(bucket=bucket, ts=T, value={})
    BucketRecord.objects.create(bucket=bucket, ts=T + 1, value={"a": 1})

    assert csv_lines(export(timestamp_format="milliseconds")) == ["ts;a", f"{T};", f"{T + 1};1"]


def test_csv_objects_own_value_key_shares_the_value_column(export, bucket):
    BucketRecord.objects.all().delete()
    BucketRecord.objects.create(bucket=bucket, ts=T, value={"value": 1, "b": 2})
    BucketRecord.objects.create(bucket=bucket, ts=T + 1, value="x")
    BucketRecord.objects.create(bucket=bucket, ts=T + 2, value=None)

    assert csv_lines(export(timestamp_format="milliseconds")) == [
        "ts;b;value",
        f"{T};2;1",
        f"{T + 1};;x",
        f"{T + 2};;",
    ]


# JSON.


@pytest.mark.parametrize(
    ("timestamp_format", "first", "fourth"),
    [
        ("iso", "2023-11-14T22:13:20.000Z", "2023-11-14T22:13:23.500Z"),
        ("seconds", 1700000000, 1700000003.5),
        ("milliseconds", T, T + 3500),
    ],
)
def test_json(export, timestamp_format, first, fourth):
    text = export(data_type="json", timestamp_format=timestamp_format)

    lines = text.splitlines()
    assert lines[0] == "["
    assert lines[-1] == "]"
    records = [json.loads(line.rstrip(",")) for line in lines[1:-1]]
    assert [record["val"] for record in records] == [value for _, value in RECORDS]
    assert records[0]["ts"] == first
    assert records[3]["ts"] == fourth
    assert [line.endswith(",") for line in lines[1:-1]] == [True] * 4 + [False]
    assert json.loads(text) == records


def test_json_of_an_empty_bucket_is_an_empty_array(export, bucket):
    BucketRecord.objects.all().delete()

    assert json.loads(export(data_type="json")) == []


# ARFF.

ARFF_ATTRIBUTES = [
    "@attribute flag string",
    "@attribute humidity numeric",
    "@attribute list string",
    "@attribute nested string",
    "@attribute none numeric",
    "@attribute note string",
    "@attribute temperature numeric",
    "@attribute value string",
    "",
    "@data",
]
ARFF_CELLS = [
    ",?,40,?,?,?,?,21.5,?",
    ",?,?,?,?,?,'a;b \"q\"',22,?",
    ",'true',?,'[1,2]','{\"a\":1}',?,?,?,?",
    ",?,?,?,?,?,?,?,'hello'",
    ",?,?,?,?,?,?,?,'7'",
]


@pytest.mark.parametrize(
    ("timestamp_format", "ts_type", "stamps"),
    [
        (
            "iso",
            "date \"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'\"",
            [
                "2023-11-14T22:13:20.000Z",
                "2023-11-14T22:13:21.000Z",
                "2023-11-14T22:13:22.000Z",
                "2023-11-14T22:13:23.500Z",
                "2023-11-14T22:13:24.000Z",
            ],
        ),
        (
            "seconds",
            "numeric",
            ["1700000000", "1700000001", "1700000002", "1700000003.5", "1700000004"],
        ),
        ("milliseconds", "numeric", [str(ts) for ts, _ in RECORDS]),
    ],
)
def test_arff(export, timestamp_format, ts_type, stamps):
    text = export(data_type="arff", timestamp_format=timestamp_format)

    assert text.splitlines() == [
        "@relation temps",
        "",
        f"@attribute ts {ts_type}",
        *ARFF_ATTRIBUTES,
        *(stamp + cells for stamp, cells in zip(stamps, ARFF_CELLS, strict=True)),
    ]


def test_arff_quotes_odd_names_and_strings(export, bucket):
    BucketRecord.objects.all().delete()
    BucketRecord.objects.create(bucket=bucket, ts=T, value={"wind speed": "it's\nbreezy"})

    lines = export(data_type="arff", timestamp_format="milliseconds").splitlines()

    assert "@attribute 'wind speed' string" in lines
    assert lines[-1] == f"{T},'it\\'s\\nbreezy'"


# Range, paging, progress.


def test_range_bounds_are_inclusive(export):
    text = export(timestamp_format="milliseconds", min_ts=T + 1000, max_ts=T + 3500)

    assert [line.split(";")[0] for line in csv_lines(text)[1:]] == [
        str(T + 1000),
        str(T + 2000),
        str(T + 3500),
    ]


def test_zero_bounds_mean_everything(export):
    text = export(timestamp_format="milliseconds", min_ts=0, max_ts=0)

    assert len(csv_lines(text)) == 1 + len(RECORDS)


@pytest.mark.parametrize("data_type", ["csv", "json", "arff"])
def test_pages_follow_each_other_without_gaps(export, data_type, monkeypatch):
    whole = export(data_type=data_type)
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)

    assert export(data_type=data_type) == whole


def test_progress_and_listing(api, bucket, export):
    export(timestamp_format="milliseconds")
    [done] = BucketExport.objects.all()

    response = api.get(EXPORTS)

    assert response.status_code == 200
    [item] = response.json()
    assert item["file"] == done.file
    assert item["file"].startswith("temps-") and item["file"].endswith(".csv")
    assert item["state"] == "done"
    assert item["progress"] == 100
    assert item["rows"] == len(RECORDS)
    assert item["size"] == export_storage().size(export_name(done))
    assert item["data_type"] == "csv"
    assert item["timestamp_format"] == "milliseconds"
    assert (item["min_ts"], item["max_ts"]) == (None, None)
    assert isinstance(item["created"], int)
    assert isinstance(item["finished"], int)
    assert selectors.bucket_export_progress(done) == {
        "file": done.file,
        "state": "done",
        "progress": 100,
        "rows": len(RECORDS),
        "size": item["size"],
        "error": "",
    }


def test_progress_is_stored_page_by_page(bucket, monkeypatch):
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    seen = []
    report = exports.write_export

    def spy(export, path, progress):
        return report(export, path, lambda rows, percent: seen.append((rows, percent)) or None)

    monkeypatch.setattr(exports, "write_export", spy)
    created = BucketExportFactory(bucket=bucket)

    services.bucket_export_run(export_id=created.pk)

    assert seen == [(2, 40), (4, 80), (5, 99)]
    created.refresh_from_db()
    assert (created.state, created.progress, created.rows) == ("done", 100, 5)


def test_download_headers(api, bucket, export):
    export(data_type="json")
    done = BucketExport.objects.get()

    response = api.get(f"{EXPORTS}/{done.file}", headers={"Accept": "text/csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="{done.file}"'
    assert int(response["Content-Length"]) == done.size


def test_download_while_pending_is_404_with_the_state(
    api, bucket, django_capture_on_commit_callbacks, assert_json_error
):
    with django_capture_on_commit_callbacks(execute=False):
        created = api.post(EXPORTS, "{}", content_type="application/json").json()

    message = assert_json_error(api.get(f"{EXPORTS}/{created['file']}"), 404)

    assert "pending" in message
    assert api.get(EXPORTS).json()[0]["state"] == "pending"


def test_a_failed_export_keeps_its_error_and_leaves_no_file(
    api, bucket, monkeypatch, media, assert_json_error
):
    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setitem(exports._WRITERS, BucketExport.DataType.CSV, broken)
    created = BucketExportFactory(bucket=bucket)

    services.bucket_export_run(export_id=created.pk)

    created.refresh_from_db()
    assert created.state == "failed"
    assert "disk full" in created.error
    assert not any(path.is_file() for path in media.rglob("*"))
    message = assert_json_error(api.get(f"{EXPORTS}/{created.file}"), 404)
    assert "failed" in message and "disk full" in message


def test_a_second_delivery_does_nothing(bucket):
    created = BucketExportFactory(bucket=bucket)

    assert services.bucket_export_run(export_id=created.pk).state == "done"
    assert services.bucket_export_run(export_id=created.pk) is None


def test_an_export_deleted_while_running_stops_and_leaves_no_file(bucket, monkeypatch, media):
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)
    pages = exports._pages

    def delete_after_first_page(export):
        for number, page in enumerate(pages(export)):
            if number == 1:
                BucketExport.objects.filter(pk=export.pk).delete()
            yield page

    monkeypatch.setattr(exports, "_pages", delete_after_first_page)
    created = BucketExportFactory(bucket=bucket)

    assert services.bucket_export_run(export_id=created.pk) is None
    assert not any(path.is_file() for path in media.rglob("*"))


def test_a_stale_running_export_is_taken_over(bucket):
    created = BucketExportFactory(bucket=bucket, state="running")
    BucketExport.objects.filter(pk=created.pk).update(
        updated=created.updated - services.EXPORT_STALE_AFTER * 2
    )

    assert services.bucket_export_run(export_id=created.pk).state == "done"


def test_requeue_sends_exports_no_worker_took(bucket, monkeypatch):
    old = BucketExportFactory(bucket=bucket)
    BucketExport.objects.filter(pk=old.pk).update(
        updated=old.updated - services.EXPORT_STALE_AFTER * 2
    )
    BucketExportFactory(bucket=bucket)  # recent: left alone

    assert services.bucket_exports_requeue() == 1
    old.refresh_from_db()
    assert old.state == "done"


def test_delete_removes_the_file_and_the_row(
    api, bucket, export, django_capture_on_commit_callbacks
):
    export()
    done = BucketExport.objects.get()
    name = export_name(done)
    assert export_storage().exists(name)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"{EXPORTS}/{done.file}")

    assert response.status_code == 200
    assert response.content == b""
    assert not BucketExport.objects.exists()
    assert not export_storage().exists(name)


def test_deleting_the_bucket_removes_its_export_files(
    api, bucket, export, django_capture_on_commit_callbacks
):
    export()
    name = export_name(BucketExport.objects.get())
    assert export_storage().exists(name)

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/v1/users/alice/buckets/temps").status_code == 200

    assert not export_storage().exists(name)
    assert not BucketExport.objects.exists()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_the_export(api, bucket, settings, tmp_path):
    """End to end on PostgreSQL and Redis: the API enqueues once the export is committed, a
    Celery worker process writes the file, the API serves it."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.MEDIA_ROOT = settings.VAR_DIR / "media"  # where the worker writes
    with run_worker(tmp_path) as worker:
        settings.BUCKET_TASK_QUEUE = worker.queue
        created = api.post(
            EXPORTS, {"timestamp_format": "milliseconds"}, content_type="application/json"
        ).json()
        deadline = time.monotonic() + 30
        while BucketExport.objects.get(file=created["file"]).state in ("pending", "running"):
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.1)

    download = api.get(f"{EXPORTS}/{created['file']}")
    assert download.status_code == 200, worker.output()
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines[0] == CSV_HEADER
    assert lines[1:] == [f"{ts}{cells}" for (ts, _), cells in zip(RECORDS, CSV_CELLS, strict=True)]
    assert api.delete(f"{EXPORTS}/{created['file']}").status_code == 200


# Validation and who may.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data_type": "xlsx"}, "data_type"),
        ({"timestamp_format": "unix"}, "timestamp_format"),
        ({"min_ts": -1}, "min_ts"),
        ({"max_ts": "yesterday"}, "max_ts"),
        ({"min_ts": True}, "min_ts"),
        ({"min_ts": T + 10, "max_ts": T}, "min_ts"),
        ({"callback": "email"}, "callback"),
        ({"format": "csv"}, "format"),
    ],
)
def test_create_validation(api, bucket, body, field, assert_json_error):
    message = assert_json_error(
        api.post(EXPORTS, json.dumps(body), content_type="application/json"), 400
    )

    assert message.startswith(f"{field}:"), message
    assert not BucketExport.objects.exists()


ROUTES = [
    ("GET", EXPORTS),
    ("POST", EXPORTS),
    ("GET", f"{EXPORTS}/export0.csv"),
    ("DELETE", f"{EXPORTS}/export0.csv"),
]


@pytest.fixture
def existing(bucket):
    return BucketExportFactory(bucket=bucket, file="export0.csv")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_without_credentials_is_401(client, existing, method, path, assert_json_error):
    assert_json_error(client.generic(method, path, "{}", "application/json"), 401)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_another_user_is_403(client, existing, method, path, assert_json_error):
    client.force_login(UserFactory(username="mallory"))

    assert_json_error(client.generic(method, path, "{}", "application/json"), 403)
    assert BucketExport.objects.count() == 1


def test_staff_may_list_but_not_create(client, existing, assert_json_error):
    client.force_login(UserFactory(username="staff", is_staff=True))

    assert client.get(EXPORTS).json()[0]["file"] == "export0.csv"
    assert_json_error(client.post(EXPORTS, "{}", content_type="application/json"), 403)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/users/alice/buckets/nope/exports"),
        ("POST", "/v1/users/alice/buckets/nope/exports"),
        ("GET", f"{EXPORTS}/nope.csv"),
        ("DELETE", f"{EXPORTS}/nope.csv"),
    ],
)
def test_unknown_is_404(api, existing, method, path, assert_json_error):
    assert_json_error(api.generic(method, path, "{}", "application/json"), 404)


# Exports across machines (issue 18, item 12): the worker that writes a file and the web process
# that serves it share only the exports storage, each with a VAR_DIR of its own.


def _export_by_a_worker(api, settings, tmp_path, **worker_environment):
    """An export written by a real worker process whose VAR_DIR is not this process's; returns
    the download's answer here."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    worker_var = tmp_path / "worker-var"
    assert worker_var != settings.VAR_DIR
    with run_worker(tmp_path, VAR_DIR=str(worker_var), **worker_environment) as worker:
        settings.BUCKET_TASK_QUEUE = worker.queue
        created = api.post(EXPORTS, {}, content_type="application/json").json()
        deadline = time.monotonic() + 30
        while BucketExport.objects.get(file=created["file"]).state in ("pending", "running"):
            assert time.monotonic() < deadline, worker.output()
            time.sleep(0.1)
        assert BucketExport.objects.get(file=created["file"]).state == "done", worker.output()
    return created["file"], api.get(f"{EXPORTS}/{created['file']}")


def _exports_storage(settings, backend, **options):
    settings.STORAGES = {**settings.STORAGES, "exports": {"BACKEND": backend, "OPTIONS": options}}


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_export_on_the_local_disk_of_another_machine_cannot_be_served(
    api, bucket, settings, tmp_path
):
    """Why the storage must be shared: without it, the file is on the worker's disk."""
    file, download = _export_by_a_worker(api, settings, tmp_path)

    assert download.status_code == 404
    assert (tmp_path / "worker-var" / "media" / "exports" / str(bucket.pk) / file).is_file()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_export_on_a_shared_directory_is_served_by_another_machine(
    api, bucket, settings, tmp_path
):
    shared = tmp_path / "shared"
    _exports_storage(settings, "django.core.files.storage.FileSystemStorage", location=shared)

    file, download = _export_by_a_worker(
        api, settings, tmp_path, EXPORTS_STORAGE_URL=f"file://{shared}"
    )

    assert download.status_code == 200
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines[0].startswith("ts;")
    assert len(lines) == 1 + len(RECORDS)
    assert (shared / str(bucket.pk) / file).is_file()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_export_on_s3_is_served_by_another_machine(api, bucket, settings, tmp_path, monkeypatch):
    """An S3-compatible service (moto's server, on loopback) as the shared storage: the worker
    stores the file there, this process serves it from there, deleting it deletes it there."""
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        for name, value in credentials.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="exports")
        _exports_storage(
            settings,
            "storages.backends.s3.S3Storage",
            bucket_name="exports",
            location="thinger",
            endpoint_url=endpoint,
            region_name="us-east-1",
            file_overwrite=False,
            default_acl=None,
        )

        file, download = _export_by_a_worker(
            api,
            settings,
            tmp_path,
            EXPORTS_STORAGE_URL=f"s3://exports/thinger?endpoint_url={endpoint}&region_name=us-east-1",
            **credentials,
        )

        assert download.status_code == 200
        lines = b"".join(download.streaming_content).decode().splitlines()
        assert len(lines) == 1 + len(RECORDS)
        key = f"thinger/{bucket.pk}/{file}"
        assert s3.head_object(Bucket="exports", Key=key)["ContentLength"] > 0
        assert api.delete(f"{EXPORTS}/{file}").status_code == 200
        assert s3.list_objects_v2(Bucket="exports").get("KeyCount", 0) == 0
    finally:
        server.stop()


@pytest.mark.parametrize(
    "url", ["ftp://host/exports", "file://relative/path", "s3://", "s3://b?x=1"]
)
def test_a_bad_exports_storage_url_stops_start_up(tmp_path, url):
    from tests.reliability import django_process

    result = django_process(tmp_path, "check", EXPORTS_STORAGE_URL=url)

    assert result.returncode != 0
    assert "EXPORTS_STORAGE_URL" in result.stderr

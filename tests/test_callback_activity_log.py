"""The device activity log (issue 16, item 3): a device that sends and stores nothing leaves a
trace of why: each refused call (401, 403, 413, 429, 400...) and each ignored body, with time,
status, reason, address and size, bounded per device; an accepted call leaves none and costs
nothing more. Shown on the device's page and through the API.

The web side hands each refusal to a worker (never a query of its own); these tests play the
worker with what was handed (the ``handed_activity`` fixture), and one test runs a real worker.
"""

import time

import pytest

from devices import activity
from devices.models import CallbackActivity
from devices.services import device_rotate_token
from tests.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sensor():
    return DeviceFactory(owner=UserFactory(username="alice"), identifier="sensor1")


def worker(handed):
    """Play the worker: write what the web side handed over."""
    while handed:
        activity.callback_activity_write(**handed.pop(0))


def log(device):
    return [
        (row.status, row.reason, row.count)
        for row in CallbackActivity.objects.filter(device=device).order_by("-last_at", "-id")
    ]


def test_each_way_a_call_stores_nothing_is_logged_with_why(
    sensor, callback_client, handed_activity, settings
):
    settings.CALLBACK_MAX_BYTES = 100
    callback_client.post(sensor, "not json", content_type="text/plain")
    callback_client.post(sensor, {"x": 1}, token="garbage")
    callback_client.post(sensor, {"big": "x" * 200})
    callback_client.post(sensor, {"a": 1}, query={"ip": "198.51.100.9", "ts": "yesterday"})
    sensor.enabled = False
    sensor.save()
    callback_client.post(sensor, {"x": 1})
    worker(handed_activity)

    rows = log(sensor)
    assert [status for status, _, _ in rows] == [403, 400, 413, 401, 200]
    reasons = dict((status, reason) for status, reason, _ in rows)
    assert reasons[200].startswith("ignored: ")
    assert "disabled" in reasons[403]
    newest_400 = CallbackActivity.objects.get(device=sensor, status=400)
    assert newest_400.remote_ip == "198.51.100.9"
    assert newest_400.size == len(b'{"a": 1}')


def test_an_accepted_call_leaves_no_trace_and_hands_nothing(
    sensor, callback_client, handed_activity
):
    assert callback_client.post(sensor, {"t": 1}).status_code == 200
    assert handed_activity == []
    assert not CallbackActivity.objects.exists()


def test_a_flood_is_one_row_with_its_count_and_at_most_one_write_a_second(
    sensor, callback_client, handed_activity
):
    for _ in range(30):
        callback_client.post(sensor, {"x": 1}, token="garbage")
    assert len(handed_activity) == 1  # the rest counted in the cache
    worker(handed_activity)
    time.sleep(activity.ACTIVITY_WRITE_SECONDS + 0.1)
    callback_client.post(sensor, {"x": 1}, token="garbage")
    worker(handed_activity)
    ((status, _, count),) = log(sensor)
    assert (status, count) == (401, 31)


def test_the_log_keeps_the_newest_entries_of_each_device(sensor, handed_activity):
    for n in range(activity.ACTIVITY_PER_DEVICE + 5):
        activity.callback_activity_write(
            username="alice",
            identifier="sensor1",
            status=400,
            reason=f"reason {n}",
            remote_ip=None,
            size=1,
            count=1,
        )
    rows = log(sensor)
    assert len(rows) == activity.ACTIVITY_PER_DEVICE
    assert rows[0][1] == f"reason {activity.ACTIVITY_PER_DEVICE + 4}"
    assert rows[-1][1] == "reason 5"


def test_no_device_no_log(callback_client, handed_activity):
    alice = UserFactory(username="alice")
    ghost = DeviceFactory.build(owner=alice, identifier="ghost")
    assert callback_client.post(ghost, {"x": 1}, token="garbage").status_code == 401
    worker(handed_activity)
    assert not CallbackActivity.objects.exists()


def test_a_rotated_token_is_logged_for_the_device(sensor, callback_client, handed_activity):
    from devices.tokens import callback_token_for

    old = callback_token_for(sensor)
    device_rotate_token(device=sensor)
    assert callback_client.post(sensor, {"x": 1}, token=old).status_code == 401
    worker(handed_activity)
    assert [status for status, _, _ in log(sensor)] == [401]


def test_the_api_and_the_page_show_the_log(
    sensor, callback_client, handed_activity, bearer_client, client
):
    callback_client.post(sensor, "hello", content_type="text/plain")
    worker(handed_activity)
    answer = bearer_client(sensor.owner).get("/v3/users/alice/devices/sensor1/activity")
    assert answer.status_code == 200
    (entry,) = answer.json()
    assert entry["status"] == 200
    assert entry["reason"].startswith("ignored: ")
    assert entry["count"] == 1
    assert set(entry) == {"ts", "first_ts", "status", "reason", "count", "ip_address", "rx_bytes"}
    other = bearer_client(UserFactory())
    assert other.get("/v3/users/alice/devices/sensor1/activity").status_code == 403

    client.force_login(sensor.owner)
    page = client.get("/devices/sensor1/").content.decode()
    assert "Calls that stored nothing" in page
    assert entry["reason"] in page


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_the_log(sensor, callback_client, monkeypatch, tmp_path, settings):
    """Through the broker and a worker process, as in production."""
    from tests.worker import run_worker

    monkeypatch.undo()  # publish for real (the autouse fixture kept tasks here)
    with run_worker(tmp_path) as real:
        settings.DEVICES_TASK_QUEUE = real.queue
        assert callback_client.post(sensor, {"x": 1}, token="garbage").status_code == 401
        deadline = time.monotonic() + 20
        while not CallbackActivity.objects.filter(device=sensor).exists():
            assert time.monotonic() < deadline, real.output()
            time.sleep(0.1)
    ((status, reason, count),) = log(sensor)
    assert (status, count) == (401, 1)
    assert reason.startswith("invalid")

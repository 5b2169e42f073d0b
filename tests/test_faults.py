"""Faults (issue 6, item 3), injected for real rather than mocked.

- The database goes away during a callback: refusing connections, its session killed in the
  middle of the transaction or just before COMMIT (PostgreSQL), locked by another writer
  (SQLite). The answer is 503 with ``Retry-After``, nothing of the call is stored, and the same
  call succeeds once the database is back.
- A worker is SIGKILLed in the middle of a delivery: the message stays unacknowledged
  (``acks_late``), and after the restart the broker's redelivery, a duplicate of it and the
  requeue sweep together deliver the call exactly once more (the claim is a compare-and-swap).

The broker being down loses no endpoint call: ``tests/test_endpoint_worker.py``
(``test_broker_down_callbacks_still_store_and_the_sweep_delivers_once``).
"""

import json
import signal
import socket
import sqlite3
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from buckets.models import BucketRecord
from endpoints.models import EndpointCall
from endpoints.tasks import endpoint_requeue_pending
from tests.factories import BucketFactory, DeviceFactory, EndpointFactory, callback_configure
from tests.reliability import report
from tests.worker import Reply, run_worker

pytestmark = pytest.mark.django_db(transaction=True)
faults = []


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if faults:
        report(request, f"faults injected {len(faults)} ({', '.join(faults)}), nothing lost")


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_refusing_connections():
    """Point Django's connection at a port nobody listens on: every connect is refused."""
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = closed_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


@contextmanager
def session_killed_on_insert_into(table):
    """The PostgreSQL session dies, as on a failover or an administrator's
    ``pg_terminate_backend``, when a row is inserted into ``table``: in the middle of the
    callback's function, its earlier writes done and nothing committed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_session_dies() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NEW; "
            "END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER test_session_dies BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION test_session_dies()"
        )
    try:
        yield
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER test_session_dies ON {table}")
            cursor.execute("DROP FUNCTION test_session_dies()")


def assert_503(response, assert_json_error):
    assert_json_error(response, 503)
    assert response["Retry-After"] == "7"


@pytest.fixture
def retry_after(settings):
    settings.CALLBACK_RETRY_AFTER_SECONDS = 7


def assert_recovers(callback_client, device):
    """The call is answered 200 once the database is back, and stored once."""
    response = callback_client.post(device, {"temperature": 21.5})
    assert response.status_code == 200
    assert list(BucketRecord.objects.values_list("value", flat=True)) == [{"temperature": 21.5}]


def test_database_refusing_connections_is_503_and_stores_nothing(
    postgresql,
    callback_client,
    callback_device,
    retry_after,
    assert_json_error,
    assert_nothing_stored,
):
    with database_refusing_connections():
        response = callback_client.post(callback_device, {"temperature": 21.5})
    faults.append("connection refused")

    assert_503(response, assert_json_error)
    assert_nothing_stored()
    assert_recovers(callback_client, callback_device)


@pytest.mark.parametrize(
    "table",
    ["endpoints_endpointcall", "devices_devicedailystats"],
    ids=["mid-transaction", "before-commit"],
)
def test_session_killed_during_the_callback_is_503_and_stores_nothing(
    postgresql,
    callback_client,
    callback_device,
    retry_after,
    assert_json_error,
    assert_nothing_stored,
    table,
):
    """The bucket insert and the property update already ran (mid-transaction), or everything
    but COMMIT did (before-commit: the statistics are the call's last write), when the session
    dies: PostgreSQL rolls it all back."""
    with session_killed_on_insert_into(table):
        response = callback_client.post(callback_device, {"temperature": 21.5})
    faults.append(f"session killed on insert into {table}")

    assert_503(response, assert_json_error)
    assert_nothing_stored()
    assert_recovers(callback_client, callback_device)


def test_database_locked_by_another_writer_is_503_and_stores_nothing(
    callback_client, callback_device, retry_after, assert_json_error, assert_nothing_stored
):
    """SQLite: another connection holds the write lock for longer than a callback waits."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        pytest.skip("SQLite's shared in-memory test database")
    other = sqlite3.connect(connection.settings_dict["NAME"], uri=True, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        response = callback_client.post(callback_device, {"temperature": 21.5})
    finally:
        other.execute("ROLLBACK")
        other.close()
    faults.append("database locked")

    assert_503(response, assert_json_error)
    assert_nothing_stored()
    assert_recovers(callback_client, callback_device)


# --- A worker killed in the middle of a delivery -------------------------------------------


def unacked_messages(queue):
    """The broker's unacknowledged messages for a queue (kombu's Redis transport)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    found = []
    for _, raw in client.hscan_iter("unacked"):
        message, _exchange, routing_key = json.loads(raw)
        if routing_key == queue:
            found.append(message)
    return found


def redeliver(message, queue):
    """Put a message back on a queue as the broker does with an unacknowledged one."""
    import redis
    from django.conf import settings

    message = json.loads(json.dumps(message))
    message["headers"]["redelivered"] = True
    message["properties"]["delivery_info"]["redelivered"] = True
    redis.Redis.from_url(settings.CELERY_BROKER_URL).lpush(queue, json.dumps(message))


def wait_until(predicate, what, worker, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; worker log:\n{worker.output()}")
        time.sleep(0.05)


@pytest.mark.services
def test_worker_killed_mid_delivery_is_sent_once_more_with_the_same_call_id(
    endpoint_worker, receiver, callback_client, settings, tmp_path
):
    device = DeviceFactory()
    endpoint = EndpointFactory(
        owner=device.owner,
        config={"url": f"{receiver.url}/in", "method": "POST", "headers": [], "body_type": "json"},
    )
    callback_configure(
        device, call_endpoint=endpoint, write_bucket=BucketFactory(owner=device.owner)
    )
    receiver.script(Reply(status=200, delay=30), default=200)

    with run_worker(tmp_path) as doomed:
        settings.ENDPOINTS_TASK_QUEUE = doomed.queue
        assert callback_client.post(device, {"temperature": 9}).status_code == 200
        receiver.wait_for(1)
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(timeout=10)
        faults.append("worker SIGKILL")
        # acks_late: the message was not acknowledged when the task started.
        [message] = unacked_messages(doomed.queue)
    call = EndpointCall.objects.get()
    assert (call.status, call.attempts) == (EndpointCall.Status.SENDING, 1)
    task_id = message["headers"]["id"]

    # Restart: a new worker. The broker redelivers the message while the dead worker's lease
    # still holds the call: the claim fails and nothing is sent.
    settings.ENDPOINTS_TASK_QUEUE = endpoint_worker.queue
    redeliver(message, endpoint_worker.queue)
    faults.append("redelivery during the lease")
    wait_until(
        lambda: f"[{task_id}] succeeded" in endpoint_worker.output(),
        "the redelivered task",
        endpoint_worker,
    )
    assert len(receiver.requests) == 1

    # The lease ends: the sweep hands the call back, and the broker redelivers the old message
    # once more at the same moment. Two tasks, one call: one of them claims it.
    EndpointCall.objects.filter(pk=call.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    redeliver(message, endpoint_worker.queue)
    assert endpoint_requeue_pending() == {"recovered": 1, "failed": 0, "requeued": 0}
    faults.append("duplicate delivery after the lease")
    wait_until(
        lambda: EndpointCall.objects.filter(
            pk=call.pk, status=EndpointCall.Status.SUCCEEDED
        ).exists(),
        "the delivery",
        endpoint_worker,
    )
    wait_until(
        lambda: endpoint_worker.output().count(f"[{task_id}] succeeded") == 2,
        "the duplicate task",
        endpoint_worker,
    )
    time.sleep(0.5)

    call.refresh_from_db()
    assert (call.status, call.attempts) == (EndpointCall.Status.SUCCEEDED, 2)
    requests = receiver.requests
    # At least once: the one cut short by the kill, and exactly one after restart, both with the
    # call's id for the receiver to de-duplicate.
    assert len(requests) == 2
    assert [r.headers["X-Endpoint-Call"] for r in requests] == [str(call.pk)] * 2
    assert requests[1].json() == {"temperature": 9}
    assert unacked_messages(endpoint_worker.queue) == []

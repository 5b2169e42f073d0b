"""End to end: a device callback, a real Celery worker process, a real receiver on 127.0.0.1."""

import hashlib
import hmac
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from buckets.models import BucketRecord
from endpoints.models import EndpointAttempt, EndpointCall
from endpoints.tasks import endpoint_requeue_pending
from tests.factories import BucketFactory, DeviceFactory, EndpointFactory, callback_configure
from tests.worker import Reply, broker_unreachable, run_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
Status = EndpointCall.Status
FINISHED = (Status.SUCCEEDED, Status.FAILED)


def wait_until(predicate, timeout=15.0, what="the worker"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_finished(count, worker):
    try:
        wait_until(lambda: EndpointCall.objects.filter(status__in=FINISHED).count() >= count)
    except AssertionError:
        raise AssertionError(f"calls not delivered; worker log:\n{worker.output()}") from None


@pytest.fixture
def device(receiver):
    device = DeviceFactory()
    endpoint = EndpointFactory(
        owner=device.owner,
        config={
            "url": f"{receiver.url}/in/{{{{device}}}}",
            "method": "POST",
            "headers": [
                {"key": "X-Device", "value": "{{device}}"},
                {"key": "X-Temperature", "value": "{{temperature}}"},
            ],
            "body_type": "json",
            "body": "",
        },
    )
    callback_configure(
        device, call_endpoint=endpoint, write_bucket=BucketFactory(owner=device.owner)
    )
    return device


def attempt_codes(call):
    return list(
        EndpointAttempt.objects.filter(call=call)
        .order_by("started_at", "id")
        .values_list("status_code", flat=True)
    )


def test_a_callback_is_delivered_signed_with_rendered_headers(
    endpoint_worker, device, receiver, callback_client
):
    response = callback_client.post(device, {"temperature": 21.5, "city": "Madrid"})
    assert response.status_code == 200

    wait_finished(1, endpoint_worker)
    [received] = receiver.wait_for(1)
    endpoint = device.callback.call_endpoint
    assert received.method == "POST"
    assert received.path == f"/in/{device.identifier}"
    assert received.json() == {"temperature": 21.5, "city": "Madrid"}
    assert received.headers["X-Device"] == device.identifier
    assert received.headers["X-Temperature"] == "21.5"
    digest = hmac.new(endpoint.secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Signature"] == f"sha256={digest}"

    call = EndpointCall.objects.get()
    assert (call.status, call.attempts, call.device_id) == (Status.SUCCEEDED, 1, device.pk)
    assert received.headers["X-Endpoint-Call"] == str(call.pk)
    assert attempt_codes(call) == [200]


def test_503_twice_then_200_is_delivered_once_after_retries(
    endpoint_worker, device, receiver, callback_client
):
    receiver.script(503, 503, 200)
    assert callback_client.post(device, {"temperature": 3}).status_code == 200

    wait_finished(1, endpoint_worker)
    call = EndpointCall.objects.get()
    assert (call.status, call.attempts) == (Status.SUCCEEDED, 3)
    assert attempt_codes(call) == [503, 503, 200]
    time.sleep(0.3)
    assert len(receiver.requests) == 3
    assert [r.json() for r in receiver.requests] == [{"temperature": 3}] * 3


def test_400_is_attempted_exactly_once(endpoint_worker, device, receiver, callback_client):
    receiver.script(default=Reply(status=400, body=b"no such sensor"))
    assert callback_client.post(device, {"temperature": 3}).status_code == 200

    wait_finished(1, endpoint_worker)
    call = EndpointCall.objects.get()
    assert (call.status, call.attempts, call.last_error) == (
        Status.FAILED,
        1,
        "HTTP 400 Bad Request",
    )
    assert attempt_codes(call) == [400]
    assert EndpointAttempt.objects.get(call=call).response_excerpt == "no such sensor"
    time.sleep(0.3)
    assert len(receiver.requests) == 1


def test_broker_down_callbacks_still_store_and_the_sweep_delivers_once(
    endpoint_worker, device, receiver, callback_client, settings
):
    with broker_unreachable():
        for value in range(3):
            response = callback_client.post(device, {"temperature": value})
            assert response.status_code == 200
    assert BucketRecord.objects.count() == 3
    assert EndpointCall.objects.filter(status=Status.PENDING).count() == 3
    time.sleep(0.3)
    assert receiver.requests == []

    settings.ENDPOINTS_REQUEUE_GRACE_SECONDS = 0
    assert endpoint_requeue_pending() == {"recovered": 0, "failed": 0, "requeued": 3}
    wait_finished(3, endpoint_worker)
    assert endpoint_requeue_pending()["requeued"] == 0
    time.sleep(0.3)

    calls = EndpointCall.objects.all()
    assert {(c.status, c.attempts) for c in calls} == {(Status.SUCCEEDED, 1)}
    assert sorted(r.headers["X-Endpoint-Call"] for r in receiver.requests) == sorted(
        str(c.pk) for c in calls
    )
    assert sorted(r.json()["temperature"] for r in receiver.requests) == [0, 1, 2]


def test_a_call_whose_worker_was_killed_is_recovered_by_the_sweep(
    endpoint_worker, device, receiver, callback_client, settings, tmp_path
):
    """SIGKILL a worker in the middle of a delivery: the call stays 'sending' until its lease
    ends, then the sweep hands it to another worker, which delivers it."""
    receiver.script(Reply(status=200, delay=30), 200)
    with run_worker(tmp_path) as doomed:
        settings.ENDPOINTS_TASK_QUEUE = doomed.queue
        assert callback_client.post(device, {"temperature": 9}).status_code == 200
        receiver.wait_for(1)
        call = EndpointCall.objects.get()
        assert (call.status, call.attempts) == (Status.SENDING, 1)
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(timeout=10)

    settings.ENDPOINTS_TASK_QUEUE = endpoint_worker.queue
    assert endpoint_requeue_pending() == {"recovered": 0, "failed": 0, "requeued": 0}
    # Time passes: the dead worker's lease ends.
    EndpointCall.objects.filter(pk=call.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert endpoint_requeue_pending() == {"recovered": 1, "failed": 0, "requeued": 0}

    wait_finished(1, endpoint_worker)
    call.refresh_from_db()
    assert (call.status, call.attempts) == (Status.SUCCEEDED, 2)
    assert attempt_codes(call) == [None, 200]
    requests = receiver.wait_for(2)
    assert [r.headers["X-Endpoint-Call"] for r in requests] == [str(call.pk)] * 2

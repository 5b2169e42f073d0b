"""An endpoint's call log in the console (issue 16): filtered by status, each call opened on a
page of its own with its whole payload and every attempt, and a failed call retried through the
outbox (back to pending, enqueued, delivered and logged by the worker's service), POST then
redirect."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from endpoints.models import EndpointAttempt, EndpointCall
from endpoints.services import endpoint_call_attempt
from tests.factories import (
    DeviceFactory,
    EndpointAttemptFactory,
    EndpointCallFactory,
    EndpointFactory,
    UserFactory,
)
from tests.worker import Reply

pytestmark = pytest.mark.django_db

Status = EndpointCall.Status


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def endpoint(user):
    return EndpointFactory(owner=user, identifier="hook")


def call_url(call, name="console-endpoint-call"):
    return reverse(name, args=[call.endpoint.identifier, call.pk])


def listed(console, **params):
    response = console.get(reverse("console-endpoint", args=["hook"]), params)
    assert response.status_code == 200
    return response, [call.pk for call in response.context["page"].object_list]


# The log.


def test_rows_open_their_call_and_failed_ones_can_be_retried(console, endpoint):
    failed = EndpointCallFactory(endpoint=endpoint, status=Status.FAILED, attempts=1)
    done = EndpointCallFactory(endpoint=endpoint, status=Status.SUCCEEDED, attempts=1)

    body = listed(console)[0].content.decode()

    assert body.count(f'href="{call_url(failed)}"') == 2  # the time and "Details"
    assert body.count(f'href="{call_url(done)}"') == 2
    assert f'action="{call_url(failed, "console-endpoint-call-retry")}"' in body
    assert call_url(done, "console-endpoint-call-retry") not in body


def test_the_log_is_filtered_by_status(console, endpoint):
    calls = {
        status: EndpointCallFactory(endpoint=endpoint, status=status)
        for status in (Status.SUCCEEDED, Status.FAILED, Status.PENDING, Status.SENDING)
    }

    assert set(listed(console)[1]) == {call.pk for call in calls.values()}
    assert listed(console, status="succeeded")[1] == [calls[Status.SUCCEEDED].pk]
    assert listed(console, status="failed")[1] == [calls[Status.FAILED].pk]
    pending = listed(console, status="pending")[1]
    assert set(pending) == {calls[Status.PENDING].pk, calls[Status.SENDING].pk}
    assert len(listed(console, status="nonsense")[1]) == 4

    response, _ = listed(console, status="failed")
    body = response.content.decode()
    assert '<a href="?status=failed#calls" class="active" aria-current="page">Failed</a>' in body
    assert '<a href="?#calls" class="">All</a>' in body


def test_an_empty_filter_says_so(console, endpoint):
    EndpointCallFactory(endpoint=endpoint, status=Status.SUCCEEDED)

    body = listed(console, status="failed")[0].content.decode()

    assert "No failed calls" in body
    assert "No calls yet" not in body


def test_pages_of_a_filter_keep_it(console, endpoint):
    for _ in range(25):
        EndpointCallFactory(endpoint=endpoint, status=Status.FAILED)
    EndpointCallFactory(endpoint=endpoint, status=Status.SUCCEEDED)

    response, first = listed(console, status="failed")
    body = response.content.decode()

    assert len(first) == 20
    assert "25 failed calls" in body
    assert 'href="?status=failed&amp;page=2"' in body
    assert len(listed(console, status="failed", page=2)[1]) == 5


# A call's page.


def test_a_calls_page_shows_its_whole_payload_and_every_attempt(console, endpoint, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    payload = {"reading": "x" * 5000, "temperature": 21.5}
    call = EndpointCallFactory(
        endpoint=endpoint,
        device=device,
        payload=payload,
        status=Status.FAILED,
        attempts=2,
        last_error="HTTP 503 Service Unavailable (gave up after 2 attempts)",
    )
    now = timezone.now()
    EndpointAttemptFactory(
        call=call,
        started_at=now - timedelta(minutes=1),
        status_code=None,
        error="could not connect to example.com: Connection refused",
        duration_ms=7,
    )
    EndpointAttemptFactory(
        call=call,
        started_at=now,
        status_code=503,
        error="HTTP 503 Service Unavailable",
        response_excerpt='{"busy": true}',
        duration_ms=1234,
    )

    response = console.get(call_url(call))
    body = response.content.decode()

    assert response.status_code == 200
    assert "x" * 5000 in body  # the whole payload, not an excerpt
    assert "&quot;temperature&quot;: 21.5" in body
    rows = body.split('id="attempts-table"')[1].split("<tbody>")[1].split("</tr>")
    assert "HTTP 503" in rows[0] and "1234 ms" in rows[0] and "{&quot;busy&quot;: true}" in rows[0]
    assert now.strftime("%H:%M:%S") in rows[0]
    assert "No answer" in rows[1] and "7 ms" in rows[1] and "Connection refused" in rows[1]
    assert "gave up after 2 attempts" in body
    assert call_url(call, "console-endpoint-call-retry") in body
    assert reverse("console-device", args=["sensor1"]) in body


def test_a_pending_call_without_attempts_says_it_waits(console, endpoint):
    call = EndpointCallFactory(endpoint=endpoint, status=Status.PENDING)

    body = console.get(call_url(call)).content.decode()

    assert "No attempt yet" in body
    assert "console-endpoint-call-retry" not in body and "Retry</button>" not in body


def test_a_call_is_found_through_its_own_endpoint_only(console, endpoint, user):
    other = EndpointFactory(owner=user, identifier="other")
    call = EndpointCallFactory(endpoint=other, status=Status.FAILED)
    theirs = EndpointCallFactory(status=Status.FAILED)  # another user's

    wrong = reverse("console-endpoint-call", args=["hook", call.pk])
    assert console.get(wrong).status_code == 404
    assert (
        console.post(reverse("console-endpoint-call-retry", args=["hook", call.pk])).status_code
        == 404
    )
    assert console.get(call_url(theirs)).status_code == 404
    assert console.post(call_url(theirs, "console-endpoint-call-retry")).status_code == 404
    assert console.get(reverse("console-endpoint-call", args=["hook", 999999])).status_code == 404
    assert EndpointCall.objects.get(pk=theirs.pk).status == Status.FAILED


def test_a_calls_page_costs_the_same_whatever_its_attempts(console, endpoint):
    call = EndpointCallFactory(endpoint=endpoint, status=Status.FAILED)
    EndpointAttemptFactory(call=call)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert console.get(call_url(call)).status_code == 200
        return len(queries)

    one = count()
    EndpointAttemptFactory.create_batch(20, call=call)
    assert count() == one


# Retry.


def test_retry_goes_through_the_outbox_and_the_worker_logs_the_attempt(
    console, endpoint, settings, receiver, enqueued, django_capture_on_commit_callbacks
):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    endpoint.config = {"url": f"{receiver.url}/in", "method": "POST"}
    endpoint.save()
    call = EndpointCallFactory(
        endpoint=endpoint, payload={"t": 1}, status=Status.FAILED, attempts=1, last_error="HTTP 404"
    )
    EndpointAttemptFactory(call=call, status_code=404, error="HTTP 404 Not Found")
    receiver.script(Reply(status=200, body=b"thanks"))

    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(call_url(call, "console-endpoint-call-retry"))

    # POST, then the call's page.
    assert response.status_code == 302
    assert response["Location"] == call_url(call)
    call.refresh_from_db()
    assert (call.status, call.last_error, call.finished_at) == (Status.PENDING, "", None)
    assert call.next_attempt_at is not None
    # Handed to the workers as any call is, once committed.
    assert [call_id for call_id, _ in enqueued] == [call.pk]

    # The worker's service delivers it.
    assert endpoint_call_attempt(call_id=call.pk) == Status.SUCCEEDED
    assert receiver.requests[-1].json() == {"t": 1}
    assert receiver.requests[-1].headers["X-Endpoint-Call"] == str(call.pk)
    call.refresh_from_db()
    assert (call.status, call.attempts) == (Status.SUCCEEDED, 2)
    attempts = list(call.attempt_log.all())
    assert [a.status_code for a in attempts] == [200, 404]
    assert attempts[0].response_excerpt == "thanks"

    page = console.get(response["Location"]).content.decode()
    assert f"Call {call.pk} is queued again" in page


def test_a_call_out_of_attempts_gets_one_more(endpoint, settings, receiver, enqueued):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    settings.ENDPOINTS_MAX_ATTEMPTS = 3
    endpoint.config = {"url": f"{receiver.url}/in", "method": "POST"}
    endpoint.save()
    call = EndpointCallFactory(endpoint=endpoint, status=Status.FAILED, attempts=3)
    receiver.script(503)
    from endpoints.services import endpoint_call_retry

    endpoint_call_retry(call=call)

    assert endpoint_call_attempt(call_id=call.pk) == Status.FAILED
    call.refresh_from_db()
    assert call.attempts == 4
    assert call.last_error == "HTTP 503 Service Unavailable (gave up after 4 attempts)"


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (Status.SUCCEEDED, "this one succeeded."),
        (Status.PENDING, "this one is waiting to be sent."),
        (Status.SENDING, "this one is being sent."),
    ],
)
def test_only_a_failed_call_is_retried(console, endpoint, enqueued, status, said):
    call = EndpointCallFactory(endpoint=endpoint, status=status, attempts=1)

    response = console.post(call_url(call, "console-endpoint-call-retry"), follow=True)

    assert response.redirect_chain == [(call_url(call), 302)]
    [message] = [str(m) for m in response.context["messages"]]
    assert message == f"Only a failed call can be retried: {said}"
    assert EndpointCall.objects.get(pk=call.pk).status == status
    assert not enqueued


def test_retry_is_a_post(console, endpoint, enqueued):
    call = EndpointCallFactory(endpoint=endpoint, status=Status.FAILED)

    assert console.get(call_url(call, "console-endpoint-call-retry")).status_code == 405
    assert EndpointCall.objects.get(pk=call.pk).status == Status.FAILED
    assert not EndpointAttempt.objects.exists()

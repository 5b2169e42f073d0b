"""Delivery of recorded calls: enqueue on commit, atomic claim, retries, failures, recovery."""

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from endpoints.models import EndpointAttempt, EndpointCall
from endpoints.net import parse_retry_after
from endpoints.services import (
    endpoint_call_claim,
    endpoint_call_record,
    endpoint_calls_requeue,
    retry_delay,
)
from endpoints.tasks import endpoint_call_deliver, endpoint_requeue_pending
from tests.factories import DeviceFactory, EndpointCallFactory, EndpointFactory
from tests.worker import Reply

pytestmark = pytest.mark.django_db
Status = EndpointCall.Status


@pytest.fixture(autouse=True)
def _delivery_settings(settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    settings.ENDPOINTS_MAX_ATTEMPTS = 4
    settings.ENDPOINTS_RETRY_BASE_SECONDS = 0
    settings.ENDPOINTS_RETRY_MAX_SECONDS = 3600
    settings.ENDPOINTS_REQUEUE_GRACE_SECONDS = 60


@pytest.fixture
def endpoint(receiver):
    return EndpointFactory(config={"url": f"{receiver.url}/hook", "method": "POST"})


@pytest.fixture
def call(endpoint):
    return EndpointCallFactory(endpoint=endpoint, payload={"temperature": 21.5})


def run(call, django_capture_on_commit_callbacks):
    """One run of the delivery task, as a worker runs it; returns the refreshed call."""
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_call_deliver(call.pk)
    call.refresh_from_db()
    return call


def attempts_of(call):
    return list(
        EndpointAttempt.objects.filter(call=call)
        .order_by("started_at", "id")
        .values_list("status_code", "error")
    )


class TestEnqueue:
    def test_record_enqueues_once_the_transaction_commits(
        self, endpoint, enqueued, django_capture_on_commit_callbacks
    ):
        device = DeviceFactory(owner=endpoint.owner)
        with django_capture_on_commit_callbacks() as callbacks:
            call = endpoint_call_record(endpoint=endpoint, device=device, payload={"a": 1}, ts=5)
            assert enqueued == []
        assert len(callbacks) == 1
        callbacks[0]()
        [(call_id, options)] = enqueued
        assert call_id == call.pk
        assert "countdown" not in options and "queue" not in options
        assert call.status == Status.PENDING
        assert call.next_attempt_at is not None

    def test_a_rolled_back_record_is_never_enqueued(
        self, endpoint, enqueued, django_capture_on_commit_callbacks
    ):
        with (
            django_capture_on_commit_callbacks(execute=True) as callbacks,
            pytest.raises(RuntimeError),
            transaction.atomic(),
        ):
            endpoint_call_record(endpoint=endpoint, device=None, payload=1, ts=5)
            raise RuntimeError
        assert callbacks == []
        assert enqueued == []
        assert not EndpointCall.objects.exists()

    def test_broker_down_is_logged_and_swallowed(
        self, endpoint, monkeypatch, caplog, django_capture_on_commit_callbacks
    ):
        def refuse(*args, **kwargs):
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        monkeypatch.setattr(endpoint_call_deliver, "apply_async", refuse)
        with django_capture_on_commit_callbacks(execute=True):
            call = endpoint_call_record(endpoint=endpoint, device=None, payload={"a": 1}, ts=5)
        call.refresh_from_db()
        assert call.status == Status.PENDING
        assert f"could not enqueue endpoint call {call.pk}" in caplog.text

    def test_settings_queue_routes_deliveries(self, endpoint, enqueued, settings):
        settings.ENDPOINTS_TASK_QUEUE = "endpoints"
        from endpoints.services import endpoint_call_enqueue

        endpoint_call_enqueue(call_id=7, countdown=3)
        assert enqueued[0][0] == 7
        assert enqueued[0][1]["queue"] == "endpoints"
        assert enqueued[0][1]["countdown"] == 3


class TestClaim:
    def test_two_claims_of_one_row_one_wins(self, call):
        first = endpoint_call_claim(call_id=call.pk)
        second = endpoint_call_claim(call_id=call.pk)
        assert first is not None and first.status == Status.SENDING and first.attempts == 1
        assert second is None
        call.refresh_from_db()
        assert (call.status, call.attempts) == (Status.SENDING, 1)

    def test_not_due_and_finished_calls_are_not_claimed(self, endpoint):
        later = EndpointCallFactory(
            endpoint=endpoint, next_attempt_at=timezone.now() + timedelta(minutes=5)
        )
        done = EndpointCallFactory(endpoint=endpoint, status=Status.SUCCEEDED)
        assert endpoint_call_claim(call_id=later.pk) is None
        assert endpoint_call_claim(call_id=done.pk) is None
        assert endpoint_call_claim(call_id=999_999) is None

    def test_claim_sets_a_lease(self, call, settings):
        settings.ENDPOINTS_CONNECT_TIMEOUT_SECONDS = 5
        settings.ENDPOINTS_READ_TIMEOUT_SECONDS = 15
        now = timezone.now()
        claimed = endpoint_call_claim(call_id=call.pk, now=now)
        assert claimed.next_attempt_at == now + timedelta(seconds=5 + 15 + 60)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_on_separate_connections_one_wins(receiver):
    """Workers racing for one row, each on its own database connection: exactly one claims it."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the test database is shared-cache in memory")
    call = EndpointCallFactory(endpoint=EndpointFactory(config={"url": receiver.url}))
    racers = 6
    barrier, results = threading.Barrier(racers), []

    def claim():
        try:
            barrier.wait()
            results.append(endpoint_call_claim(call_id=call.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1
    call.refresh_from_db()
    assert (call.status, call.attempts) == (Status.SENDING, 1)


class TestRetries:
    def test_503_503_200_succeeds_once_after_retries(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        receiver.script(503, 503, 200)
        assert run(call, django_capture_on_commit_callbacks).status == Status.PENDING
        assert call.last_error == "HTTP 503 Service Unavailable"
        assert run(call, django_capture_on_commit_callbacks).status == Status.PENDING
        assert run(call, django_capture_on_commit_callbacks).status == Status.SUCCEEDED
        # A late duplicate of the task finds nothing to do.
        assert run(call, django_capture_on_commit_callbacks).status == Status.SUCCEEDED

        assert call.attempts == 3
        assert call.last_error == ""
        assert call.finished_at is not None
        assert [status for status, _ in attempts_of(call)] == [503, 503, 200]
        assert len(receiver.requests) == 3
        assert {r.headers["X-Endpoint-Call"] for r in receiver.requests} == {str(call.pk)}
        assert [r.json() for r in receiver.requests] == [{"temperature": 21.5}] * 3
        # Each failure re-enqueued the task with its backoff (0 s here).
        assert [(call_id, options.get("countdown", 0)) for call_id, options in enqueued] == [
            (call.pk, 0),
            (call.pk, 0),
        ]

    def test_backoff_waits_before_the_next_attempt(
        self, call, receiver, enqueued, settings, django_capture_on_commit_callbacks
    ):
        settings.ENDPOINTS_RETRY_BASE_SECONDS = 10
        receiver.script(500)
        before = timezone.now()
        run(call, django_capture_on_commit_callbacks)
        assert call.status == Status.PENDING
        wait = (call.next_attempt_at - before).total_seconds()
        assert 5 <= wait <= 11
        [(_, options)] = enqueued
        assert 5 <= options["countdown"] <= 10
        # Not due yet: a task arriving early claims nothing and comes back when due.
        run(call, django_capture_on_commit_callbacks)
        assert (call.status, call.attempts) == (Status.PENDING, 1)
        assert len(receiver.requests) == 1
        assert 0 < enqueued[-1][1]["countdown"] <= 10

    def test_400_fails_after_exactly_one_attempt(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        receiver.script(Reply(status=400, body=b'{"error": "bad field"}'), default=400)
        run(call, django_capture_on_commit_callbacks)
        assert (call.status, call.attempts) == (Status.FAILED, 1)
        assert call.last_error == "HTTP 400 Bad Request"
        assert call.next_attempt_at is None and call.finished_at is not None
        [attempt] = EndpointAttempt.objects.filter(call=call)
        assert attempt.status_code == 400
        assert attempt.response_excerpt == '{"error": "bad field"}'
        assert enqueued == []
        run(call, django_capture_on_commit_callbacks)
        assert len(receiver.requests) == 1

    def test_redirects_are_not_followed(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        receiver.script(Reply(status=302, headers={"Location": f"{receiver.url}/elsewhere"}))
        run(call, django_capture_on_commit_callbacks)
        assert call.status == Status.FAILED
        assert "redirect" in call.last_error and "/elsewhere" in call.last_error
        assert [r.path for r in receiver.requests] == ["/hook"]

    def test_429_retry_after_seconds_is_honoured(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        receiver.script(Reply(status=429, headers={"Retry-After": "120"}))
        before = timezone.now()
        run(call, django_capture_on_commit_callbacks)
        assert call.status == Status.PENDING
        assert call.last_error == "HTTP 429 Too Many Requests"
        assert 119 <= (call.next_attempt_at - before).total_seconds() <= 121
        [(_, options)] = enqueued
        assert options["countdown"] == 120

    def test_503_retry_after_http_date_is_honoured(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        when = datetime.now(UTC) + timedelta(seconds=300)
        receiver.script(
            Reply(status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
        )
        run(call, django_capture_on_commit_callbacks)
        assert 290 <= enqueued[0][1]["countdown"] <= 301
        assert abs((call.next_attempt_at - when).total_seconds()) < 2

    def test_timeout_is_retried(
        self, call, receiver, enqueued, settings, django_capture_on_commit_callbacks
    ):
        settings.ENDPOINTS_READ_TIMEOUT_SECONDS = 0.3
        receiver.script(Reply(status=200, delay=1.0))
        run(call, django_capture_on_commit_callbacks)
        assert call.status == Status.PENDING
        assert call.last_error == "no response from 127.0.0.1 within 0.3s"
        [(status_code, error)] = attempts_of(call)
        assert status_code is None and "no response" in error
        assert run(call, django_capture_on_commit_callbacks).status == Status.SUCCEEDED

    def test_connection_refused_is_retried(
        self, endpoint, enqueued, django_capture_on_commit_callbacks
    ):
        endpoint.config["url"] = "http://127.0.0.1:9/"  # discard port: nothing listens
        endpoint.save()
        call = EndpointCallFactory(endpoint=endpoint)
        run(call, django_capture_on_commit_callbacks)
        assert call.status == Status.PENDING
        assert call.last_error == "could not connect to 127.0.0.1: Connection refused"

    def test_gives_up_after_max_attempts(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        receiver.script(default=502)
        for _ in range(4):
            run(call, django_capture_on_commit_callbacks)
        assert (call.status, call.attempts) == (Status.FAILED, 4)
        assert call.last_error == "HTTP 502 Bad Gateway (gave up after 4 attempts)"
        assert len(enqueued) == 3
        run(call, django_capture_on_commit_callbacks)
        assert len(receiver.requests) == 4

    def test_disabled_endpoint_fails_with_a_clear_error(
        self, call, endpoint, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        endpoint.enabled = False
        endpoint.save()
        run(call, django_capture_on_commit_callbacks)
        assert (call.status, call.last_error) == (Status.FAILED, "the endpoint is disabled")
        assert attempts_of(call) == [(None, "the endpoint is disabled")]
        assert receiver.requests == []

    def test_invalid_configuration_fails_at_once(
        self, call, endpoint, enqueued, django_capture_on_commit_callbacks
    ):
        endpoint.config = {"url": "gopher://x.example/", "method": "POST"}
        endpoint.save()
        run(call, django_capture_on_commit_callbacks)
        assert call.status == Status.FAILED
        assert call.last_error.startswith("invalid configuration: url:")

    def test_long_responses_are_capped(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        receiver.script(Reply(status=200, body=b"x" * 100_000))
        run(call, django_capture_on_commit_callbacks)
        assert call.status == Status.SUCCEEDED
        assert EndpointAttempt.objects.get(call=call).response_excerpt == "x" * 1000


class TestRetryDelay:
    def test_exponential_with_jitter_and_a_cap(self, settings):
        settings.ENDPOINTS_RETRY_BASE_SECONDS = 10
        settings.ENDPOINTS_RETRY_MAX_SECONDS = 100
        for attempt, full in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (40, 100)]:
            delays = [retry_delay(attempt) for _ in range(50)]
            assert all(full / 2 <= d <= full for d in delays)
            assert len(set(delays)) > 1

    def test_retry_after_wins_and_is_capped(self, settings):
        settings.ENDPOINTS_RETRY_MAX_SECONDS = 100
        assert retry_delay(1, retry_after=30) == 30
        assert retry_delay(1, retry_after=5000) == 100

    def test_parse_retry_after(self):
        now = datetime(2025, 1, 1, tzinfo=UTC)
        assert parse_retry_after("7", now) == 7
        assert parse_retry_after("Wed, 01 Jan 2025 00:01:00 GMT", now) == 60
        assert parse_retry_after("Tue, 31 Dec 2024 00:00:00 GMT", now) == 0
        assert parse_retry_after("soon", now) is None
        assert parse_retry_after(None, now) is None


class TestRequeue:
    def test_stale_pending_calls_are_enqueued_again(self, endpoint, enqueued):
        now = timezone.now()
        stale = EndpointCallFactory(endpoint=endpoint, next_attempt_at=now - timedelta(seconds=61))
        never_scheduled = EndpointCallFactory(endpoint=endpoint, next_attempt_at=None)
        EndpointCall.objects.filter(pk=never_scheduled.pk).update(created=now - timedelta(hours=1))
        EndpointCallFactory(endpoint=endpoint, next_attempt_at=now - timedelta(seconds=10))
        EndpointCallFactory(endpoint=endpoint, next_attempt_at=now + timedelta(minutes=5))
        EndpointCallFactory(endpoint=endpoint, status=Status.FAILED, next_attempt_at=None)

        assert endpoint_calls_requeue(now=now) == {"recovered": 0, "failed": 0, "requeued": 2}
        assert sorted(call_id for call_id, _ in enqueued) == sorted([stale.pk, never_scheduled.pk])
        stale.refresh_from_db()
        assert (stale.status, stale.next_attempt_at) == (Status.PENDING, now)
        # Enqueued again at most once per grace period.
        assert endpoint_calls_requeue(now=now + timedelta(seconds=30))["requeued"] == 0
        assert endpoint_calls_requeue(now=now + timedelta(seconds=61))["requeued"] == 3

    def test_stuck_sending_calls_go_back_to_pending(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        # A worker claimed the call, then died (SIGKILL) before recording anything.
        claimed_at = timezone.now() - timedelta(minutes=10)
        assert endpoint_call_claim(call_id=call.pk, now=claimed_at) is not None

        assert endpoint_calls_requeue() == {"recovered": 1, "failed": 0, "requeued": 0}
        call.refresh_from_db()
        assert (call.status, call.attempts) == (Status.PENDING, 1)
        assert "worker stopped" in call.last_error
        assert [call_id for call_id, _ in enqueued] == [call.pk]
        assert attempts_of(call) == [(None, "no result: the worker stopped during this attempt")]

        run(call, django_capture_on_commit_callbacks)
        assert (call.status, call.attempts) == (Status.SUCCEEDED, 2)
        assert len(receiver.requests) == 1

    def test_a_sending_call_within_its_lease_is_left_alone(self, call, enqueued):
        endpoint_call_claim(call_id=call.pk)
        assert endpoint_calls_requeue() == {"recovered": 0, "failed": 0, "requeued": 0}
        call.refresh_from_db()
        assert call.status == Status.SENDING

    def test_stuck_call_out_of_attempts_fails(self, endpoint, enqueued):
        call = EndpointCallFactory(
            endpoint=endpoint,
            status=Status.SENDING,
            attempts=4,
            next_attempt_at=timezone.now() - timedelta(seconds=1),
        )
        assert endpoint_calls_requeue()["failed"] == 1
        call.refresh_from_db()
        assert call.status == Status.FAILED
        assert call.last_error.endswith("(gave up after 4 attempts)")
        assert enqueued == []

    def test_a_worker_whose_lease_was_taken_over_does_not_overwrite(
        self, call, receiver, enqueued, django_capture_on_commit_callbacks
    ):
        """A slow worker finishes after the sweep handed its call to another: no double result."""
        from endpoints import services

        original = services._attempt

        def slow_attempt(claimed):
            # While this worker sends, the sweep presumes it dead and another worker succeeds.
            services._attempt = original
            endpoint_calls_requeue(now=timezone.now() + timedelta(hours=1))
            EndpointCall.objects.filter(pk=claimed.pk).update(next_attempt_at=timezone.now())
            with django_capture_on_commit_callbacks(execute=True):
                services.endpoint_call_attempt(call_id=claimed.pk)
            return original(claimed)

        services._attempt = slow_attempt
        try:
            status = services.endpoint_call_attempt(call_id=call.pk)
        finally:
            services._attempt = original
        assert status is None
        call.refresh_from_db()
        assert (call.status, call.attempts) == (Status.SUCCEEDED, 2)

    def test_beat_task_runs_the_sweep(self, endpoint, enqueued, settings):
        settings.ENDPOINTS_REQUEUE_GRACE_SECONDS = 0
        call = EndpointCallFactory(endpoint=endpoint, next_attempt_at=timezone.now())
        assert endpoint_requeue_pending() == {"recovered": 0, "failed": 0, "requeued": 1}
        assert [call_id for call_id, _ in enqueued] == [call.pk]

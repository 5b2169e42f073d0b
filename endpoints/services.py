"""Endpoint calls: record, hand to a worker, claim, attempt, retry, recover.

Delivery is at least once. A call row is claimed with a compare-and-swap (pending -> sending) so
two workers never send it at the same time; a worker that dies while sending leaves the row in
``sending`` until its lease (``next_attempt_at``) ends, and the requeue sweep then retries it.
Receivers that must not act twice can use the ``X-Endpoint-Call`` header as a delivery id.
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import KombuError

from core.db import duplicate_message, insert_unique, lock_existing, save_changes, updatable
from core.events import publish
from endpoints.events import CALL
from endpoints.kinds import config_errors, kind_for
from endpoints.models import Endpoint, EndpointAttempt, EndpointCall
from endpoints.net import EXCERPT_CHARS, Outcome, timeouts
from endpoints.placeholders import Values

logger = logging.getLogger(__name__)

Status = EndpointCall.Status
ERROR_CHARS = 1000
# Publishing to a broker that is down gives up within a second: the call row is safe in the
# database and the requeue sweep enqueues it again later.
ENQUEUE_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


def endpoint_call_record(*, endpoint, device, payload, ts):
    """Record a call to make. Call inside the transaction that stores the triggering data.

    The call is handed to a worker once that transaction commits.
    """
    call = EndpointCall.objects.create(
        endpoint=endpoint, device=device, payload=payload, ts=ts, next_attempt_at=timezone.now()
    )
    transaction.on_commit(lambda: endpoint_call_enqueue(call_id=call.pk))
    return call


def endpoint_call_enqueue(*, call_id, countdown=None, queue=None):
    """Hand a call to the workers. Returns False, after logging, when the broker refuses it.

    ``queue`` defaults to the ``ENDPOINTS_TASK_QUEUE`` setting, else Celery's default queue.
    """
    from endpoints.tasks import endpoint_call_deliver

    options = {"retry": True, "retry_policy": ENQUEUE_RETRY_POLICY}
    if countdown:
        options["countdown"] = countdown
    queue = queue or settings.ENDPOINTS_TASK_QUEUE
    if queue:
        options["queue"] = queue
    try:
        endpoint_call_deliver.apply_async((call_id,), **options)
    except Exception as exc:
        logger.error(
            "could not enqueue endpoint call %s; the requeue sweep will retry it: %s",
            call_id,
            exc,
            exc_info=not isinstance(exc, KombuError),
        )
        return False
    return True


def _lease():
    """How long a worker may hold a call in ``sending`` before it is presumed dead."""
    return timedelta(seconds=sum(timeouts()) + settings.ENDPOINTS_REQUEUE_GRACE_SECONDS)


def endpoint_call_claim(*, call_id, now=None):
    """Take a due pending call for sending; returns it, or None when another worker has it,
    it is not due yet, or it is finished."""
    now = now or timezone.now()
    claimed = EndpointCall.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        pk=call_id,
        status=Status.PENDING,
    ).update(status=Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + _lease())
    if not claimed:
        return None
    return EndpointCall.objects.select_related("endpoint__owner", "device").get(pk=call_id)


def endpoint_call_attempt(*, call_id, queue=None):
    """One delivery attempt of a recorded call: claim, send, log, then settle or schedule a retry.

    Returns the call's new status, or None when the call could not be claimed.
    """
    started_at = timezone.now()
    call = endpoint_call_claim(call_id=call_id, now=started_at)
    if call is None:
        _reschedule_if_early(call_id=call_id, now=started_at, queue=queue)
        return None
    outcome = _attempt(call)
    return _settle(call, outcome, started_at=started_at, queue=queue)


def _reschedule_if_early(*, call_id, now, queue):
    """A task that arrives before its call is due (clock skew) comes back when it is due."""
    due = (
        EndpointCall.objects.filter(pk=call_id, status=Status.PENDING)
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if due and due > now:
        endpoint_call_enqueue(call_id=call_id, countdown=(due - now).total_seconds(), queue=queue)


def _attempt(call):
    endpoint = call.endpoint
    if not endpoint.enabled:
        return Outcome.failure("the endpoint is disabled", permanent=True)
    errors = config_errors(endpoint.type, endpoint.config)
    if errors:
        details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        return Outcome.failure(f"invalid configuration: {details}", permanent=True)
    values = Values(
        payload=call.payload,
        device=call.device.identifier if call.device else None,
        user=endpoint.owner.username,
        ts=call.ts,
    )
    try:
        return kind_for(endpoint.type).deliver(endpoint, values, call_id=call.pk)
    except Exception as exc:
        logger.exception("endpoint call %s: unexpected error", call.pk)
        return Outcome.failure(f"internal error: {type(exc).__name__}", permanent=False)


def retry_delay(attempt, retry_after=None):
    """Seconds before the next attempt: the target's Retry-After when it gave one, else
    exponential backoff with jitter; both capped by ENDPOINTS_RETRY_MAX_SECONDS."""
    cap = settings.ENDPOINTS_RETRY_MAX_SECONDS
    if retry_after is not None:
        return min(float(retry_after), cap)
    delay = min(cap, settings.ENDPOINTS_RETRY_BASE_SECONDS * 2 ** min(attempt - 1, 30))
    return delay / 2 + random.uniform(0, delay / 2)


def _log_attempt(call, outcome, started_at):
    return EndpointAttempt.objects.create(
        call=call,
        started_at=started_at,
        duration_ms=outcome.duration_ms,
        status_code=outcome.status_code,
        error=outcome.error[:ERROR_CHARS],
        response_excerpt=outcome.response_excerpt[:EXCERPT_CHARS],
    )


def _announce(call, outcome):
    """An attempt's live event for the endpoint's owner, once it is logged and committed."""
    endpoint = call.endpoint
    publish(
        endpoint.owner.username,
        CALL(
            endpoint.identifier,
            status="success" if outcome.ok else "error",
            status_code=outcome.status_code,
            device=call.device.identifier if call.device_id else None,
            duration_ms=outcome.duration_ms,
            attempt=call.attempts,
        ),
    )


def _settle(call, outcome, *, started_at, queue):
    now = timezone.now()
    delay = None
    if outcome.ok:
        fields = {"status": Status.SUCCEEDED, "last_error": ""}
    elif outcome.permanent:
        fields = {"status": Status.FAILED, "last_error": outcome.error}
    elif call.attempts >= settings.ENDPOINTS_MAX_ATTEMPTS:
        error = f"{outcome.error} (gave up after {call.attempts} attempts)"
        fields = {"status": Status.FAILED, "last_error": error}
    else:
        delay = retry_delay(call.attempts, outcome.retry_after)
        fields = {
            "status": Status.PENDING,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": outcome.error,
        }
    if delay is None:
        fields.update(finished_at=now, next_attempt_at=None)
    fields["last_error"] = fields["last_error"][:ERROR_CHARS]
    with transaction.atomic():
        # Only while the lease is ours: a sweep may have given the call to another worker. The
        # update comes before the log: it waits for an endpoint deletion in progress (which locks
        # the endpoint's open calls), after which there is no call left to log an attempt for.
        settled = EndpointCall.objects.filter(
            pk=call.pk, status=Status.SENDING, attempts=call.attempts
        ).update(**fields)
        if settled or EndpointCall.objects.filter(pk=call.pk).exists():
            _log_attempt(call, outcome, started_at)
            _announce(call, outcome)
        if not settled:
            logger.warning("endpoint call %s: lease lost, result not applied", call.pk)
            return None
        if delay is not None:
            transaction.on_commit(
                lambda: endpoint_call_enqueue(call_id=call.pk, countdown=delay, queue=queue)
            )
    return fields["status"]


def endpoint_calls_requeue(*, now=None, limit=1000):
    """Recover calls that no worker is handling: the beat sweep.

    Calls stuck in ``sending`` past their lease (their worker died) go back to pending, or fail
    once out of attempts; pending calls due for longer than ENDPOINTS_REQUEUE_GRACE_SECONDS
    (their task was lost, or never enqueued because the broker was down) are enqueued again,
    at most once per grace period. Both changes are compare-and-swaps: concurrent sweeps and
    workers are harmless.
    """
    now = now or timezone.now()
    grace = timedelta(seconds=settings.ENDPOINTS_REQUEUE_GRACE_SECONDS)
    to_enqueue, failed = [], 0
    lost = Outcome.failure("no result: the worker stopped during this attempt", permanent=False)
    stuck = EndpointCall.objects.filter(status=Status.SENDING, next_attempt_at__lt=now)
    for call in stuck.order_by("next_attempt_at").only("attempts", "next_attempt_at")[:limit]:
        give_up = call.attempts >= settings.ENDPOINTS_MAX_ATTEMPTS
        if give_up:
            error = f"{lost.error} (gave up after {call.attempts} attempts)"
            fields = {"status": Status.FAILED, "finished_at": now, "next_attempt_at": None}
        else:
            error = lost.error
            fields = {"status": Status.PENDING, "next_attempt_at": now}
        with transaction.atomic():
            swapped = EndpointCall.objects.filter(
                pk=call.pk,
                status=Status.SENDING,
                attempts=call.attempts,
                next_attempt_at=call.next_attempt_at,
            ).update(last_error=error, **fields)
            if swapped:
                # When the attempt started, as near as the lease tells.
                _log_attempt(call, lost, started_at=call.next_attempt_at - _lease())
        if swapped and give_up:
            failed += 1
        elif swapped:
            to_enqueue.append(call.pk)
    stale = list(
        EndpointCall.objects.filter(
            Q(next_attempt_at__lte=now - grace)
            | Q(next_attempt_at__isnull=True, created__lte=now - grace),
            status=Status.PENDING,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if stale:
        EndpointCall.objects.filter(pk__in=stale, status=Status.PENDING).update(next_attempt_at=now)
    recovered = len(to_enqueue)
    for call_id in to_enqueue + stale:
        endpoint_call_enqueue(call_id=call_id)
    return {"recovered": recovered, "failed": failed, "requeued": len(stale)}


@dataclass
class CallResult:
    ok: bool
    status_code: int | None
    response_excerpt: str
    error: str
    duration_ms: int
    call: EndpointCall


def endpoint_call_now(*, endpoint, payload, device=None):
    """Call an endpoint synchronously, once, and log it like any other call.

    For ``POST /v1/users/{user}/endpoints/{endpoint}/call`` and the console's test button: the
    same sender and guard as deliveries, no retries. The call and its attempt are stored after
    the attempt, so a call that never finished leaves no row to retry.
    """
    started_at = timezone.now()
    call = EndpointCall(
        endpoint=endpoint,
        device=device,
        payload=payload,
        ts=int(started_at.timestamp() * 1000),
        attempts=1,
    )
    outcome = _attempt(call)
    call.status = Status.SUCCEEDED if outcome.ok else Status.FAILED
    call.finished_at = timezone.now()
    call.last_error = outcome.error[:ERROR_CHARS]
    with transaction.atomic():
        lock_existing(endpoint)  # deleted during the attempt: nothing to log it in (a 404)
        call.save()
        _log_attempt(call, outcome, started_at)
        _announce(call, outcome)
    return CallResult(
        ok=outcome.ok,
        status_code=outcome.status_code,
        response_excerpt=outcome.response_excerpt,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
        call=call,
    )


_NOT_RETRIED = {
    Status.SUCCEEDED: "this one succeeded.",
    Status.PENDING: "this one is waiting to be sent.",
    Status.SENDING: "this one is being sent.",
}


def endpoint_call_retry(*, call, now=None):
    """Send a failed call again, through the queue as any delivery: it goes back to pending, due
    now, and a worker claims it, makes the attempt and logs it in the call's attempt log.

    A transient failure is retried with backoff while the call has attempts left
    (ENDPOINTS_MAX_ATTEMPTS counts every attempt, the earlier ones too): a call that used them
    all gets this one attempt. Only a failed call is retried (a ValidationError otherwise); the
    change is a compare-and-swap, so two retries at once queue it once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        retried = EndpointCall.objects.filter(pk=call.pk, status=Status.FAILED).update(
            status=Status.PENDING, next_attempt_at=now, finished_at=None, last_error=""
        )
        if not retried:
            state = EndpointCall.objects.filter(pk=call.pk).values_list("status", flat=True)
            raise ValidationError(
                "Only a failed call can be retried: "
                + _NOT_RETRIED.get(state.first(), "this one no longer exists.")
            )
        transaction.on_commit(lambda: endpoint_call_enqueue(call_id=call.pk))
    call.refresh_from_db()
    return call


# --- Endpoints: create, update, delete (the API, the console and the admin's rules) ------------

_UPDATABLE = {"name", "description", "enabled", "type", "config"}


def _validate(endpoint, *, new):
    """Raise a ValidationError of ``{field: [message, ...]}`` when ``endpoint`` may not be saved.

    Model fields keep their names (``identifier``, ``name``, ``type``...); a configuration field
    is ``config.<key>`` (``config.url``), and ``config`` itself when it is not an object.
    """
    errors = {}
    try:
        endpoint.full_clean(validate_constraints=False)
    except ValidationError as exc:
        errors = exc.message_dict
    # Endpoint.clean() folds the configuration's errors into "config": restated per field below.
    errors.pop("config", None)
    for name, messages in config_errors(endpoint.type, endpoint.config).items():
        key = name if name in ("type", "config") else f"config.{name}"
        errors[key] = messages  # for "type", clearer than the choice field's message
    if new and "identifier" not in errors:
        duplicate = Endpoint.objects.filter(
            owner_id=endpoint.owner_id, identifier=endpoint.identifier
        ).exists()
        if duplicate:
            errors["identifier"] = [duplicate_message(Endpoint)]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def endpoint_create(*, owner, identifier, type, config, name="", description="", enabled=True):
    """A new endpoint of ``owner``; its configuration is checked against its type's rules."""
    endpoint = Endpoint(
        owner=owner,
        identifier=identifier,
        type=type,
        config=config,
        name=name,
        description=description,
        enabled=enabled,
    )
    _validate(endpoint, new=True)
    return insert_unique(endpoint)


@transaction.atomic
def endpoint_update(*, endpoint, **fields):
    """Change some of an endpoint's settings (a partial update); its id never changes.

    ``config`` replaces the whole configuration; a new ``type`` is checked against the
    configuration the endpoint ends up with. On a ValidationError ``endpoint`` is left as it was.
    """
    updatable("endpoint_update", fields, _UPDATABLE)
    before = {name: getattr(endpoint, name) for name in fields}
    for name, value in fields.items():
        setattr(endpoint, name, value)
    try:
        _validate(endpoint, new=False)
    except ValidationError:
        for name, value in before.items():
            setattr(endpoint, name, value)
        raise
    return save_changes(endpoint, fields)


@transaction.atomic
def endpoint_delete(*, endpoint):
    """Delete an endpoint and its call log; device callbacks calling it stop calling (the
    callback settings' foreign key is SET NULL).

    The log goes in set-based DELETEs (never loaded). The endpoint's open calls are locked
    first: a worker settling one of them either finished before (its attempt is deleted with the
    rest) or waits, then finds the call gone and logs nothing.
    """
    lock_existing(endpoint)
    calls = EndpointCall.objects.filter(endpoint=endpoint)
    calls.filter(status__in=[Status.PENDING, Status.SENDING]).update(
        status=Status.FAILED, next_attempt_at=None, last_error="the endpoint was deleted"
    )
    attempts = EndpointAttempt.objects.filter(call__endpoint=endpoint)
    attempts._raw_delete(attempts.db)
    calls._raw_delete(calls.db)
    endpoint.delete()

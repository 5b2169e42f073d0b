"""Calling an endpoint now (the API's /call and the console's test button): one logged attempt."""

import hashlib
import hmac

import pytest
from django.core import mail

from endpoints.models import EndpointAttempt, EndpointCall
from endpoints.services import endpoint_call_now
from tests.factories import DeviceFactory, EndpointFactory
from tests.worker import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_targets(settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True


def test_returns_the_targets_status_and_an_excerpt(receiver, enqueued):
    receiver.script(Reply(status=201, body=b'{"created": true}'))
    endpoint = EndpointFactory(
        config={"url": f"{receiver.url}/x/{{{{user}}}}", "method": "POST", "body_type": "json"}
    )
    device = DeviceFactory(owner=endpoint.owner)
    result = endpoint_call_now(endpoint=endpoint, payload={"v": 1}, device=device)

    assert (result.ok, result.status_code, result.error) == (True, 201, "")
    assert result.response_excerpt == '{"created": true}'
    [received] = receiver.requests
    assert received.path == f"/x/{endpoint.owner.username}"
    assert received.json() == {"v": 1}
    digest = hmac.new(endpoint.secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Signature"] == f"sha256={digest}"

    call = EndpointCall.objects.get()
    assert (call.status, call.attempts, call.device) == ("succeeded", 1, device)
    assert call == result.call
    attempt = EndpointAttempt.objects.get(call=call)
    assert (attempt.status_code, attempt.response_excerpt) == (201, '{"created": true}')
    assert enqueued == []


def test_failures_are_answered_not_retried(receiver, enqueued):
    receiver.script(default=503)
    endpoint = EndpointFactory(config={"url": receiver.url, "method": "POST"})
    result = endpoint_call_now(endpoint=endpoint, payload={"v": 1})
    assert (result.ok, result.status_code, result.error) == (
        False,
        503,
        "HTTP 503 Service Unavailable",
    )
    call = EndpointCall.objects.get()
    assert (call.status, call.attempts, call.device) == ("failed", 1, None)
    assert len(receiver.requests) == 1
    assert enqueued == []


def test_refused_targets_are_reported(settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False
    endpoint = EndpointFactory(config={"url": "http://169.254.169.254/", "method": "GET"})
    result = endpoint_call_now(endpoint=endpoint, payload=None)
    assert result.status_code is None
    assert result.error.startswith("refused to connect to 169.254.169.254")


def test_email_endpoint():
    endpoint = EndpointFactory(
        type="email", config={"recipient": "a@example.com", "subject": "t={{t}}", "body": "hi"}
    )
    result = endpoint_call_now(endpoint=endpoint, payload={"t": 3})
    assert (result.ok, result.status_code) == (True, None)
    assert [m.subject for m in mail.outbox] == ["t=3"]


def test_disabled_endpoint():
    endpoint = EndpointFactory(enabled=False)
    result = endpoint_call_now(endpoint=endpoint, payload={})
    assert (result.ok, result.error) == (False, "the endpoint is disabled")

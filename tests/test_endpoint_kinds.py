"""Each kind of endpoint: its configuration check and the request (or e-mail) it makes."""

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs

import pytest
import responses
from django.core import mail
from django.core.exceptions import ValidationError

from endpoints.kinds import TEMPLATES, config_errors, endpoint_templates
from endpoints.models import EndpointAttempt, EndpointCall
from endpoints.services import endpoint_call_attempt
from tests.factories import EndpointCallFactory, EndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_targets(settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True


def deliver(endpoint, payload=None, **call):
    """Record a call and run one delivery attempt as the worker would."""
    record = EndpointCallFactory(endpoint=endpoint, payload=payload, **call)
    status = endpoint_call_attempt(call_id=record.pk)
    record.refresh_from_db()
    return status, record


def http_endpoint(receiver, **config):
    config = {"url": f"{receiver.url}/hook", "method": "POST", "headers": [], **config}
    return EndpointFactory(config=config)


def assert_signed(received, endpoint):
    expected = hmac.new(endpoint.secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Signature"] == f"sha256={expected}"


class TestHttpRequest:
    def test_json_without_a_body_forwards_the_payload(self, receiver, enqueued):
        endpoint = http_endpoint(
            receiver,
            url=f"{receiver.url}/in/{{{{device}}}}?t={{{{temperature}}}}",
            headers=[
                {"key": "Authorization", "value": "Bearer {{token}}"},
                {"key": "X-User", "value": "{{user}}"},
                {"key": "X-Text", "value": "{{text}}"},
            ],
            body_type="json",
            body="",
        )
        payload = {"temperature": 21.5, "token": "abc\r\nX-Evil: 1", "text": "caf\u00e9"}
        status, call = deliver(endpoint, payload)

        assert status == EndpointCall.Status.SUCCEEDED
        [received] = receiver.requests
        assert received.method == "POST"
        assert received.path == f"/in/{call.device.identifier}?t=21.5"
        assert received.json() == payload
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["Authorization"] == "Bearer abc X-Evil: 1"
        assert "X-Evil" not in received.headers
        assert received.headers["X-User"] == endpoint.owner.username
        assert received.headers["X-Text"].encode("latin-1").decode() == "caf\u00e9"
        assert received.headers["X-Endpoint-Call"] == str(call.pk)
        assert_signed(received, endpoint)
        assert call.attempts == 1
        assert call.finished_at is not None
        assert call.next_attempt_at is None
        [attempt] = EndpointAttempt.objects.filter(call=call)
        assert (attempt.status_code, attempt.error, attempt.response_excerpt) == (200, "", "ok")

    def test_json_body_template_stays_valid_json(self, receiver, enqueued):
        endpoint = http_endpoint(
            receiver,
            body_type="json",
            body='{"val": {{temperature}}, "who": "{{name}}", "all": {{}}, "m": {{missing}}}',
        )
        payload = {"temperature": 3, "name": 'quote " and \\ backslash'}
        deliver(endpoint, payload)
        [received] = receiver.requests
        assert received.json() == {
            "val": 3,
            "who": 'quote " and \\ backslash',
            "all": payload,
            "m": None,
        }
        assert_signed(received, endpoint)

    def test_custom_body_with_a_json_content_type(self, receiver, enqueued):
        endpoint = http_endpoint(
            receiver,
            method="PUT",
            headers=[{"key": "Content-Type", "value": "application/json"}],
            body_type="custom",
            body='{\n  "val1": {{temperature}},\n  "val2": {{humidity}}\n}',
        )
        deliver(endpoint, {"temperature": 20, "humidity": {"rel": 40}})
        [received] = receiver.requests
        assert received.method == "PUT"
        assert received.json() == {"val1": 20, "val2": {"rel": 40}}

    def test_custom_text_body(self, receiver, enqueued):
        endpoint = http_endpoint(receiver, body_type="custom", body="t={{temperature}} {{name}}")
        deliver(endpoint, {"temperature": 20, "name": "a\nb"})
        [received] = receiver.requests
        assert received.body == b"t=20 a\nb"
        assert received.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert_signed(received, endpoint)

    def test_get_sends_no_body(self, receiver, enqueued):
        endpoint = http_endpoint(receiver, method="GET", url=f"{receiver.url}/q?v={{{{v}}}}")
        deliver(endpoint, {"v": "a b&c"})
        [received] = receiver.requests
        assert (received.method, received.path, received.body) == ("GET", "/q?v=a%20b%26c", b"")
        assert_signed(received, endpoint)

    @pytest.mark.parametrize(
        ("config", "fields"),
        [
            ({}, {"url"}),
            ({"url": "ftp://x.example/"}, {"url"}),
            ({"url": "http://x.example:http/"}, {"url"}),
            ({"url": "http://[::1/"}, {"url"}),
            ({"url": "https://{{host}}/x"}, {"url"}),
            ({"url": "https://x.example/", "method": "TRACE"}, {"method"}),
            ({"url": "https://x.example/", "headers": {"a": "b"}}, {"headers"}),
            (
                {"url": "https://x.example/", "headers": [{"key": "Bad Name", "value": "x"}]},
                {"headers"},
            ),
            (
                {"url": "https://x.example/", "headers": [{"key": "X", "value": "a\nb"}]},
                {"headers"},
            ),
            ({"url": "https://x.example/", "body_type": "xml"}, {"body_type"}),
            (
                {"url": "https://x.example/", "headers": [{"key": "X-Signature", "value": "x"}]},
                {"headers"},
            ),
            (
                {"url": "https://x.example/", "headers": [{"key": "content-length", "value": "1"}]},
                {"headers"},
            ),
            ({"url": "https://x.example/", "body_type": "json", "body": "{nope"}, {"body"}),
            ({"url": 5, "body": []}, {"url", "body"}),
        ],
    )
    def test_invalid_configurations(self, config, fields):
        errors = config_errors("http_request", config)
        assert set(errors) == fields
        assert all(isinstance(m, str) and m for messages in errors.values() for m in messages)

    def test_valid_configuration(self):
        config = {
            "url": "https://api.example.com/{{device}}?t={{t}}",
            "method": "post",
            "headers": [{"key": "Authorization", "value": "Bearer {{token}}"}],
            "body_type": "json",
            "body": '{"t": {{t}}, "s": "{{s}}"}',
        }
        assert config_errors("http_request", config) == {}


class TestTemplatesOfHttpRequests:
    @responses.activate
    def test_ifttt(self, enqueued):
        responses.post(
            "https://maker.ifttt.com/trigger/door%20open/with/key/k%2F1", body="Congrats"
        )
        endpoint = EndpointFactory(
            type="ifttt",
            config={
                "event": "door open",
                "key": "k/1",
                "value1": "{{temperature}}",
                "value2": "{{device}}",
                "value3": "{{}}",
            },
        )
        status, call = deliver(endpoint, {"temperature": 21.5})
        assert status == EndpointCall.Status.SUCCEEDED
        [sent] = responses.calls
        assert json.loads(sent.request.body) == {
            "value1": "21.5",
            "value2": call.device.identifier,
            "value3": '{"temperature":21.5}',
        }
        assert sent.request.headers["Content-Type"] == "application/json"
        assert EndpointAttempt.objects.get(call=call).response_excerpt == "Congrats"

    @responses.activate
    def test_telegram(self, enqueued):
        responses.post("https://api.telegram.org/bot123:AB-c_d/sendMessage", json={"ok": True})
        endpoint = EndpointFactory(
            type="telegram",
            config={"bot_token": "123:AB-c_d", "chat_id": "-100200", "text": "T is {{t}} 'C"},
        )
        status, _ = deliver(endpoint, {"t": 30})
        assert status == EndpointCall.Status.SUCCEEDED
        [sent] = responses.calls
        assert json.loads(sent.request.body) == {"chat_id": "-100200", "text": "T is 30 'C"}

    @responses.activate
    def test_telegram_400_fails_at_once(self, enqueued):
        responses.post(
            "https://api.telegram.org/bot1:x/sendMessage",
            status=400,
            json={"ok": False, "description": "Bad Request: chat not found"},
        )
        endpoint = EndpointFactory(
            type="telegram", config={"bot_token": "1:x", "chat_id": "5", "text": "hi"}
        )
        status, call = deliver(endpoint, {})
        assert status == EndpointCall.Status.FAILED
        assert call.last_error == "HTTP 400 Bad Request"
        assert "chat not found" in EndpointAttempt.objects.get(call=call).response_excerpt
        assert enqueued == []

    @responses.activate
    def test_twilio_sms(self, enqueued):
        sid = "AC" + "0" * 32
        responses.post(
            f"https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json",
            status=201,
            json={"sid": "SM1"},
        )
        endpoint = EndpointFactory(
            type="sms",
            config={
                "account_sid": sid,
                "auth_token": "tok",
                "from": "+15005550006",
                "to": "+34600000000",
                "body": "Temp {{t}} & rising",
            },
        )
        status, _ = deliver(endpoint, {"t": 40})
        assert status == EndpointCall.Status.SUCCEEDED
        [sent] = responses.calls
        assert sent.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        auth = base64.b64decode(sent.request.headers["Authorization"].removeprefix("Basic "))
        assert auth == f"{sid}:tok".encode()
        assert parse_qs(sent.request.body.decode()) == {
            "To": ["+34600000000"],
            "From": ["+15005550006"],
            "Body": ["Temp 40 & rising"],
        }

    def test_http_device(self, receiver, enqueued):
        url = f"{receiver.url}/v3/users/bob/devices/sensor/callback/data"
        endpoint = EndpointFactory(type="http_device", config={"url": url, "token": "jwt.x.y"})
        status, _ = deliver(endpoint, {"temperature": 1, "ok": True})
        assert status == EndpointCall.Status.SUCCEEDED
        [received] = receiver.requests
        assert received.path == "/v3/users/bob/devices/sensor/callback/data"
        assert received.headers["Authorization"] == "Bearer jwt.x.y"
        assert received.json() == {"temperature": 1, "ok": True}
        assert_signed(received, endpoint)

    @pytest.mark.parametrize(
        ("type_", "config", "fields"),
        [
            ("ifttt", {}, {"event", "key"}),
            ("telegram", {"bot_token": "nope", "chat_id": "1", "text": "x"}, {"bot_token"}),
            ("telegram", {}, {"bot_token", "chat_id", "text"}),
            (
                "sms",
                {"account_sid": "AC/../x"},
                {"account_sid", "auth_token", "from", "to", "body"},
            ),
            ("http_device", {"url": "https://x.example/cb"}, {"token"}),
            ("http_device", {"url": "x.example/cb", "token": "t"}, {"url"}),
            ("email", {"recipient": "nobody"}, {"recipient"}),
            (
                "email",
                {"recipient": "a@b.example", "reply_to": "x", "body_type": "md"},
                {"reply_to", "body_type"},
            ),
            ("nope", {}, {"type"}),
        ],
    )
    def test_invalid_configurations(self, type_, config, fields):
        assert set(config_errors(type_, config)) == fields

    def test_model_clean_reports_config_errors(self):
        endpoint = EndpointFactory.build(type="telegram", config={"chat_id": "1"})
        with pytest.raises(ValidationError) as caught:
            endpoint.clean()
        assert any("bot_token" in m for m in caught.value.message_dict["config"])


class TestEmail:
    def test_text_email(self, enqueued):
        endpoint = EndpointFactory(
            type="email",
            config={
                "recipient": "ops@example.com, boss@example.com",
                "reply_to": "noreply@example.com",
                "subject": "{{device}}: {{temperature}}\r\nBcc: evil@example.com",
                "body": "Now {{temperature}} <b>{{name}}</b>\n{{}}",
                "body_type": "text",
            },
        )
        status, call = deliver(endpoint, {"temperature": 21.5, "name": "x"})
        assert status == EndpointCall.Status.SUCCEEDED
        [message] = mail.outbox
        assert message.to == ["ops@example.com", "boss@example.com"]
        assert message.reply_to == ["noreply@example.com"]
        assert message.subject == f"{call.device.identifier}: 21.5 Bcc: evil@example.com"
        assert message.bcc == []
        first, second = message.body.split("\n")
        assert first == "Now 21.5 <b>x</b>"
        assert json.loads(second) == {"temperature": 21.5, "name": "x"}
        attempt = EndpointAttempt.objects.get(call=call)
        assert (attempt.status_code, attempt.error) == (None, "")

    def test_html_email_escapes_values_and_has_a_text_part(self, enqueued):
        endpoint = EndpointFactory(
            type="email",
            config={
                "recipient": "ops@example.com",
                "subject": "Alert",
                "body": "<p>The temperature is {{temperature}} ({{note}})</p>",
                "body_type": "html",
            },
        )
        deliver(endpoint, {"temperature": 30, "note": "<script>x</script>"})
        [message] = mail.outbox
        html, mimetype = message.alternatives[0]
        assert mimetype == "text/html"
        assert html == "<p>The temperature is 30 (&lt;script&gt;x&lt;/script&gt;)</p>"
        assert message.body == "The temperature is 30 (&lt;script&gt;x&lt;/script&gt;)"

    def test_smtp_failure_is_retried(self, enqueued, settings):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1
        endpoint = EndpointFactory(type="email", config={"recipient": "a@example.com"})
        status, call = deliver(endpoint, {})
        assert status == EndpointCall.Status.PENDING
        assert call.last_error.startswith("e-mail not sent:")


def test_templates_are_valid_skeletons():
    templates = endpoint_templates()
    assert [t["id"] for t in templates] == [t["id"] for t in TEMPLATES]
    assert len({t["id"] for t in templates}) == len(templates)
    assert {t["type"] for t in templates} == set(
        EndpointCall._meta.apps.get_model("endpoints", "Endpoint").Type.values
    )
    for template in templates:
        assert set(template) == {"id", "name", "type", "description", "config"}
        assert isinstance(template["config"], dict)
    templates[0]["config"]["url"] = "changed"
    assert endpoint_templates()[0]["config"]["url"] == ""

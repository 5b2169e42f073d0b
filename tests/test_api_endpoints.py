"""Endpoints through the REST API (SPEC 5): create, list, read, update, delete, the templates,
calling an endpoint now and its call log; who may (SPEC 6); each validation rule a 400 naming
the field."""

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import CallbackSettings
from endpoints import services
from endpoints.kinds import TEMPLATES
from endpoints.models import Endpoint, EndpointAttempt, EndpointCall
from endpoints.net import Outcome
from tests.api_checks import assert_empty_ok, assert_json_ok
from tests.factories import (
    DeviceFactory,
    EndpointAttemptFactory,
    EndpointCallFactory,
    EndpointFactory,
    UserFactory,
    callback_configure,
)
from tests.worker import Reply

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"  # UserFactory's
FIELDS = {
    "endpoint",
    "name",
    "description",
    "enabled",
    "type",
    "config",
    "secret",
    "created",
    "modified",
}


def oauth_token(client, username):
    response = client.post(
        "/oauth/token",
        f"grant_type=password&username={username}&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def api(client, owner):
    """The owner's client, with an OAuth access token as Thinger.io clients get one."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {oauth_token(client, owner.username)}"
    return client


def send(client, method, path, body=None, **extra):
    data = b"" if body is None else json.dumps(body)
    return client.generic(method, path, data, content_type="application/json", **extra)


def create(api, body, user="alice"):
    return send(api, "POST", f"/v1/users/{user}/endpoints", body)


def update(api, endpoint, body, user="alice"):
    return send(api, "PUT", f"/v1/users/{user}/endpoints/{endpoint}", body)


def call(api, endpoint, body=b"", user="alice", content_type="application/json"):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    path = f"/v1/users/{user}/endpoints/{endpoint}/call"
    return api.generic("POST", path, data, content_type=content_type)


def assert_field_error(response, field, assert_json_error):
    message = assert_json_error(response, 400)
    assert message.startswith(f"{field}:"), message
    return message


# The reference's examples (Endpoint_Create).
HTTP_REQUEST = {
    "endpoint": "http_request",
    "name": "HTTP",
    "description": "HTTP Request",
    "enabled": True,
    "type": "http_request",
    "config": {
        "url": "https://api.acme.com/sensor",
        "method": "POST",
        "headers": [{"key": "Authorization", "value": "Bearer xyz"}],
        "body_type": "json",
        "body": "",
    },
}
HTTP_REQUEST_CUSTOM = {
    **HTTP_REQUEST,
    "config": {
        "url": "https://api.acme.com/sensor",
        "method": "POST",
        "headers": [{"key": "Content-Type", "value": "application/json"}],
        "body_type": "custom",
        "body": '{\n    "val1" : {{temperature}},\n    "val2": {{humidity}}\n}',
    },
}
EMAIL = {
    "endpoint": "email_endpoint",
    "name": "Email",
    "description": "Email Endpoint",
    "enabled": True,
    "type": "email",
    "config": {
        "body": "<p>The current temperature and humidity are: {{temperature}}, {{humidity}}</p>",
        "body_type": "html",
        "recipient": "alvarolb@thinger.io",
        "reply_to": "alvarolb@thinger.io",
        "subject": "Endpoint Testing",
    },
}
# A valid configuration of every type.
CONFIGS = {
    "http_request": HTTP_REQUEST["config"],
    "email": EMAIL["config"],
    "ifttt": {"event": "door_open", "key": "abc123", "value1": "{{temperature}}"},
    "telegram": {"bot_token": "123456:ABC-def", "chat_id": "42", "text": "t={{temperature}}"},
    "sms": {
        "account_sid": "AC123",
        "auth_token": "secret",
        "from": "+15550001",
        "to": "+15550002",
        "body": "t={{temperature}}",
    },
    "http_device": {
        "url": "https://iot.example.com/v3/users/bob/devices/d1/callback/data",
        "token": "eyJhbGciOi.x.y",
    },
}


def endpoint_body(type_, identifier="e1", **fields):
    return {"endpoint": identifier, "type": type_, "config": dict(CONFIGS[type_]), **fields}


# --- Create, list, read, update, delete ---------------------------------------------------------


@pytest.mark.parametrize("example", [HTTP_REQUEST, HTTP_REQUEST_CUSTOM, EMAIL])
def test_create_answers_200_with_the_endpoint(api, owner, example):
    body = assert_json_ok(create(api, example))

    assert set(body) == FIELDS
    assert {key: body[key] for key in example} == example
    assert isinstance(body["created"], int) and isinstance(body["modified"], int)
    stored = Endpoint.objects.get(owner=owner, identifier=example["endpoint"])
    assert (stored.type, stored.config, stored.name) == (
        example["type"],
        example["config"],
        example["name"],
    )


@pytest.mark.parametrize("type_", sorted(CONFIGS))
def test_every_type_can_be_created(api, owner, type_):
    body = assert_json_ok(create(api, endpoint_body(type_)))
    assert (body["type"], body["config"]) == (type_, CONFIGS[type_])
    assert Endpoint.objects.get(owner=owner, identifier="e1").type == type_


def test_create_needs_only_id_type_and_config(api):
    body = assert_json_ok(create(api, endpoint_body("ifttt")))
    assert (body["name"], body["description"], body["enabled"]) == ("", "", True)


def test_list_is_every_endpoint_of_the_user_by_id(api, owner):
    EndpointFactory(owner=owner, identifier="b", name="Bee")
    EndpointFactory(owner=owner, identifier="a", type="email", config=CONFIGS["email"])
    EndpointFactory(identifier="other")  # someone else's

    body = assert_json_ok(api.get("/v1/users/alice/endpoints"))

    assert [item["endpoint"] for item in body] == ["a", "b"]
    assert all(set(item) == FIELDS for item in body)
    assert body[0]["config"] == CONFIGS["email"]


def test_list_is_empty_without_endpoints(api):
    assert assert_json_ok(api.get("/v1/users/alice/endpoints")) == []


def test_list_pages_with_index_and_count_until_a_page_is_short(api, owner):
    for n in range(5):
        EndpointFactory(owner=owner, identifier=f"e{n}")
    seen, index = [], 0
    while True:  # as Thinger.io's n8n node pages: index += len(page) while the page is full
        page = assert_json_ok(api.get(f"/v1/users/alice/endpoints?count=2&index={index}"))
        seen += [item["endpoint"] for item in page]
        index += len(page)
        if len(page) < 2:
            break
    assert seen == ["e0", "e1", "e2", "e3", "e4"]
    # Empty values are ignored.
    assert len(assert_json_ok(api.get("/v1/users/alice/endpoints?count=&index=&name="))) == 5


@pytest.mark.parametrize(("query", "field"), [("count=0", "count"), ("index=x", "index")])
def test_list_refuses_bad_paging(api, query, field, assert_json_error):
    response = api.get(f"/v1/users/alice/endpoints?{query}")
    assert_field_error(response, field, assert_json_error)


def test_list_filters_by_name_id_and_type(api, owner):
    EndpointFactory(owner=owner, identifier="door", name="Front door alarm")
    EndpointFactory(owner=owner, identifier="mailer", type="email", config=CONFIGS["email"])
    EndpointFactory(owner=owner, identifier="window", name="Back")

    def ids(query):
        return [
            i["endpoint"] for i in assert_json_ok(api.get(f"/v1/users/alice/endpoints?{query}"))
        ]

    assert ids("name=ALARM") == ["door"]
    assert ids("name=wind") == ["window"]
    assert ids("id=o") == ["door", "window"]
    assert ids("type=email") == ["mailer"]


def test_read_answers_the_endpoint(api, owner):
    assert_json_ok(create(api, HTTP_REQUEST))
    body = assert_json_ok(api.get("/v1/users/alice/endpoints/http_request"))
    assert set(body) == FIELDS
    assert {key: body[key] for key in HTTP_REQUEST} == HTTP_REQUEST
    # The owner reads the secret that signs the requests, to verify X-Signature at the receiver.
    assert body["secret"] == Endpoint.objects.get(identifier="http_request").secret


def test_update_is_partial(api, owner):
    assert_json_ok(create(api, HTTP_REQUEST))

    body = assert_json_ok(update(api, "http_request", {"name": "Renamed", "enabled": False}))

    assert (body["name"], body["enabled"]) == ("Renamed", False)
    assert (body["description"], body["config"]) == (
        HTTP_REQUEST["description"],
        HTTP_REQUEST["config"],
    )
    stored = Endpoint.objects.get(owner=owner, identifier="http_request")
    assert (stored.name, stored.enabled, stored.type) == ("Renamed", False, "http_request")


def test_update_replaces_the_whole_config(api, owner):
    assert_json_ok(create(api, HTTP_REQUEST))
    new_config = {"url": "https://other.example.com/x", "method": "PUT"}

    body = assert_json_ok(update(api, "http_request", {"config": new_config}))

    assert body["config"] == new_config
    assert Endpoint.objects.get(identifier="http_request").config == new_config


def test_update_changes_the_type_with_its_config(api, owner):
    assert_json_ok(create(api, HTTP_REQUEST))
    # The reference's "Full Update" example, with the path's id in the body.
    full = {**EMAIL, "endpoint": "http_request"}

    body = assert_json_ok(update(api, "http_request", full))

    assert (body["type"], body["config"]) == ("email", EMAIL["config"])


def test_update_of_the_type_alone_checks_the_config_it_would_have(api, owner, assert_json_error):
    assert_json_ok(create(api, HTTP_REQUEST))
    response = update(api, "http_request", {"type": "email"})
    assert_field_error(response, "config.recipient", assert_json_error)
    assert Endpoint.objects.get(identifier="http_request").type == "http_request"


def test_update_cannot_change_the_id(api, assert_json_error):
    assert_json_ok(create(api, HTTP_REQUEST))
    response = update(api, "http_request", {"endpoint": "renamed"})
    assert_field_error(response, "endpoint", assert_json_error)
    assert Endpoint.objects.filter(identifier="http_request").exists()


def test_update_with_an_invalid_config_changes_nothing(api, assert_json_error):
    assert_json_ok(create(api, HTTP_REQUEST))
    response = update(api, "http_request", {"name": "New", "config": {"url": ""}})
    assert_field_error(response, "config.url", assert_json_error)
    stored = Endpoint.objects.get(identifier="http_request")
    assert (stored.name, stored.config) == ("HTTP", HTTP_REQUEST["config"])


def test_delete_answers_an_empty_200_and_removes_the_call_log(api, owner):
    endpoint = EndpointFactory(owner=owner, identifier="gone")
    kept = EndpointFactory(owner=owner, identifier="kept")
    for target in (endpoint, kept):
        done = EndpointCallFactory(endpoint=target, status="succeeded")
        EndpointAttemptFactory(call=done)
        EndpointCallFactory(endpoint=target)  # pending

    assert_empty_ok(api.delete("/v1/users/alice/endpoints/gone"))

    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert not EndpointCall.objects.filter(endpoint_id=endpoint.pk).exists()
    assert EndpointAttempt.objects.filter(call__endpoint=kept).count() == 1
    assert EndpointCall.objects.filter(endpoint=kept).count() == 2
    assert api.get("/v1/users/alice/endpoints/gone").status_code == 404


def test_delete_switches_off_callbacks_calling_the_endpoint(api, owner):
    endpoint = EndpointFactory(owner=owner, identifier="gone")
    device = DeviceFactory(owner=owner)
    callback_configure(device, call_endpoint=endpoint, timeout=7)

    assert_empty_ok(api.delete("/v1/users/alice/endpoints/gone"))

    settings_ = CallbackSettings.objects.get(device=device)
    assert settings_.call_endpoint is None
    assert settings_.timeout == 7


# --- Validation: each rule a 400 naming the field -------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": None}, "endpoint"),
        ({"endpoint": "bad id"}, "endpoint"),
        ({"endpoint": "x" * 33}, "endpoint"),
        ({"endpoint": 12}, "endpoint"),
        ({"type": None}, "type"),
        ({"type": 1}, "type"),
        ({"type": "mqtt"}, "type"),
        ({"type": ""}, "type"),
        ({"config": None}, "config"),
        ({"config": ["url"]}, "config"),
        ({"config": "https://example.com"}, "config"),
        ({"name": "x" * 256}, "name"),
        ({"name": 5}, "name"),
        ({"description": "x" * 256}, "description"),
        ({"enabled": "true"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"product": "p1"}, "product"),
    ],
)
def test_create_refuses_bad_fields(api, change, field, assert_json_error):
    body = {**endpoint_body("http_request"), **change}
    body = {key: value for key, value in body.items() if value is not None}
    assert_field_error(create(api, body), field, assert_json_error)
    assert not Endpoint.objects.exists()


def test_an_unsupported_type_names_those_there_are(api, assert_json_error):
    message = assert_field_error(
        create(api, {**endpoint_body("http_request"), "type": "thinger_endpoint"}),
        "type",
        assert_json_error,
    )
    assert "thinger_endpoint" in message
    assert all(type_ in message for type_ in Endpoint.Type.values)


def test_a_duplicate_id_is_400(api, assert_json_error):
    assert_json_ok(create(api, HTTP_REQUEST))
    message = assert_field_error(create(api, HTTP_REQUEST), "endpoint", assert_json_error)
    assert "already" in message
    assert Endpoint.objects.count() == 1


def test_the_same_id_is_fine_for_another_user(api, owner):
    EndpointFactory(identifier="http_request")
    assert_json_ok(create(api, HTTP_REQUEST))


def test_a_number_too_large_for_json_is_400(api, assert_json_error):
    body = json.dumps(endpoint_body("http_request")).replace('"POST"', '"POST", "n": 1e400')
    response = api.generic(
        "POST", "/v1/users/alice/endpoints", body, content_type="application/json"
    )
    assert_field_error(response, "config", assert_json_error)


@pytest.mark.parametrize(
    ("type_", "config_change", "field"),
    [
        ("http_request", {"url": None}, "config.url"),
        ("http_request", {"url": "ftp://example.com/x"}, "config.url"),
        ("http_request", {"url": "https://"}, "config.url"),
        ("http_request", {"url": "http://{{host}}/x"}, "config.url"),
        ("http_request", {"url": 5}, "config.url"),
        ("http_request", {"method": "FETCH"}, "config.method"),
        ("http_request", {"headers": {"a": "b"}}, "config.headers"),
        ("http_request", {"headers": [{"key": "bad header", "value": "x"}]}, "config.headers"),
        ("http_request", {"headers": [{"key": "Host", "value": "x"}]}, "config.headers"),
        ("http_request", {"headers": [{"key": "X-A", "value": "a\r\nb"}]}, "config.headers"),
        ("http_request", {"body_type": "xml"}, "config.body_type"),
        ("http_request", {"body": "{not json"}, "config.body"),
        ("email", {"recipient": None}, "config.recipient"),
        ("email", {"recipient": "not-an-address"}, "config.recipient"),
        ("email", {"reply_to": "a@example.com, nope"}, "config.reply_to"),
        ("email", {"body_type": "markdown"}, "config.body_type"),
        ("email", {"subject": ["x"]}, "config.subject"),
        ("ifttt", {"event": None}, "config.event"),
        ("ifttt", {"key": " "}, "config.key"),
        ("ifttt", {"value2": 3}, "config.value2"),
        ("telegram", {"bot_token": "not a token"}, "config.bot_token"),
        ("telegram", {"chat_id": None}, "config.chat_id"),
        ("telegram", {"text": ""}, "config.text"),
        ("sms", {"account_sid": "AC-1"}, "config.account_sid"),
        ("sms", {"auth_token": None}, "config.auth_token"),
        ("sms", {"from": None}, "config.from"),
        ("sms", {"to": ""}, "config.to"),
        ("sms", {"body": None}, "config.body"),
        ("http_device", {"url": None}, "config.url"),
        ("http_device", {"url": "file:///etc/passwd"}, "config.url"),
        ("http_device", {"token": None}, "config.token"),
    ],
)
def test_config_rules_per_type(api, owner, type_, config_change, field, assert_json_error):
    config = {**CONFIGS[type_], **config_change}
    config = {key: value for key, value in config.items() if value is not None}
    body = {"endpoint": "e1", "type": type_, "config": config}

    assert_field_error(create(api, body), field, assert_json_error)
    assert not Endpoint.objects.exists()

    EndpointFactory(owner=owner, identifier="e2", type=type_, config=CONFIGS[type_])
    assert_field_error(update(api, "e2", {"config": config}), field, assert_json_error)
    assert Endpoint.objects.get(identifier="e2").config == CONFIGS[type_]


# --- Who may -----------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/v1/users/alice/endpoints"),
    ("POST", "/v1/users/alice/endpoints"),
    ("GET", "/v1/users/alice/endpoints/e1"),
    ("PUT", "/v1/users/alice/endpoints/e1"),
    ("DELETE", "/v1/users/alice/endpoints/e1"),
    ("POST", "/v1/users/alice/endpoints/e1/call"),
    ("GET", "/v1/users/alice/endpoints/e1/calls"),
]


@pytest.fixture
def alices_endpoint(owner):
    return EndpointFactory(owner=owner, identifier="e1")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_credentials_is_401(client, alices_endpoint, method, path, assert_json_error):
    assert_json_error(send(client, method, path, {"name": "x"}), 401)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_another_users_endpoints_are_403(client, alices_endpoint, method, path, assert_json_error):
    bob = UserFactory(username="bob")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {oauth_token(client, bob.username)}"}

    assert_json_error(send(client, method, path, {"name": "x"}, **auth), 403)

    assert Endpoint.objects.get(pk=alices_endpoint.pk).name == alices_endpoint.name
    assert not EndpointCall.objects.exists()


def test_staff_may_read_but_not_change_or_call(client, alices_endpoint, assert_json_error):
    EndpointCallFactory(endpoint=alices_endpoint)
    client.force_login(UserFactory(username="staff", is_staff=True))

    assert [e["endpoint"] for e in assert_json_ok(client.get("/v1/users/alice/endpoints"))] == [
        "e1"
    ]
    assert assert_json_ok(client.get("/v1/users/alice/endpoints/e1"))["endpoint"] == "e1"
    assert len(assert_json_ok(client.get("/v1/users/alice/endpoints/e1/calls"))) == 1
    for method, path in ROUTES:
        if method != "GET":
            assert_json_error(send(client, method, path, {"name": "x"}), 403)
    assert Endpoint.objects.filter(pk=alices_endpoint.pk).exists()
    assert EndpointCall.objects.count() == 1


def test_the_console_session_works_too(client, owner, alices_endpoint):
    client.force_login(owner)
    assert assert_json_ok(client.get("/v1/users/alice/endpoints/e1"))["endpoint"] == "e1"
    assert assert_json_ok(update(client, "e1", {"name": "From the console"}))["name"] == (
        "From the console"
    )


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if "/e1" in r[1]])
def test_an_unknown_endpoint_is_404(api, method, path, assert_json_error):
    message = assert_json_error(send(api, method, path.replace("/e1", "/nope"), {}), 404)
    assert "nope" in message


def test_an_invalid_id_in_the_path_is_404(api, assert_json_error):
    assert_json_error(api.get("/v1/users/alice/endpoints/bad.id"), 404)


def test_staff_reading_an_unknown_user_is_404(client, assert_json_error):
    client.force_login(UserFactory(username="staff", is_staff=True))
    assert_json_error(client.get("/v1/users/nobody/endpoints"), 404)


def test_a_scoped_token_allows_only_its_actions(api, client, alices_endpoint, assert_json_error):
    created = send(
        api,
        "POST",
        "/v1/users/alice/tokens",
        {
            "token": "reader",
            "name": "Reader",
            "enabled": True,
            "allow": {"Endpoint": {"*": ["ListEndpoints", "ReadEndpointConfig"]}},
        },
    )
    scoped = {"HTTP_AUTHORIZATION": f"Bearer {assert_json_ok(created)['access_token']}"}
    del client.defaults["HTTP_AUTHORIZATION"]

    assert client.get("/v1/users/alice/endpoints", **scoped).status_code == 200
    assert client.get("/v1/users/alice/endpoints/e1", **scoped).status_code == 200
    for action, (method, path) in [
        ("CreateEndpoint", ROUTES[1]),
        ("UpdateEndpoint", ROUTES[3]),
        ("DeleteEndpoint", ROUTES[4]),
        ("CallEndpoint", ROUTES[5]),
        ("ReadEndpointCalls", ROUTES[6]),
    ]:
        message = assert_json_error(send(client, method, path, {"name": "x"}, **scoped), 403)
        assert action in message


# --- Templates ---------------------------------------------------------------------------------


def test_templates_are_listed_for_any_user(client, assert_json_error):
    assert_json_error(client.get("/v1/endpoints/templates"), 401)
    client.force_login(UserFactory(username="anyone"))

    body = assert_json_ok(client.get("/v1/endpoints/templates"))

    assert [t["id"] for t in body] == [t["id"] for t in TEMPLATES]
    assert all(set(t) == {"id", "name", "type", "description", "config"} for t in body)
    assert {t["type"] for t in body} == set(Endpoint.Type.values)


def test_a_template_is_read_by_its_id(client, assert_json_error):
    client.force_login(UserFactory(username="anyone"))

    body = assert_json_ok(client.get("/v1/endpoints/templates/telegram"))

    assert body["type"] == "telegram"
    assert set(body["config"]) == {"bot_token", "chat_id", "text"}
    assert_json_error(client.get("/v1/endpoints/templates/nope"), 404)


def test_a_filled_in_template_creates_an_endpoint(api):
    template = assert_json_ok(api.get("/v1/endpoints/templates/ifttt"))
    config = {**template["config"], "event": "door_open", "key": "k"}

    body = assert_json_ok(
        create(api, {"endpoint": "door", "type": template["type"], "config": config})
    )
    assert body["config"]["event"] == "door_open"


# --- Calling now ---------------------------------------------------------------------------------


@pytest.fixture
def local_targets(settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True


def hook(owner, receiver, identifier="hook", **fields):
    config = {"url": f"{receiver.url}/hook", "method": "POST", "body_type": "json"}
    return EndpointFactory(owner=owner, identifier=identifier, config=config, **fields)


def test_call_returns_the_targets_status_and_signs_the_body(
    api, owner, receiver, local_targets, enqueued
):
    receiver.script(Reply(status=201, body=b'{"stored": true}'))
    endpoint = hook(owner, receiver)

    body = assert_json_ok(call(api, "hook", {"temperature": 21.5}))

    assert set(body) == {"ok", "status", "response", "failure", "duration_ms", "call"}
    assert (body["ok"], body["status"], body["response"], body["failure"]) == (
        True,
        201,
        '{"stored": true}',
        None,
    )
    assert isinstance(body["duration_ms"], int)
    [received] = receiver.requests
    assert (received.method, received.path) == ("POST", "/hook")
    assert received.json() == {"temperature": 21.5}
    digest = hmac.new(endpoint.secret.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Signature"] == f"sha256={digest}"
    logged = EndpointCall.objects.get()
    assert (logged.pk, logged.status, logged.payload, logged.device) == (
        body["call"],
        "succeeded",
        {"temperature": 21.5},
        None,
    )
    assert enqueued == []  # once, now: never handed to a worker


def test_a_failing_target_is_reported_in_a_200(api, owner, receiver, local_targets, enqueued):
    receiver.script(Reply(status=500, body=b"boom"))
    hook(owner, receiver)

    body = assert_json_ok(call(api, "hook", {"v": 1}))

    assert (body["ok"], body["status"], body["response"]) == (False, 500, "boom")
    assert body["failure"] == "HTTP 500 Internal Server Error"
    assert len(receiver.requests) == 1  # no retries
    assert EndpointCall.objects.get().status == "failed"
    assert enqueued == []


@pytest.mark.parametrize(
    ("raw", "payload"),
    [(b"", None), (b"  \n", None), (b'"hello"', "hello"), (b"[1, 2]", [1, 2]), (b"3.5", 3.5)],
)
def test_call_data_is_any_json_and_empty_is_null(api, owner, receiver, local_targets, raw, payload):
    hook(owner, receiver)

    assert assert_json_ok(call(api, "hook", raw))["ok"] is True

    assert json.loads(receiver.requests[0].body) == payload
    assert EndpointCall.objects.get().payload == payload


def test_call_data_does_not_need_a_json_content_type(api, owner, receiver, local_targets):
    hook(owner, receiver)
    assert assert_json_ok(call(api, "hook", b'{"a": 1}', content_type="text/plain"))["ok"]
    assert receiver.requests[0].json() == {"a": 1}


@pytest.mark.parametrize("raw", [b"{not json", b"NaN", b'{"v": 1e400}'])
def test_a_body_that_is_not_json_is_400(
    api, owner, receiver, local_targets, raw, assert_json_error
):
    hook(owner, receiver)
    assert "JSON" in assert_json_error(call(api, "hook", raw), 400)
    assert receiver.requests == []
    assert not EndpointCall.objects.exists()


def test_a_body_larger_than_a_callbacks_is_413(
    api, owner, receiver, local_targets, settings, assert_json_error
):
    settings.CALLBACK_MAX_BYTES = 100
    hook(owner, receiver)
    assert_json_error(call(api, "hook", {"x": "y" * 200}), 413)
    assert receiver.requests == []


def test_private_addresses_are_refused_unless_allowed(api, owner, receiver, settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False
    hook(owner, receiver)

    body = assert_json_ok(call(api, "hook", {"v": 1}))

    assert (body["ok"], body["status"]) == (False, None)
    assert body["failure"].startswith("refused to connect to 127.0.0.1")
    assert "ENDPOINTS_ALLOW_PRIVATE_NETWORKS" in body["failure"]
    assert receiver.requests == []
    assert EndpointCall.objects.get().last_error == body["failure"]


def test_a_disabled_endpoint_is_not_called(api, owner, receiver, local_targets):
    hook(owner, receiver, enabled=False)
    body = assert_json_ok(call(api, "hook", {"v": 1}))
    assert (body["ok"], body["failure"]) == (False, "the endpoint is disabled")
    assert receiver.requests == []


def test_an_email_endpoint_has_no_status(api, owner):
    EndpointFactory(owner=owner, identifier="mail", type="email", config=EMAIL["config"])

    body = assert_json_ok(call(api, "mail", {"temperature": 20, "humidity": 40}))

    assert (body["ok"], body["status"], body["failure"]) == (True, None, None)
    [message] = mail.outbox
    assert message.to == ["alvarolb@thinger.io"]
    assert "20, 40" in message.alternatives[0][0]


# --- The call log --------------------------------------------------------------------------------


def test_the_call_log_is_newest_first_with_attempts(api, owner):
    endpoint = EndpointFactory(owner=owner, identifier="e1")
    device = DeviceFactory(owner=owner, identifier="sensor")
    now = timezone.now()
    old = EndpointCallFactory(endpoint=endpoint, device=device, status="succeeded", ts=1000)
    EndpointCall.objects.filter(pk=old.pk).update(
        created=now - timedelta(minutes=5), finished_at=now - timedelta(minutes=4)
    )
    EndpointAttemptFactory(
        call=old, started_at=now - timedelta(minutes=5), status_code=503, error="HTTP 503"
    )
    EndpointAttemptFactory(
        call=old, started_at=now - timedelta(minutes=4), status_code=200, duration_ms=7
    )
    pending = EndpointCallFactory(
        endpoint=endpoint, device=None, payload=None, next_attempt_at=now, last_error="HTTP 502"
    )
    EndpointCallFactory()  # another endpoint's

    body = assert_json_ok(api.get("/v1/users/alice/endpoints/e1/calls"))

    assert [c["call"] for c in body] == [pending.pk, old.pk]
    first, second = body
    assert first == {
        "call": pending.pk,
        "device": None,
        "payload": None,
        "ts": pending.ts,
        "created": int(EndpointCall.objects.get(pk=pending.pk).created.timestamp() * 1000),
        "state": "pending",
        "next_attempt": int(now.timestamp() * 1000),
        "finished": None,
        "failure": "HTTP 502",
        "attempts": [],
    }
    assert (second["device"], second["state"], second["failure"], second["ts"]) == (
        "sensor",
        "succeeded",
        None,
        1000,
    )
    assert second["payload"] == {"temperature": 21.5}
    assert second["next_attempt"] is None
    assert second["finished"] == int((now - timedelta(minutes=4)).timestamp() * 1000)
    assert second["attempts"] == [
        {
            "started": int((now - timedelta(minutes=4)).timestamp() * 1000),
            "duration_ms": 7,
            "status": 200,
            "failure": None,
            "response": "",
        },
        {
            "started": int((now - timedelta(minutes=5)).timestamp() * 1000),
            "duration_ms": 12,
            "status": 503,
            "failure": "HTTP 503",
            "response": "",
        },
    ]


def test_the_call_log_shows_calls_made_now(api, owner, receiver, local_targets):
    hook(owner, receiver)
    made = assert_json_ok(call(api, "hook", {"v": 1}))

    [logged] = assert_json_ok(api.get("/v1/users/alice/endpoints/hook/calls"))

    assert (logged["call"], logged["state"], logged["payload"]) == (
        made["call"],
        "succeeded",
        {"v": 1},
    )
    [attempt] = logged["attempts"]
    assert (attempt["status"], attempt["response"]) == (200, "ok")


def test_the_call_log_pages_with_index_and_count(api, owner):
    endpoint = EndpointFactory(owner=owner, identifier="e1")
    calls = [EndpointCallFactory(endpoint=endpoint) for _ in range(5)]
    newest_first = [c.pk for c in sorted(calls, key=lambda c: (c.created, c.pk), reverse=True)]

    def page(query):
        response = api.get(f"/v1/users/alice/endpoints/e1/calls?{query}")
        return [c["call"] for c in assert_json_ok(response)]

    assert page("") == newest_first
    assert page("count=2") == newest_first[:2]
    assert page("count=2&index=2") == newest_first[2:4]
    assert page("count=2&index=4") == newest_first[4:]
    assert page("index=9") == []


@pytest.mark.parametrize(
    ("query", "field"), [("count=1001", "count"), ("count=0", "count"), ("index=-1", "index")]
)
def test_the_call_log_refuses_bad_paging(api, owner, query, field, assert_json_error):
    EndpointFactory(owner=owner, identifier="e1")
    response = api.get(f"/v1/users/alice/endpoints/e1/calls?{query}")
    assert_field_error(response, field, assert_json_error)


def test_a_page_of_the_call_log_costs_the_same_queries_whatever_its_size(api, owner):
    endpoint = EndpointFactory(owner=owner, identifier="e1")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert_json_ok(api.get("/v1/users/alice/endpoints/e1/calls"))
        return len(captured)

    for _ in range(2):
        EndpointAttemptFactory(call=EndpointCallFactory(endpoint=endpoint))
    few = queries()
    for _ in range(6):
        EndpointAttemptFactory(call=EndpointCallFactory(endpoint=endpoint))
    assert queries() == few


# --- The services the console uses too ----------------------------------------------------------


def test_service_errors_name_model_and_config_fields(owner):
    with pytest.raises(ValidationError) as caught:
        services.endpoint_create(
            owner=owner, identifier="bad id", type="http_request", config={"method": "FETCH"}
        )
    assert set(caught.value.message_dict) == {"identifier", "config.url", "config.method"}

    with pytest.raises(ValidationError) as caught:
        services.endpoint_create(owner=owner, identifier="e1", type="mqtt", config={})
    assert set(caught.value.message_dict) == {"type"}


def test_service_update_leaves_the_endpoint_as_it_was_when_refused(owner):
    endpoint = EndpointFactory(owner=owner, name="Before")
    with pytest.raises(ValidationError):
        services.endpoint_update(endpoint=endpoint, name="After", config={"url": ""})
    assert (endpoint.name, endpoint.config["url"]) == ("Before", "http://127.0.0.1:9/")
    with pytest.raises(TypeError):
        services.endpoint_update(endpoint=endpoint, identifier="renamed")


def test_a_delivery_finishing_after_its_endpoint_was_deleted_logs_nothing(
    owner, monkeypatch, enqueued
):
    """A worker may be sending while the owner deletes the endpoint: the result is dropped."""
    endpoint = EndpointFactory(owner=owner)
    call_row = EndpointCallFactory(endpoint=endpoint, next_attempt_at=timezone.now())

    def deleted_meanwhile(call):
        services.endpoint_delete(endpoint=call.endpoint)
        return Outcome(ok=True, status_code=200)

    monkeypatch.setattr(services, "_attempt", deleted_meanwhile)

    assert services.endpoint_call_attempt(call_id=call_row.pk) is None
    assert not EndpointCall.objects.exists()
    assert not EndpointAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_delivery_settling_during_a_deletion_waits_then_logs_nothing(monkeypatch, enqueued):
    """The same race on separate connections: the worker's settle waits for the deletion's
    lock, then finds no call (no dangling attempt, no IntegrityError on either side)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the test database is shared-cache in memory")
    endpoint = EndpointFactory()
    call_row = EndpointCallFactory(endpoint=endpoint, next_attempt_at=timezone.now())
    sending, deleted, errors = threading.Event(), threading.Event(), []

    def delete():
        try:
            assert sending.wait(5)
            with transaction.atomic():
                services.endpoint_delete(endpoint=endpoint)
                deleted.set()
                time.sleep(0.3)  # the worker's settle is now waiting for the call's lock
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            deleted.set()
            connection.close()

    def sending_while_deleted(call):
        sending.set()
        assert deleted.wait(5)
        return Outcome(ok=True, status_code=200)

    monkeypatch.setattr(services, "_attempt", sending_while_deleted)
    deleter = threading.Thread(target=delete)
    deleter.start()
    try:
        assert services.endpoint_call_attempt(call_id=call_row.pk) is None
    finally:
        deleter.join()
    assert errors == []
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert not EndpointCall.objects.exists()
    assert not EndpointAttempt.objects.exists()


def test_a_huge_index_is_an_empty_page_not_an_error(api, owner):
    EndpointFactory(owner=owner, identifier="a")

    response = api.get("/v1/users/alice/endpoints?index=7386433944042924576814076526592&count=5")

    assert assert_json_ok(response) == []

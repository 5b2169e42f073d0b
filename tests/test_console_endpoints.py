"""Console pages for endpoints: list, create and edit per type (with the kinds' field errors),
delete, a test call against a real local receiver, the call log, and isolation."""

import pytest
from django.urls import reverse
from django.utils import timezone

from endpoints.models import Endpoint, EndpointAttempt, EndpointCall
from tests.factories import (
    DeviceFactory,
    EndpointAttemptFactory,
    EndpointCallFactory,
    EndpointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def http_request_data(**overrides):
    data = {
        "identifier": "hook",
        "name": "Hook",
        "type": "http_request",
        "enabled": "on",
        "http_request-url": "https://example.com/hook",
        "http_request-method": "POST",
        "http_request-headers": "X-Api-Key: 1234\nX-Other: a:b",
        "http_request-body_type": "json",
        "http_request-body": "",
    }
    data.update(overrides)
    return data


def test_empty_list_says_what_to_do(console):
    body = console.get(reverse("console-endpoint-list")).content.decode()

    assert "No endpoints yet" in body
    assert reverse("console-endpoint-create") in body


def test_list_shows_own_endpoints_and_their_last_call(console, user):
    endpoint = EndpointFactory(owner=user, identifier="hook", name="Hook")
    EndpointCallFactory(endpoint=endpoint, status="failed")
    EndpointFactory(owner=user, identifier="quiet")
    EndpointFactory(identifier="theirs")

    body = console.get(reverse("console-endpoint-list")).content.decode()

    assert "hook" in body and "Hook" in body and "quiet" in body
    assert "theirs" not in body
    assert "Failed" in body and "Never called" in body


def test_list_keeps_a_long_name_on_one_line(console, user):
    name = ("Notify the farm server, north wall " * 8)[:255]
    EndpointFactory(owner=user, identifier="long1", name=name, description=name)

    body = console.get(reverse("console-endpoint-list")).content.decode()

    assert f'<span class="truncate" title="{name}">{name}</span>' in body
    assert f'<span class="sub truncate" title="{name}">{name}</span>' in body


def test_new_form_has_fields_for_every_type(console):
    body = console.get(reverse("console-endpoint-create")).content.decode()

    for kind in ("http_request", "email", "ifttt", "telegram", "sms", "http_device"):
        assert f'data-endpoint-type="{kind}"' in body
    assert 'name="http_request-url"' in body
    assert 'name="telegram-bot_token"' in body
    assert 'name="sms-from"' in body
    assert "data-endpoint-type-select" in body


def test_new_form_preselects_a_type(console):
    response = console.get(reverse("console-endpoint-create"), {"type": "telegram"})

    assert response.context["chosen_type"] == "telegram"
    assert '<fieldset data-endpoint-type="telegram">' in response.content.decode()


def test_create_http_request(console, user):
    response = console.post(reverse("console-endpoint-create"), http_request_data())

    assert response["Location"] == reverse("console-endpoint", args=["hook"])
    endpoint = Endpoint.objects.get(owner=user)
    assert endpoint.type == "http_request"
    assert endpoint.config == {
        "url": "https://example.com/hook",
        "method": "POST",
        "headers": [{"key": "X-Api-Key", "value": "1234"}, {"key": "X-Other", "value": "a:b"}],
        "body_type": "json",
        "body": "",
    }


def test_create_telegram_ignores_the_other_types_fields(console, user):
    response = console.post(
        reverse("console-endpoint-create"),
        {
            "identifier": "tg",
            "type": "telegram",
            "telegram-bot_token": "123456:ABC-def",
            "telegram-chat_id": "42",
            "telegram-text": "{{device}} is at {{temperature}}",
            "http_request-url": "not even a url",
        },
    )

    assert response.status_code == 302
    assert Endpoint.objects.get(owner=user).config == {
        "bot_token": "123456:ABC-def",
        "chat_id": "42",
        "text": "{{device}} is at {{temperature}}",
    }


def test_create_sms_names_its_from_field(console, user):
    console.post(
        reverse("console-endpoint-create"),
        {
            "identifier": "sms1",
            "type": "sms",
            "sms-account_sid": "AC123",
            "sms-auth_token": "secret",
            "sms-from": "+15005550006",
            "sms-to": "+34600000000",
            "sms-body": "Hi",
        },
    )

    assert Endpoint.objects.get(owner=user).config["from"] == "+15005550006"


def test_kind_errors_land_on_their_fields(console):
    response = console.post(
        reverse("console-endpoint-create"),
        http_request_data(**{"http_request-url": "ftp://example.com", "http_request-body": "{"}),
    )

    [config] = [c for c in response.context["configs"] if c.type == "http_request"]
    assert config.errors["url"] == ["Enter an http:// or https:// URL."]
    assert config.errors["body"][0].startswith("Not valid JSON")
    assert "Enter an http:// or https:// URL." in response.content.decode()
    assert not Endpoint.objects.exists()


def test_required_fields_of_the_chosen_type(console):
    response = console.post(
        reverse("console-endpoint-create"), {"identifier": "tg", "type": "telegram"}
    )

    [config] = [c for c in response.context["configs"] if c.type == "telegram"]
    assert set(config.errors) == {"bot_token", "chat_id", "text"}


def test_other_types_show_no_errors_after_a_failed_save(console, user):
    """The page sends the chosen type's fields only: the other types' forms are not checked, so
    switching to one after a failed save shows its starting values, not errors."""
    EndpointFactory(owner=user, identifier="hook", config={"url": "https://example.com/a"})

    for url, data in [
        (reverse("console-endpoint-create"), {"identifier": "tg", "type": "telegram"}),
        (reverse("console-endpoint-edit", args=["hook"]), {"type": "email"}),
    ]:
        response = console.post(url, data)

        chosen = data["type"]
        others = [c for c in response.context["configs"] if c.type != chosen]
        assert not any(c.is_bound or c.errors for c in others)
        body = response.content.decode()
        for config in others:
            fieldset = body.split(f'data-endpoint-type="{config.type}"')[1].split("</fieldset>")[0]
            assert "errorlist" not in fieldset, config.type
    # The edited endpoint's own type still shows its saved configuration.
    [http] = [c for c in response.context["configs"] if c.type == "http_request"]
    assert http.initial["url"] == "https://example.com/a"


def test_one_error_banner_for_the_endpoint_and_its_configuration(console):
    response = console.post(
        reverse("console-endpoint-create"),
        http_request_data(identifier="bad id", **{"http_request-url": ""}),
    )

    body = response.content.decode()
    assert response.context["form"].errors and response.context["chosen_config"].errors
    assert body.count('class="form-errors"') == 1
    assert body.count("Please correct the errors below.") == 1


def test_bad_header_line(console):
    response = console.post(
        reverse("console-endpoint-create"),
        http_request_data(**{"http_request-headers": "X-Good: 1\nno colon here"}),
    )

    [config] = [c for c in response.context["configs"] if c.type == "http_request"]
    assert config.errors["headers"] == ["Line 2: write it as Name: value."]


def test_duplicate_id(console, user):
    EndpointFactory(owner=user, identifier="hook")

    response = console.post(reverse("console-endpoint-create"), http_request_data())

    assert response.context["form"].errors["identifier"] == [
        "You already have an endpoint with this ID."
    ]


def test_edit_shows_the_config_and_saves_it(console, user):
    EndpointFactory(
        owner=user,
        identifier="hook",
        config={
            "url": "https://example.com/a",
            "method": "PUT",
            "headers": [{"key": "X-A", "value": "1"}],
            "body_type": "json",
        },
    )

    form = console.get(reverse("console-endpoint-edit", args=["hook"])).content.decode()
    response = console.post(
        reverse("console-endpoint-edit", args=["hook"]),
        {
            "name": "Renamed",
            "type": "email",
            "email-recipient": "ops@example.com",
            "email-body_type": "text",
        },
    )

    assert 'value="https://example.com/a"' in form
    assert "X-A: 1" in form
    assert '<option value="PUT" selected>' in form
    assert response.status_code == 302
    endpoint = Endpoint.objects.get(owner=user)
    assert (endpoint.name, endpoint.type, endpoint.enabled) == ("Renamed", "email", False)
    assert endpoint.config["recipient"] == "ops@example.com"


def test_delete_endpoint(console, user):
    EndpointCallFactory(endpoint=EndpointFactory(owner=user, identifier="hook"))

    response = console.post(reverse("console-endpoint-delete", args=["hook"]))

    assert response["Location"] == reverse("console-endpoint-list")
    assert not Endpoint.objects.exists() and not EndpointCall.objects.exists()


def test_detail_hides_secrets(console, user):
    EndpointFactory(
        owner=user,
        identifier="tg",
        type="telegram",
        config={"bot_token": "123456:ABCDEFGHIJ", "chat_id": "42", "text": "hi"},
    )

    body = console.get(reverse("console-endpoint", args=["tg"])).content.decode()

    assert "123456:ABCDEFGHIJ" not in body
    assert "••••GHIJ" in body
    assert "No calls yet" in body


def test_test_call_shows_the_targets_answer(console, user, receiver, settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    receiver.script(418)
    EndpointFactory(
        owner=user,
        identifier="hook",
        config={"url": f"{receiver.url}/in", "method": "POST", "headers": [], "body_type": "json"},
    )

    response = console.post(
        reverse("console-endpoint-test", args=["hook"]),
        {"payload": '{"temperature": 30}'},
        follow=True,
    )

    # Redirected to the endpoint's page, which shows the call it names: a reload sends nothing.
    call = EndpointCall.objects.get()
    page = reverse("console-endpoint", args=["hook"])
    assert response.redirect_chain == [(f"{page}?test={call.pk}#test", 302)]
    body = response.content.decode()
    assert response.context["test_result"]["status_code"] == 418
    assert "Test call failed: the target answered HTTP 418." in body
    assert "HTTP 418" in body and "Failed" in body
    assert receiver.requests[0].json() == {"temperature": 30}
    assert call.status == "failed"
    assert 'id="calls-table"' in body
    assert response.context["test_form"].initial["payload"] == '{"temperature": 30}'
    console.get(f"{page}?test={call.pk}")
    assert len(receiver.requests) == 1 and EndpointCall.objects.count() == 1


def test_test_call_result_of_another_endpoint_is_not_shown(console, user):
    hook = EndpointFactory(owner=user, identifier="hook")
    other = EndpointCallFactory(endpoint=EndpointFactory(owner=user), device=None)
    EndpointAttemptFactory(call=other)
    device_call = EndpointCallFactory(endpoint=hook)
    EndpointAttemptFactory(call=device_call)

    for call_id in (other.pk, device_call.pk, "x"):
        response = console.get(reverse("console-endpoint", args=["hook"]), {"test": call_id})
        assert response.context["test_result"] is None


def test_test_call_with_bad_json(console, user):
    EndpointFactory(owner=user, identifier="hook")

    response = console.post(
        reverse("console-endpoint-test", args=["hook"]), {"payload": "{"}, follow=True
    )

    assert response.redirect_chain == [(reverse("console-endpoint", args=["hook"]) + "#test", 302)]
    form = response.context["test_form"]
    assert form.errors["payload"][0].startswith("This is not valid JSON")
    assert form["payload"].value() == "{"
    assert not EndpointCall.objects.exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"t": NaN}', "This is not valid JSON: NaN is not a JSON number (line 1, column 7)."),
        ("1e999", "This JSON cannot be stored: the number 1e999 is too large (line 1, column 1)."),
    ],
)
def test_test_call_payload_json_cannot_hold_is_a_field_error(console, user, payload, message):
    EndpointFactory(owner=user, identifier="hook")

    response = console.post(
        reverse("console-endpoint-test", args=["hook"]), {"payload": payload}, follow=True
    )

    assert response.context["test_form"].errors["payload"] == [message]
    assert not EndpointCall.objects.exists()


def test_call_log_shows_status_attempts_and_errors(console, user):
    endpoint = EndpointFactory(owner=user, identifier="hook")
    device = DeviceFactory(owner=user, identifier="sensor1")
    call = EndpointCallFactory(
        endpoint=endpoint, device=device, status="failed", attempts=2, last_error="HTTP 503"
    )
    for code in (503, 503):
        EndpointAttempt.objects.create(
            call=call, started_at=timezone.now(), status_code=code, duration_ms=12
        )
    EndpointCallFactory(endpoint=endpoint, device=device, status="succeeded", attempts=1)

    body = console.get(reverse("console-endpoint", args=["hook"])).content.decode()

    assert "sensor1" in body
    assert "Failed" in body and "Succeeded" in body
    assert "HTTP 503" in body
    assert "2 attempts" in body


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "console-endpoint"),
        ("get", "console-endpoint-edit"),
        ("post", "console-endpoint-edit"),
        ("post", "console-endpoint-delete"),
        ("post", "console-endpoint-test"),
    ],
)
def test_another_users_endpoint_is_404(console, method, name):
    theirs = EndpointFactory(identifier="theirs", name="Theirs")

    response = getattr(console, method)(
        reverse(name, args=["theirs"]), {"name": "Mine", "type": "email", "payload": "{}"}
    )

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"
    assert not EndpointCall.objects.exists()

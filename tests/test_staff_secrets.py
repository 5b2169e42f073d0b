"""Secrets are their owner's (issue 18, item 3): staff read another user's assets through the API
and the admin with the secrets left out (a long-lived token's value, a device's callback token,
an endpoint's signing secret and the credentials in its settings), so that reading never lets
them act as that user or that device. A long-lived token's value is shown once, when created."""

import json

import pytest
from django.test import Client

from devices.tokens import callback_token_for
from tests.factories import DeviceFactory, EndpointFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"  # noqa: S105 (UserFactory's)


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def staff():
    # Staff, with no model permissions: the admin refuses them its pages, the API lets them read.
    return UserFactory(username="mallory", is_staff=True)


def bearer(user):
    client = Client()
    response = client.post(
        "/oauth/token",
        f"grant_type=password&username={user.username}&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {response.json()['access_token']}"
    return client


@pytest.fixture
def assets(alice):
    device = DeviceFactory(owner=alice, identifier="d1")
    webhook = EndpointFactory(
        owner=alice,
        identifier="hook",
        type="http_request",
        config={
            "url": "https://example.com/in",
            "method": "POST",
            "headers": [{"key": "Authorization", "value": "Bearer hook-api-key"}],
            "body_type": "json",
        },
    )
    sms = EndpointFactory(
        owner=alice,
        identifier="sms",
        type="sms",
        config={
            "account_sid": "AC1",
            "auth_token": "twilio-secret",
            "from": "+100",
            "to": "+200",
            "body": "hi",
        },
    )
    created = bearer(alice).post(
        "/v1/users/alice/tokens",
        json.dumps({"token": "gateway", "name": "Gateway", "enabled": True}),
        content_type="application/json",
    )
    return {"device": device, "webhook": webhook, "sms": sms, "token": created.json()}


def test_a_long_lived_token_value_is_shown_once_at_creation(alice, assets):
    assert assets["token"]["access_token"]
    owner = bearer(alice)

    detail = owner.get("/v1/users/alice/tokens/gateway").json()
    listed = owner.get("/v1/users/alice/tokens").json()

    assert "access_token" not in detail
    assert all("access_token" not in token for token in listed)


def test_staff_read_another_users_tokens_without_their_values(staff, assets):
    client = bearer(staff)

    detail = client.get("/v1/users/alice/tokens/gateway")
    listed = client.get("/v1/users/alice/tokens")

    assert detail.status_code == listed.status_code == 200
    assert detail.json()["name"] == "Gateway"
    assert assets["token"]["access_token"] not in detail.content.decode() + listed.content.decode()


def test_staff_read_a_devices_callback_url_but_not_its_token(staff, alice, assets):
    token = callback_token_for(assets["device"])
    path = "/v3/users/alice/devices/d1/callback/token"

    seen = bearer(staff).get(path)
    owners = bearer(alice).get(path).json()

    assert seen.status_code == 200
    assert seen.json()["token"] is None and seen.json()["full_url"] is None
    assert seen.json()["url"].endswith("/v3/users/alice/devices/d1/callback/data")
    assert token not in seen.content.decode()
    assert owners["token"] == token


def test_staff_read_endpoints_without_secret_or_credentials(staff, alice, assets):
    client = bearer(staff)

    for path in ("/v1/users/alice/endpoints", "/v1/users/alice/endpoints/hook"):
        text = client.get(path).content.decode()
        for secret in ("hook-api-key", "twilio-secret", assets["webhook"].secret):
            assert secret not in text, path
    hook = client.get("/v1/users/alice/endpoints/hook").json()
    sms = client.get("/v1/users/alice/endpoints/sms").json()
    assert hook["secret"] is None
    assert hook["config"]["url"] == "https://example.com/in"
    assert hook["config"]["headers"] == [{"key": "Authorization", "value": None}]
    assert sms["config"]["auth_token"] is None and sms["config"]["to"] == "+200"
    # The owner sees everything.
    owners = bearer(alice).get("/v1/users/alice/endpoints/sms").json()
    assert owners["config"]["auth_token"] == "twilio-secret"
    assert owners["secret"] == assets["sms"].secret


def test_staff_cannot_use_what_they_read_to_act_as_the_device(staff, assets, callback_client):
    seen = bearer(staff).get("/v3/users/alice/devices/d1/callback/token").json()

    response = Client().post(
        "/v3/users/alice/devices/d1/callback/data",
        b'{"n": 1}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {seen['token']}",
    )

    assert response.status_code == 401


def test_the_admin_shows_the_callback_token_to_the_devices_owner_only(alice, assets):
    token = callback_token_for(assets["device"])
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    alice.is_staff = alice.is_superuser = True
    alice.save()
    page = f"/admin/devices/device/{assets['device'].pk}/change/"

    other = Client()
    other.force_login(superuser)
    owner = Client()
    owner.force_login(alice)

    seen = other.get(page).content.decode()
    assert "alice/devices/d1/callback/data" in seen
    assert token not in seen
    assert "shown to the device&#x27;s owner only" in seen or "owner only" in seen
    assert token in owner.get(page).content.decode()

"""A create that loses the race for an id to a concurrent one (which committed after this one's
validation, before its INSERT) is the duplicate's 400, the same as a duplicate found by the
validation: never a 500."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AccessToken
from accounts.services import access_token_create
from buckets.models import Bucket
from buckets.services import bucket_create
from devices.models import Device, Property
from devices.services import device_create, property_create
from endpoints.models import Endpoint
from endpoints.services import endpoint_create
from tests.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

CREATES = {
    "device": (Device, device_create, {}, "You already have a device with this ID."),
    "bucket": (Bucket, bucket_create, {}, "You already have a bucket with this ID."),
    "token": (
        AccessToken,
        access_token_create,
        {"name": "t"},
        "You already have a token with this ID.",
    ),
}


@pytest.fixture
def validation_misses_the_other_create(monkeypatch):
    """The other create commits between this one's validation and its INSERT."""
    for model in (Device, Bucket, AccessToken, Property, Endpoint):
        monkeypatch.setattr(model, "validate_constraints", lambda self, exclude=None: None)


@pytest.mark.parametrize("kind", CREATES)
def test_an_owned_object_is_a_validation_error(kind, validation_misses_the_other_create):
    model, create, fields, message = CREATES[kind]
    owner = UserFactory()
    create(owner=owner, identifier="same", **fields)

    with pytest.raises(ValidationError) as raised:
        create(owner=owner, identifier="same", **fields)

    assert raised.value.message_dict == {"identifier": [message]}
    assert model.objects.filter(owner=owner).count() == 1


def test_a_property_is_a_validation_error(validation_misses_the_other_create):
    device = DeviceFactory()
    property_create(device=device, identifier="same")

    with pytest.raises(ValidationError) as raised:
        property_create(device=device, identifier="same")

    assert raised.value.message_dict == {
        "identifier": ["This device already has a property with this ID."]
    }


def test_an_endpoint_is_a_validation_error(monkeypatch):
    owner = UserFactory()
    config = {"url": "https://example.com/hook"}
    endpoint_create(owner=owner, identifier="same", type="http_request", config=config)
    # The other create commits after the check for an existing id.
    monkeypatch.setattr(
        "endpoints.services.Endpoint.objects.filter", lambda **_: Endpoint.objects.none()
    )

    with pytest.raises(ValidationError) as raised:
        endpoint_create(owner=owner, identifier="same", type="http_request", config=config)

    assert raised.value.message_dict == {
        "identifier": ["You already have an endpoint with this ID."]
    }


def test_the_api_answers_the_duplicates_400(bearer_client, validation_misses_the_other_create):
    owner = UserFactory(username="alice")
    api = bearer_client(owner)
    DeviceFactory(owner=owner, identifier="d1")
    AccessToken.objects.create(owner=owner, identifier="t1", name="t")

    device = api.post("/v1/users/alice/devices", {"device": "d1"}, content_type="application/json")
    token = api.post(
        "/v1/users/alice/tokens",
        {"token": "t1", "name": "t", "enabled": True},
        content_type="application/json",
    )

    assert device.status_code == 400
    assert device.json() == {
        "error": {"message": "device: You already have a device with this ID."}
    }
    assert token.status_code == 400
    assert token.json() == {"error": {"message": "token: You already have a token with this ID."}}

"""An update that races with a delete is a 404, never a 500 and never a resurrected row.

Found by schemathesis: a PUT on a device deleted by a concurrent DELETE failed with a 500.
"""

import pytest
from django.contrib.auth import get_user_model

from accounts.models import AccessToken
from accounts.services import access_token_create, access_token_update
from buckets.models import Bucket
from buckets.services import bucket_update
from devices.models import Device, Property
from devices.services import device_update, property_update
from endpoints.models import Endpoint
from endpoints.services import endpoint_update
from tests.factories import BucketFactory, DeviceFactory, EndpointFactory, PropertyFactory


def deleted_meanwhile(instance):
    type(instance).objects.filter(pk=instance.pk).delete()
    return instance


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("make", "update", "fields"),
    [
        (DeviceFactory, lambda obj, **f: device_update(device=obj, **f), {"name": "x"}),
        (PropertyFactory, lambda obj, **f: property_update(prop=obj, **f), {"value": 1}),
        (BucketFactory, lambda obj, **f: bucket_update(bucket=obj, **f), {"name": "x"}),
        (EndpointFactory, lambda obj, **f: endpoint_update(endpoint=obj, **f), {"name": "x"}),
    ],
    ids=["device", "property", "bucket", "endpoint"],
)
def test_updating_a_row_deleted_meanwhile_raises_does_not_exist(make, update, fields):
    instance = deleted_meanwhile(make())
    model = type(instance)

    with pytest.raises(model.DoesNotExist):
        update(instance, **fields)

    assert not model.objects.filter(pk=instance.pk).exists()


@pytest.mark.django_db
def test_token_update_after_delete_raises_does_not_exist():
    owner = get_user_model().objects.create_user("tok")
    token = deleted_meanwhile(access_token_create(owner=owner, identifier="t1", name="T"))

    with pytest.raises(AccessToken.DoesNotExist):
        access_token_update(token=token, name="renamed")
    assert not AccessToken.objects.exists()


@pytest.mark.django_db
def test_api_put_on_a_device_deleted_meanwhile_is_404(client, monkeypatch):
    device = DeviceFactory(identifier="d1")
    client.force_login(device.owner)
    from devices import api

    real = api.services.device_update

    def delete_then_update(*, device, **fields):
        Device.objects.filter(pk=device.pk).delete()
        return real(device=device, **fields)

    monkeypatch.setattr(api.services, "device_update", delete_then_update)
    response = client.put(
        f"/v1/users/{device.owner.username}/devices/d1",
        {"name": "renamed"},
        content_type="application/json",
    )

    assert response.status_code == 404
    assert "error" in response.json()
    assert not Device.objects.exists()


def test_models_used_here_have_a_modified_column():
    for model in (Device, Property, Bucket, Endpoint, AccessToken):
        assert any(f.name == "modified" for f in model._meta.concrete_fields)

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


def _deleted_after_lookup(monkeypatch, module, name):
    """The view finds its object, then a concurrent request deletes it before the write."""
    real = getattr(module, name)

    def find_then_lose(**kwargs):
        found = real(**kwargs)
        if found is not None:
            type(found).objects.filter(pk=found.pk).delete()
        return found

    monkeypatch.setattr(module, name, find_then_lose)


_DEVICE_WRITES = [
    ("put", "callback", {}),
    ("put", "callback", {"properties": {"timeout": 5}}),
    ("put", "callback", {"actions": {"write_bucket": "b1"}}),
    ("post", "callback/token", None),
    ("post", "properties", {"property": "p2", "value": 1}),
    ("put", "properties/p1", {"value": 2}),
    ("patch", "properties/p1", {"value": {"a": 1}}),
    ("delete", "properties/p1", None),
    ("delete", "", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "tail", "body"), _DEVICE_WRITES)
def test_a_device_write_racing_a_delete_of_the_device_is_404(
    client, monkeypatch, assert_json_error, method, tail, body
):
    from devices import selectors

    device = DeviceFactory(identifier="d1")
    BucketFactory(owner=device.owner, identifier="b1")
    PropertyFactory(device=device, identifier="p1", value=1)
    client.force_login(device.owner)
    _deleted_after_lookup(monkeypatch, selectors, "device_by_path")
    path = f"/v3/users/{device.owner.username}/devices/d1/{tail}".rstrip("/")
    if tail == "":
        path = f"/v1/users/{device.owner.username}/devices/d1"

    response = getattr(client, method)(
        path, body if body is not None else "", content_type="application/json"
    )

    assert_json_error(response, 404)
    assert not Device.objects.exists()
    assert not Property.objects.exists()


_BUCKET_WRITES = [
    ("post", "/data", [{"t": 1}]),
    ("delete", "/data", None),
    ("post", "/exports", {"data_type": "csv"}),
    ("put", "", {"name": "x"}),
    ("delete", "", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "tail", "body"), _BUCKET_WRITES)
def test_a_bucket_write_racing_a_delete_of_the_bucket_is_404(
    client, monkeypatch, assert_json_error, method, tail, body
):
    from buckets import selectors
    from buckets.models import BucketExport, BucketRecord

    bucket = BucketFactory(identifier="b1")
    client.force_login(bucket.owner)
    _deleted_after_lookup(monkeypatch, selectors, "bucket_by_path")

    response = getattr(client, method)(
        f"/v1/users/{bucket.owner.username}/buckets/b1{tail}",
        body if body is not None else "",
        content_type="application/json",
    )

    assert_json_error(response, 404)
    assert not Bucket.objects.exists()
    assert not BucketRecord.objects.exists()
    assert not BucketExport.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "tail", "body"),
    [("put", "", {"name": "x"}), ("delete", "", None), ("post", "/call", {"a": 1})],
)
def test_an_endpoint_write_racing_a_delete_of_the_endpoint_is_404(
    client, monkeypatch, assert_json_error, method, tail, body
):
    from endpoints import selectors
    from endpoints.models import EndpointCall

    endpoint = EndpointFactory(identifier="e1")
    client.force_login(endpoint.owner)
    _deleted_after_lookup(monkeypatch, selectors, "endpoint_by_path")

    response = getattr(client, method)(
        f"/v1/users/{endpoint.owner.username}/endpoints/e1{tail}",
        body if body is not None else "",
        content_type="application/json",
    )

    assert_json_error(response, 404)
    assert not Endpoint.objects.exists()
    assert not EndpointCall.objects.exists()


_CONSOLE_POSTS = [
    ("devices.console", "/devices/d1/delete", {}),
    ("devices.console", "/devices/d1/edit", {"name": "x", "enabled": "on"}),
    ("devices.console", "/devices/d1/callback/settings", {"timeout": "5"}),
    ("devices.console", "/devices/d1/callback/token", {}),
    ("devices.console", "/devices/d1/properties/new", {"identifier": "p2", "value": "1"}),
    ("buckets.console", "/buckets/b1/delete", {}),
    ("buckets.console", "/buckets/b1/clear", {"clear-scope": "all", "confirmed": "1"}),
    ("buckets.console", "/buckets/b1/edit", {"name": "x", "retention_unit": "months"}),
    ("endpoints.console", "/endpoints/e1/delete", {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("module", "path", "data"), _CONSOLE_POSTS)
def test_a_console_write_racing_a_delete_is_the_404_page(client, monkeypatch, module, path, data):
    import importlib

    from core.console import owned_or_404

    device = DeviceFactory(identifier="d1")
    BucketFactory(owner=device.owner, identifier="b1")
    EndpointFactory(owner=device.owner, identifier="e1")
    client.force_login(device.owner)

    def find_then_lose(queryset, user, **lookup):
        found = owned_or_404(queryset, user, **lookup)
        type(found).objects.filter(pk=found.pk).delete()
        return found

    monkeypatch.setattr(importlib.import_module(module), "owned_or_404", find_then_lose)

    response = client.post(path, data)

    assert response.status_code == 404, response.content[:300]
    assert b"<html" in response.content.lower()

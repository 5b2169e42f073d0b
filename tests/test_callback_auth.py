"""Who may call a device's callback, and on which paths and methods (SPEC 1: token, errors)."""

import jwt
import pytest
from django.test import Client

from buckets.models import BucketRecord
from devices.services import device_rotate_token
from devices.tokens import callback_token_for
from tests.factories import DeviceFactory, UserFactory

OTHER_KEY = "a key of 32 bytes or more that is not ours"


def test_token_in_bearer_header_is_accepted(callback_client, callback_device):
    response = callback_client.post(callback_device, {"temperature": 21.5})

    assert response.status_code == 200
    assert list(BucketRecord.objects.values_list("value", flat=True)) == [{"temperature": 21.5}]


def test_bearer_scheme_is_case_insensitive(client, callback_client, callback_device):
    token = callback_token_for(callback_device)
    response = client.post(
        callback_client.path(callback_device),
        b'{"temperature": 21.5}',
        content_type="application/json",
        headers={"Authorization": f"bearer {token}"},
    )

    assert response.status_code == 200
    assert BucketRecord.objects.count() == 1


def test_token_in_authorization_query_parameter_is_accepted(callback_client, callback_device):
    response = callback_client.post(callback_device, {"temperature": 21.5}, token_in="query")

    assert response.status_code == 200
    assert list(BucketRecord.objects.values_list("value", flat=True)) == [{"temperature": 21.5}]


def test_callback_needs_no_csrf_token(callback_client, callback_device):
    """Devices have no session or CSRF cookie: the callback must not ask for one."""
    client = Client(enforce_csrf_checks=True)
    token = callback_token_for(callback_device)
    path = callback_client.path(callback_device)

    response = client.post(f"{path}?authorization={token}", b"{}", content_type="application/json")

    assert response.status_code == 200
    assert BucketRecord.objects.count() == 1


def test_missing_token_is_401(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    response = callback_client.post(callback_device, {"temperature": 21.5}, token="")

    assert_json_error(response, 401)
    assert_nothing_stored()


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "Bearer", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
def test_garbage_token_is_401(
    callback_client, callback_device, assert_json_error, assert_nothing_stored, token
):
    response = callback_client.post(callback_device, {"temperature": 21.5}, token=token)

    assert_json_error(response, 401)
    assert_nothing_stored()


def _claims(device):
    return {
        "jti": f"DeviceCallback_{device.identifier}",
        "usr": device.owner.username,
        "gen": device.token_generation,
    }


def test_token_signed_with_another_key_is_401(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    forged = jwt.encode(_claims(callback_device), OTHER_KEY, algorithm="HS256")

    response = callback_client.post(callback_device, {"temperature": 21.5}, token=forged)

    assert_json_error(response, 401)
    assert_nothing_stored()


def test_unsigned_token_is_401(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    unsigned = jwt.encode(_claims(callback_device), None, algorithm="none")

    response = callback_client.post(callback_device, {"temperature": 21.5}, token=unsigned)

    assert_json_error(response, 401)
    assert_nothing_stored()


def test_token_of_another_device_of_the_same_user_is_403(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    sibling = DeviceFactory(owner=callback_device.owner)

    response = callback_client.post(
        callback_device, {"temperature": 21.5}, token=callback_token_for(sibling)
    )

    assert_json_error(response, 403)
    assert_nothing_stored()


def test_token_of_another_users_device_is_403(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    namesake = DeviceFactory(identifier=callback_device.identifier, owner=UserFactory())

    response = callback_client.post(
        callback_device, {"temperature": 21.5}, token=callback_token_for(namesake)
    )

    assert_json_error(response, 403)
    assert_nothing_stored()


def test_device_deleted_after_its_token_was_issued_is_404(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    token = callback_token_for(callback_device)
    callback_device.delete()

    response = callback_client.post(callback_device, {"temperature": 21.5}, token=token)

    assert_json_error(response, 404)
    assert_nothing_stored()


def test_unknown_user_is_404(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    token = callback_token_for(callback_device)
    callback_device.owner.delete()

    response = callback_client.post(callback_device, {"temperature": 21.5}, token=token)

    assert_json_error(response, 404)
    assert_nothing_stored()


def test_device_created_again_does_not_accept_the_old_devices_token(
    callback_client, device, assert_json_error
):
    old_token = callback_token_for(device)
    owner, identifier = device.owner, device.identifier
    device.delete()
    again = DeviceFactory(owner=owner, identifier=identifier)

    response = callback_client.post(again, {"temperature": 21.5}, token=old_token)

    assert_json_error(response, 401)
    assert callback_client.post(again, {"temperature": 21.5}).status_code == 200


def test_rotated_token_is_401_and_the_new_one_works(
    callback_client, callback_device, assert_json_error
):
    old_token = callback_token_for(callback_device)
    device_rotate_token(device=callback_device)
    new_token = callback_token_for(callback_device)

    refused = callback_client.post(callback_device, {"n": 1}, token=old_token)
    accepted = callback_client.post(callback_device, {"n": 2}, token=new_token)

    assert new_token != old_token
    assert_json_error(refused, 401)
    assert accepted.status_code == 200
    assert list(BucketRecord.objects.values_list("value", flat=True)) == [{"n": 2}]


def test_disabled_device_is_403(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    callback_device.enabled = False
    callback_device.save()

    response = callback_client.post(callback_device, {"temperature": 21.5})

    assert_json_error(response, 403)
    assert_nothing_stored()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_on_callback_data_are_405(
    callback_client, callback_device, assert_json_error, assert_nothing_stored, method
):
    response = callback_client.request(method, callback_device, {"temperature": 21.5})

    assert_json_error(response, 405)
    assert response["Allow"] == "GET, POST"
    assert_nothing_stored()


def test_get_on_the_legacy_callback_path_reads_settings_not_with_a_device_token(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    """GET on the legacy path is the owner's callback settings API: a device token is 401."""
    response = callback_client.get(callback_device, legacy=True)

    assert_json_error(response, 401)
    assert_nothing_stored()


def test_other_methods_on_the_legacy_callback_path_are_405(
    callback_client, callback_device, assert_json_error, assert_nothing_stored
):
    callback_client.client.force_login(callback_device.owner)

    response = callback_client.request("DELETE", callback_device, token="", legacy=True)

    assert_json_error(response, 405)
    assert response["Allow"] == "GET, PUT, POST, HEAD, OPTIONS"
    assert_nothing_stored()


def test_post_on_the_legacy_callback_path_ingests_like_callback_data(
    callback_client, callback_device
):
    response = callback_client.post(callback_device, {"temperature": 21.5}, legacy=True)

    assert response.status_code == 200
    assert response.json() == {"led": "on"}
    assert list(BucketRecord.objects.values_list("value", flat=True)) == [{"temperature": 21.5}]


@pytest.mark.parametrize("identifier", ["bad.id", "x" * 33])
def test_path_with_an_invalid_device_id_is_a_json_404(
    client, callback_device, assert_json_error, identifier
):
    token = callback_token_for(callback_device)
    path = f"/v3/users/{callback_device.owner.username}/devices/{identifier}/callback/data"

    response = client.post(
        path, b"{}", content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )

    assert_json_error(response, 404)


def owner_api_token(client, user, **allow):
    """A long-lived API access token of ``user``, created through the tokens API."""
    client.force_login(user)
    body = {"token": "gateway", "name": "Gateway", "enabled": True}
    if allow:
        body["allow"] = allow
    response = client.post(
        f"/v1/users/{user.username}/tokens", body, content_type="application/json"
    )
    client.logout()
    return response.json()["access_token"]


def test_owners_api_token_posts_for_any_of_their_devices(client, callback_client, callback_device):
    token = owner_api_token(client, callback_device.owner)

    response = callback_client.post(callback_device, {"temperature": 21.5}, token=token)

    assert response.status_code == 200
    assert BucketRecord.objects.count() == 1


def test_owners_api_token_on_a_missing_device_is_404(client, callback_client, callback_device):
    token = owner_api_token(client, callback_device.owner)
    missing = DeviceFactory.build(owner=callback_device.owner, identifier="not-yet")

    response = callback_client.post(missing, {"temperature": 21.5}, token=token)

    assert response.status_code == 404
    assert "error" in response.json()


def test_api_token_of_another_user_is_403(client, callback_client, callback_device):
    token = owner_api_token(client, UserFactory())

    response = callback_client.post(callback_device, {"temperature": 21.5}, token=token)

    assert response.status_code == 403
    assert BucketRecord.objects.count() == 0


def test_api_token_without_the_callback_scope_is_403(client, callback_client, callback_device):
    token = owner_api_token(client, callback_device.owner, Bucket={"*": "*"})

    response = callback_client.post(callback_device, {"temperature": 21.5}, token=token)

    assert response.status_code == 403
    assert "CallDeviceCallback" in response.json()["error"]["message"]

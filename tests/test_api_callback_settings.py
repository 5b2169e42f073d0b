"""A device's callback settings and token through the REST API (SPEC 2), with the PUT semantics
clients rely on (SPEC 9), and the legacy callback path that shares the settings' URL (SPEC 1)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from buckets.models import BucketRecord
from devices.models import CallbackSettings, Device
from devices.tokens import callback_token_for
from tests.api_checks import assert_json_ok
from tests.factories import (
    BucketFactory,
    DeviceFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db

SETTINGS = "/v3/users/alice/devices/d1/callback"
TOKEN = "/v3/users/alice/devices/d1/callback/token"


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def device(owner):
    return DeviceFactory(owner=owner, identifier="d1")


@pytest.fixture
def targets(owner, device):
    """A bucket and an endpoint of the owner, and two properties of the device."""
    BucketFactory(owner=owner, identifier="b1")
    EndpointFactory(owner=owner, identifier="e1")
    PropertyFactory(device=device, identifier="state")
    PropertyFactory(device=device, identifier="reply", value={"led": "on"})


@pytest.fixture
def api(bearer_client, owner):
    return bearer_client(owner)


ALL_ACTIONS = {
    "write_bucket": "b1",
    "set_property": "state",
    "call_endpoint": "e1",
    "send_property": "reply",
}


def put(api, body, path=SETTINGS):
    return api.put(path, body, content_type="application/json")


def stored(device):
    callback = CallbackSettings.objects.get(device=device)
    actions = {
        action: getattr(callback, action).identifier
        for action in ALL_ACTIONS
        if getattr(callback, action) is not None
    }
    return actions, callback.timeout


# Read.


def test_read_defaults(api, device):
    assert assert_json_ok(api.get(SETTINGS)) == {"actions": {}, "properties": {"timeout": 10}}


def test_read_the_configured_actions_by_id(api, device, targets):
    put(api, {"actions": ALL_ACTIONS, "properties": {"timeout": 3}})

    body = assert_json_ok(api.get(SETTINGS))

    assert body == {"actions": ALL_ACTIONS, "properties": {"timeout": 3}}


def test_read_a_device_without_settings_row(api, device):
    CallbackSettings.objects.filter(device=device).delete()

    assert assert_json_ok(api.get(SETTINGS)) == {"actions": {}, "properties": {"timeout": 10}}


# Update: the semantics of SPEC 9.


def test_put_sets_every_action_and_the_timeout(api, device, targets):
    body = assert_json_ok(put(api, {"actions": ALL_ACTIONS, "properties": {"timeout": 5}}))

    assert body == {"actions": ALL_ACTIONS, "properties": {"timeout": 5}}
    assert stored(device) == (ALL_ACTIONS, 5)


def test_put_with_only_some_actions_switches_the_others_off(api, device, targets):
    put(api, {"actions": ALL_ACTIONS})

    body = assert_json_ok(put(api, {"actions": {"write_bucket": "b1"}}))

    assert body["actions"] == {"write_bucket": "b1"}
    assert stored(device) == ({"write_bucket": "b1"}, 10)


def test_put_actions_without_properties_keeps_the_timeout(api, device, targets):
    callback_configure(device, timeout=42)

    body = assert_json_ok(put(api, {"actions": {"set_property": "state"}}))

    assert body == {"actions": {"set_property": "state"}, "properties": {"timeout": 42}}
    assert stored(device) == ({"set_property": "state"}, 42)


def test_put_properties_without_actions_keeps_the_actions(api, device, targets):
    put(api, {"actions": ALL_ACTIONS})

    body = assert_json_ok(put(api, {"properties": {"timeout": 7}}))

    assert body == {"actions": ALL_ACTIONS, "properties": {"timeout": 7}}
    assert stored(device) == (ALL_ACTIONS, 7)


def test_a_whole_number_written_as_a_float_is_a_timeout(api, device):
    """JSON Schema's integer: 10.0 is one (JavaScript clients may send it)."""
    body = assert_json_ok(put(api, {"properties": {"timeout": 10.0}}))

    assert body["properties"] == {"timeout": 10}


def test_put_empty_properties_keeps_the_timeout(api, device, targets):
    callback_configure(device, timeout=42)

    assert_json_ok(put(api, {"actions": {}, "properties": {}}))

    assert stored(device) == ({}, 42)


def test_put_empty_object_changes_nothing(api, device, targets):
    put(api, {"actions": ALL_ACTIONS, "properties": {"timeout": 3}})

    body = assert_json_ok(put(api, {}))

    assert body == {"actions": ALL_ACTIONS, "properties": {"timeout": 3}}


@pytest.mark.parametrize("off", [None, ""])
def test_null_or_empty_action_is_off(api, device, targets, off):
    put(api, {"actions": ALL_ACTIONS})

    body = assert_json_ok(put(api, {"actions": {**ALL_ACTIONS, "call_endpoint": off}}))

    assert "call_endpoint" not in body["actions"]
    assert stored(device)[0] == {k: v for k, v in ALL_ACTIONS.items() if k != "call_endpoint"}


def test_what_get_returns_is_a_valid_put_body(api, device, targets):
    put(api, {"actions": {"write_bucket": "b1", "send_property": "reply"}})
    read = assert_json_ok(api.get(SETTINGS))

    assert assert_json_ok(put(api, read)) == read


def test_the_settings_take_effect_on_the_next_callback(api, device, targets, callback_client):
    put(
        api,
        {"actions": {"write_bucket": "b1", "send_property": "reply"}, "properties": {"timeout": 5}},
    )
    before = timezone.now()

    response = callback_client.post(device, {"temperature": 21.5})

    assert response.status_code == 200
    assert response.json() == {"led": "on"}
    assert list(BucketRecord.objects.values_list("value", flat=True)) == [{"temperature": 21.5}]
    device.refresh_from_db()
    assert (
        before + timedelta(minutes=5) <= device.timeout_at <= timezone.now() + timedelta(minutes=5)
    )


def test_deleting_a_referenced_bucket_switches_the_action_off(api, device, targets):
    put(api, {"actions": {"write_bucket": "b1", "call_endpoint": "e1"}})

    device.owner.buckets.get(identifier="b1").delete()

    assert assert_json_ok(api.get(SETTINGS))["actions"] == {"call_endpoint": "e1"}


# Update: validation, each a 400 naming the field, changing nothing.


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ({"write_bucket": "missing"}, "actions.write_bucket"),
        ({"call_endpoint": "missing"}, "actions.call_endpoint"),
        ({"set_property": "missing"}, "actions.set_property"),
        ({"send_property": "missing"}, "actions.send_property"),
        ({"write_bucket": "theirs"}, "actions.write_bucket"),
        ({"call_endpoint": "theirs"}, "actions.call_endpoint"),
        ({"set_property": "sibling_prop"}, "actions.set_property"),
        ({"write_bucket": 5}, "actions.write_bucket"),
        ({"write_bucket": "bad id"}, "actions.write_bucket"),
        ({"write_bucket": "b1", "run_script": "x"}, "actions.run_script"),
    ],
)
def test_bad_references_are_400_naming_the_action(
    api, owner, device, targets, assert_json_error, actions, field
):
    other = UserFactory()
    BucketFactory(owner=other, identifier="theirs")
    EndpointFactory(owner=other, identifier="theirs")
    PropertyFactory(device=DeviceFactory(owner=owner), identifier="sibling_prop")
    put(api, {"actions": {"send_property": "reply"}, "properties": {"timeout": 3}})

    message = assert_json_error(put(api, {"actions": actions, "properties": {"timeout": 9}}), 400)

    assert message.startswith(f"{field}:"), message
    assert stored(device) == ({"send_property": "reply"}, 3)


def test_missing_bucket_message_names_it(api, device, assert_json_error):
    message = assert_json_error(put(api, {"actions": {"write_bucket": "nope"}}), 400)

    assert "write_bucket" in message
    assert "nope" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"properties": {"timeout": 0}}, "properties.timeout"),
        ({"properties": {"timeout": -5}}, "properties.timeout"),
        ({"properties": {"timeout": "10"}}, "properties.timeout"),
        ({"properties": {"timeout": 1.5}}, "properties.timeout"),
        ({"properties": {"timeout": True}}, "properties.timeout"),
        ({"properties": {"timeout": 60 * 24 * 365 + 1}}, "properties.timeout"),
        ({"properties": {"timeout": 5, "retries": 1}}, "properties.retries"),
        ({"properties": 5}, "properties"),
        ({"actions": ["b1"]}, "actions"),
        ({"actions": None}, "actions"),
        ({"actions": {}, "enabled": True}, "enabled"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field(
    api, device, targets, assert_json_error, body, field
):
    message = assert_json_error(put(api, body), 400)

    assert message.startswith(f"{field}:"), message
    assert stored(device) == ({}, 10)


# Who may.


def test_without_credentials_is_401(client, device, assert_json_error):
    assert_json_error(client.get(SETTINGS), 401)
    assert_json_error(put(client, {"properties": {"timeout": 3}}), 401)
    assert_json_error(client.get(TOKEN), 401)
    assert_json_error(client.post(TOKEN), 401)


def test_a_device_token_does_not_read_the_settings(client, device, assert_json_error):
    headers = {"Authorization": f"Bearer {callback_token_for(device)}"}

    assert_json_error(client.get(SETTINGS, headers=headers), 401)
    assert_json_error(client.get(TOKEN, headers=headers), 401)


def test_another_users_device_is_403(bearer_client, device, assert_json_error):
    mallory = bearer_client(UserFactory(username="mallory"))
    generation = device.token_generation

    assert_json_error(mallory.get(SETTINGS), 403)
    assert_json_error(put(mallory, {"properties": {"timeout": 3}}), 403)
    assert_json_error(mallory.get(TOKEN), 403)
    assert_json_error(mallory.post(TOKEN), 403)
    assert stored(device) == ({}, 10)
    assert Device.objects.get(pk=device.pk).token_generation == generation


def test_staff_may_read_but_not_write(bearer_client, device, assert_json_error):
    staff = bearer_client(UserFactory(username="root", is_staff=True))
    generation = device.token_generation

    assert assert_json_ok(staff.get(SETTINGS))["properties"] == {"timeout": 10}
    # The callback's URL, not the device's token: that is its owner's (test_staff_secrets.py).
    assert assert_json_ok(staff.get(TOKEN))["token"] is None
    assert_json_error(put(staff, {"properties": {"timeout": 3}}), 403)
    assert_json_error(staff.post(TOKEN), 403)
    assert stored(device) == ({}, 10)
    assert Device.objects.get(pk=device.pk).token_generation == generation


def test_unknown_device_is_404(api, owner, assert_json_error):
    DeviceFactory(identifier="d1")  # another user's

    assert_json_error(api.get(SETTINGS), 404)
    assert_json_error(put(api, {"properties": {"timeout": 3}}), 404)
    assert_json_error(api.get(TOKEN), 404)
    assert_json_error(api.post(TOKEN), 404)


def test_session_writes_need_the_csrf_token(owner, device, assert_json_error):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)

    assert browser.get(SETTINGS).status_code == 200
    assert_json_error(put(browser, {"properties": {"timeout": 3}}), 403)
    assert stored(device) == ({}, 10)


# The token.


def test_read_the_token_and_the_urls(api, device):
    body = assert_json_ok(api.get(TOKEN))

    token = callback_token_for(device)
    assert body["token"] == token
    assert body["url"].endswith("/v3/users/alice/devices/d1/callback/data")
    assert body["full_url"] == f"{body['url']}?authorization={token}"


def test_the_token_read_works_for_the_callback(api, device, callback_client):
    token = assert_json_ok(api.get(TOKEN))["token"]

    assert callback_client.post(device, {"n": 1}, token=token).status_code == 200


def test_rotate_returns_a_new_token_and_the_old_one_is_401(api, device, client, assert_json_error):
    old = assert_json_ok(api.get(TOKEN))["token"]

    new = assert_json_ok(api.post(TOKEN))["token"]

    assert new != old
    assert assert_json_ok(api.get(TOKEN))["token"] == new
    path = "/v3/users/alice/devices/d1/callback/data"
    refused = client.post(
        path,
        b'{"n": 1}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {old}"},
    )
    assert_json_error(refused, 401)
    accepted = client.post(
        path,
        b'{"n": 2}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {new}"},
    )
    assert accepted.status_code == 200


# The legacy callback path shares the settings' URL.


def test_post_on_the_settings_url_is_still_the_device_callback(device, targets, callback_client):
    callback_configure(
        device,
        write_bucket=device.owner.buckets.get(identifier="b1"),
        send_property=device.properties.get(identifier="reply"),
    )
    browser = Client(enforce_csrf_checks=True)  # devices have no CSRF cookie
    token = callback_token_for(device)

    response = browser.post(
        f"{SETTINGS}?authorization={token}",
        b'{"temperature": 21.5}',
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json() == {"led": "on"}
    assert list(BucketRecord.objects.values_list("value", flat=True)) == [{"temperature": 21.5}]


def test_post_on_the_settings_url_with_an_api_token_posts_data(api, device, targets):
    """The owner's API tokens are callback credentials too (SPEC 1): a POST is data, not a
    settings change."""
    callback_configure(device, set_property=device.properties.get(identifier="state"))

    response = api.post(SETTINGS, {"actions": {}}, content_type="application/json")

    assert response.status_code == 200
    assert device.properties.get(identifier="state").value == {"actions": {}}
    assert stored(device)[0] == {"set_property": "state"}


def test_other_methods_on_the_settings_url_are_405(api, device, assert_json_error):
    response = api.delete(SETTINGS)

    assert_json_error(response, 405)
    assert "POST" in response["Allow"]
    assert "PUT" in response["Allow"]


def test_a_new_timeout_moves_a_connected_devices_deadline(api, device):
    last_call = timezone.now() - timedelta(minutes=3)
    Device.objects.filter(pk=device.pk).update(
        connected=True, last_call_at=last_call, timeout_at=last_call + timedelta(minutes=10)
    )

    assert_json_ok(put(api, {"properties": {"timeout": 2}}))

    device.refresh_from_db()
    assert device.timeout_at == last_call + timedelta(minutes=2)

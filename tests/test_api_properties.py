"""Device properties through the REST API (SPEC 3), as clients use them (SPEC 9): create one or
many, read, replace, merge, delete; and deleting a property switches off the callback actions
that use it."""

import json

import pytest

from devices.models import CallbackSettings, Property
from tests.api_checks import assert_empty_ok, assert_json_ok
from tests.factories import DeviceFactory, PropertyFactory, UserFactory, callback_configure

pytestmark = pytest.mark.django_db

PROPERTIES = "/v3/users/alice/devices/d1/properties"
STATE = f"{PROPERTIES}/state"


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def device(owner):
    return DeviceFactory(owner=owner, identifier="d1")


@pytest.fixture
def api(bearer_client, owner):
    return bearer_client(owner)


def send(api, method, path, body):
    return api.generic(method, path, json.dumps(body), content_type="application/json")


def values(device):
    return dict(Property.objects.filter(device=device).values_list("identifier", "value"))


# Create.


def test_create_one(api, device):
    body = {"property": "state", "name": "State", "description": "last data", "value": {"a": 1}}

    assert assert_json_ok(send(api, "POST", PROPERTIES, body)) == body
    prop = Property.objects.get(device=device)
    assert (prop.identifier, prop.name, prop.description, prop.value) == (
        "state",
        "State",
        "last data",
        {"a": 1},
    )


def test_create_many(api, device):
    body = [
        {"property": "a", "value": 1},
        {"property": "b", "value": "text"},
        {"property": "c", "value": None, "name": "C"},
    ]

    created = assert_json_ok(send(api, "POST", PROPERTIES, body))

    assert [item["property"] for item in created] == ["a", "b", "c"]
    assert created[2] == {"property": "c", "name": "C", "description": "", "value": None}
    assert values(device) == {"a": 1, "b": "text", "c": None}


@pytest.mark.parametrize("value", [0, 1.5, "x", True, None, [1, [2]], {"deep": {"er": [None]}}])
def test_any_json_value(api, device, value):
    assert_json_ok(send(api, "POST", PROPERTIES, {"property": "p", "value": value}))

    assert assert_json_ok(api.get(f"{PROPERTIES}/p"))["value"] == value


def test_create_as_the_node_red_node_does(api, device):
    """{property, value} to create, then {value} with PUT once it exists."""
    assert_json_ok(send(api, "POST", PROPERTIES, {"property": "state", "value": {"on": 1}}))
    listed = assert_json_ok(api.get(PROPERTIES))
    assert any(item["property"] == "state" for item in listed)

    assert_json_ok(send(api, "PUT", STATE, {"value": {"on": 0}}))

    assert values(device) == {"state": {"on": 0}}


def test_the_references_optional_fields_are_accepted(api, device):
    body = {
        "property": "p",
        "value": 1,
        "type": "configuration",
        "form": {"fields": []},
        "perm": {},
    }

    assert assert_json_ok(send(api, "POST", PROPERTIES, body)) == {
        "property": "p",
        "name": "",
        "description": "",
        "value": 1,
    }


def test_duplicate_is_400(api, device, assert_json_error):
    PropertyFactory(device=device, identifier="state", value=1)

    message = assert_json_error(
        send(api, "POST", PROPERTIES, {"property": "state", "value": 2}), 400
    )

    assert message.startswith("property:")
    assert values(device) == {"state": 1}


def test_same_id_on_another_device_is_fine(api, owner, device):
    PropertyFactory(device=DeviceFactory(owner=owner), identifier="state")

    assert_json_ok(send(api, "POST", PROPERTIES, {"property": "state", "value": 2}))


def test_a_duplicate_in_an_array_creates_none_and_names_its_index(api, device, assert_json_error):
    PropertyFactory(device=device, identifier="b", value="old")
    body = [{"property": "a", "value": 1}, {"property": "b", "value": 2}]

    message = assert_json_error(send(api, "POST", PROPERTIES, body), 400)

    assert message.startswith("[1].property:")
    assert values(device) == {"b": "old"}


def test_a_repeated_id_within_an_array_is_400(api, device, assert_json_error):
    body = [{"property": "a", "value": 1}, {"property": "a", "value": 2}]

    message = assert_json_error(send(api, "POST", PROPERTIES, body), 400)

    assert message.startswith("[1].property:")
    assert values(device) == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": 1}, "property"),
        ({"property": "p"}, "value"),
        ({"property": "bad id", "value": 1}, "property"),
        ({"property": "x" * 33, "value": 1}, "property"),
        ({"property": 5, "value": 1}, "property"),
        ({"property": "p", "value": 1, "name": "n" * 256}, "name"),
        ({"property": "p", "value": 1, "description": 5}, "description"),
        ({"property": "p", "value": 1, "type": "other"}, "type"),
        ({"property": "p", "value": 1, "colour": "red"}, "colour"),
        ([{"property": "a", "value": 1}, {"property": "b"}], "[1].value"),
    ],
)
def test_create_validation_names_the_field(api, device, assert_json_error, body, field):
    message = assert_json_error(send(api, "POST", PROPERTIES, body), 400)

    assert message.startswith(f"{field}:"), message
    assert values(device) == {}


def test_a_number_too_large_to_store_is_400(api, device, assert_json_error):
    response = api.post(
        PROPERTIES, b'{"property": "p", "value": {"n": 1e400}}', content_type="application/json"
    )

    assert assert_json_error(response, 400).startswith("value:")


# Read.


def test_list_is_an_array_of_objects_with_property(api, device):
    PropertyFactory(device=device, identifier="b", value=[1])
    PropertyFactory(device=device, identifier="a", name="A", value={"x": 1})
    PropertyFactory(device=DeviceFactory(owner=device.owner), identifier="other")

    assert assert_json_ok(api.get(PROPERTIES)) == [
        {"property": "a", "name": "A", "description": "", "value": {"x": 1}},
        {"property": "b", "name": "", "description": "", "value": [1]},
    ]


def test_an_empty_list_is_a_json_array(api, device):
    assert assert_json_ok(api.get(PROPERTIES)) == []


def test_read_returns_the_object_with_value(api, device):
    PropertyFactory(device=device, identifier="state", name="State", value={"led": "on"})

    assert assert_json_ok(api.get(STATE)) == {
        "property": "state",
        "name": "State",
        "description": "",
        "value": {"led": "on"},
    }


def test_read_a_property_set_by_the_callback(api, device, callback_client):
    callback_configure(device, set_property=PropertyFactory(device=device, identifier="state"))

    callback_client.post(device, {"temperature": 21.5})

    assert assert_json_ok(api.get(STATE))["value"] == {"temperature": 21.5}


def test_unknown_property_is_404(api, owner, device, assert_json_error):
    PropertyFactory(device=DeviceFactory(owner=owner), identifier="state")  # another device's

    assert_json_error(api.get(STATE), 404)
    assert_json_error(send(api, "PUT", STATE, {"value": 1}), 404)
    assert_json_error(send(api, "PATCH", STATE, {"value": {}}), 404)
    assert_json_error(api.delete(STATE), 404)


def test_unknown_device_is_404(api, owner, assert_json_error):
    DeviceFactory(identifier="d1")  # another user's

    assert_json_error(api.get(PROPERTIES), 404)
    assert_json_error(send(api, "POST", PROPERTIES, {"property": "p", "value": 1}), 404)
    assert_json_error(api.get(STATE), 404)


# Replace (PUT) and merge (PATCH).


def test_put_replaces_the_value_and_keeps_name_and_description(api, device):
    PropertyFactory(device=device, identifier="state", name="S", description="D", value={"a": 1})

    body = assert_json_ok(send(api, "PUT", STATE, {"value": {"b": 2}}))

    assert body == {"property": "state", "name": "S", "description": "D", "value": {"b": 2}}
    assert values(device) == {"state": {"b": 2}}


def test_put_may_change_name_and_description(api, device):
    PropertyFactory(device=device, identifier="state", value=1)

    body = {"property": "state", "name": "New", "description": "Desc", "value": 2}

    assert assert_json_ok(send(api, "PUT", STATE, body)) == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "value"),
        ({"name": "only"}, "value"),
        ({"value": 1, "property": "renamed"}, "property"),
        ({"value": 1, "extra": True}, "extra"),
    ],
)
def test_put_validation_names_the_field(api, device, assert_json_error, body, field):
    PropertyFactory(device=device, identifier="state", value=1)

    message = assert_json_error(send(api, "PUT", STATE, body), 400)

    assert message.startswith(f"{field}:"), message
    assert values(device) == {"state": 1}


def test_patch_merges_into_an_object_value(api, device):
    PropertyFactory(
        device=device, identifier="state", value={"led": "on", "cfg": {"a": 1, "b": 2}, "x": 1}
    )

    body = assert_json_ok(
        send(api, "PATCH", STATE, {"value": {"led": "off", "cfg": {"b": 3}, "x": None, "new": [1]}})
    )

    expected = {"led": "off", "cfg": {"a": 1, "b": 3}, "new": [1]}
    assert body["value"] == expected
    assert values(device) == {"state": expected}


@pytest.mark.parametrize(
    ("current", "patch", "result"),
    [
        (5, {"a": 1}, {"a": 1}),
        ({"a": 1}, 7, 7),
        ({"a": 1}, [1, 2], [1, 2]),
        (None, {"a": 1}, {"a": 1}),
        ({"a": 1}, {}, {"a": 1}),
    ],
)
def test_patch_with_other_values_replaces(api, device, current, patch, result):
    PropertyFactory(device=device, identifier="state", value=current)

    assert assert_json_ok(send(api, "PATCH", STATE, {"value": patch}))["value"] == result


def test_patch_without_value_changes_only_name_and_description(api, device):
    PropertyFactory(device=device, identifier="state", value={"a": 1})

    body = assert_json_ok(send(api, "PATCH", STATE, {"name": "Renamed"}))

    assert (body["name"], body["value"]) == ("Renamed", {"a": 1})


def test_patch_validation_names_the_field(api, device, assert_json_error):
    PropertyFactory(device=device, identifier="state", value={"a": 1})

    message = assert_json_error(send(api, "PATCH", STATE, {"value": {}, "merge": True}), 400)

    assert message.startswith("merge:")


# Delete.


def test_delete_removes_the_property(api, device):
    PropertyFactory(device=device, identifier="state")
    PropertyFactory(device=device, identifier="other", value=1)

    assert_empty_ok(api.delete(STATE))

    assert values(device) == {"other": 1}


def test_delete_switches_off_the_actions_that_use_it(api, device, callback_client):
    state = PropertyFactory(device=device, identifier="state")
    reply = PropertyFactory(device=device, identifier="reply", value={"led": "on"})
    callback_configure(device, set_property=state, send_property=reply)

    assert_empty_ok(api.delete(STATE))
    assert_empty_ok(api.delete(f"{PROPERTIES}/reply"))

    callback = CallbackSettings.objects.get(device=device)
    assert (callback.set_property_id, callback.send_property_id) == (None, None)
    response = callback_client.post(device, {"n": 1})
    assert response.status_code == 200
    assert response.content == b""
    settings_read = assert_json_ok(api.get("/v3/users/alice/devices/d1/callback"))
    assert settings_read["actions"] == {}


# Who may.


def test_without_credentials_is_401(client, device, assert_json_error):
    PropertyFactory(device=device, identifier="state")

    assert_json_error(client.get(PROPERTIES), 401)
    assert_json_error(send(client, "POST", PROPERTIES, {"property": "p", "value": 1}), 401)
    assert_json_error(client.get(STATE), 401)
    assert_json_error(send(client, "PUT", STATE, {"value": 1}), 401)
    assert_json_error(client.delete(STATE), 401)


def test_another_users_device_is_403_and_staff_may_only_read(
    bearer_client, device, assert_json_error
):
    PropertyFactory(device=device, identifier="state", value=1)
    mallory = bearer_client(UserFactory(username="mallory"))
    staff = bearer_client(UserFactory(username="root", is_staff=True))

    assert_json_error(mallory.get(PROPERTIES), 403)
    assert_json_error(mallory.get(STATE), 403)
    assert_json_error(send(mallory, "PUT", STATE, {"value": 2}), 403)
    assert assert_json_ok(staff.get(STATE))["value"] == 1
    assert len(assert_json_ok(staff.get(PROPERTIES))) == 1
    assert_json_error(send(staff, "POST", PROPERTIES, {"property": "p", "value": 1}), 403)
    assert_json_error(send(staff, "PUT", STATE, {"value": 2}), 403)
    assert_json_error(send(staff, "PATCH", STATE, {"value": {}}), 403)
    assert_json_error(staff.delete(STATE), 403)
    assert values(device) == {"state": 1}


def test_a_body_nested_too_deeply_is_400(api, device, assert_json_error):
    body = '{"property": "p", "value": ' + "[" * 100_000 + "]" * 100_000 + "}"

    assert_json_error(api.post(PROPERTIES, body, content_type="application/json"), 400)
    assert values(device) == {}

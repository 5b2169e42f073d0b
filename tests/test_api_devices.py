"""Devices through the REST API: create, list, read, update, delete (SPEC 2), who may (SPEC 6),
paging and filters as clients use them (SPEC 9), and the reference's validation rules, each a
400 naming the field."""

import json

import pytest
from django.utils import timezone

from devices.models import (
    CallbackSettings,
    ConnectionEvent,
    Device,
    DeviceDailyStats,
    Property,
)
from devices.services import device_update
from devices.tokens import callback_token_for
from endpoints.models import EndpointCall
from tests.api_checks import assert_empty_ok, assert_json_ok
from tests.factories import (
    BucketFactory,
    ConnectionEventFactory,
    DeviceDailyStatsFactory,
    DeviceFactory,
    EndpointCallFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db

HTTP_DEVICE = {
    "device": "http_device",
    "type": "HTTP",
    "name": "SN0300301",
    "description": "HTTP Device",
    "enabled": True,
}
ITEM_KEYS = {
    "device",
    "name",
    "description",
    "type",
    "enabled",
    "created",
    "modified",
    "connection",
}


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def api(bearer_client, owner):
    return bearer_client(owner)


def create(api, body, user="alice"):
    return api.post(f"/v1/users/{user}/devices", body, content_type="application/json")


def update(api, device, body, user="alice"):
    return api.put(f"/v1/users/{user}/devices/{device}", body, content_type="application/json")


def listing(api, query="", user="alice"):
    response = api.get(f"/v1/users/{user}/devices{query}")
    assert response.status_code == 200, response.content
    return response.json()


# Create.


def test_create_answers_200_with_the_device(api, owner):
    body = assert_json_ok(create(api, HTTP_DEVICE))

    assert set(body) == ITEM_KEYS
    assert {key: body[key] for key in HTTP_DEVICE} == HTTP_DEVICE
    assert body["connection"] == {"active": False, "ts": None}
    assert isinstance(body["created"], int)
    assert isinstance(body["modified"], int)
    device = Device.objects.get(owner=owner, identifier="http_device")
    assert (device.name, device.description, device.enabled) == ("SN0300301", "HTTP Device", True)
    assert CallbackSettings.objects.filter(device=device).exists()


def test_create_with_only_the_id(api, owner):
    body = assert_json_ok(create(api, {"device": "d1"}))

    assert body["type"] == "HTTP"
    assert body["enabled"] is True
    assert body["name"] == ""


def test_create_as_the_http_device_plugin_does(api):
    """The reference's optional asset fields are accepted (and not kept)."""
    body = {**HTTP_DEVICE, "asset_type": "sensors", "asset_group": "greenhouse", "product": "meteo"}

    response = create(api, body)

    assert "asset_type" not in assert_json_ok(response)


def test_create_with_empty_asset_fields(api):
    body = {**HTTP_DEVICE, "asset_type": None, "asset_group": "", "product": None}

    assert_json_ok(create(api, body))


@pytest.mark.parametrize("kind", ["Generic", "MQTT", "Virtual", "http", 5])
def test_other_device_types_are_400_saying_only_http(api, assert_json_error, kind):
    body = {**HTTP_DEVICE, "type": kind, "credentials": "juvWgl9@y3CW"}

    message = assert_json_error(create(api, body), 400)

    assert message.startswith("type:")
    assert "HTTP" in message
    assert not Device.objects.exists()


def test_credentials_are_400_for_an_http_device(api, assert_json_error):
    message = assert_json_error(create(api, {**HTTP_DEVICE, "credentials": "secret12"}), 400)

    assert message.startswith("credentials:")


def test_duplicate_id_is_400(api, owner, assert_json_error):
    DeviceFactory(owner=owner, identifier="http_device")

    message = assert_json_error(create(api, HTTP_DEVICE), 400)

    assert message.startswith("device:")
    assert Device.objects.filter(owner=owner).count() == 1


def test_same_id_as_another_users_device_is_fine(api):
    DeviceFactory(identifier="http_device")

    assert_json_ok(create(api, HTTP_DEVICE))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "no id"}, "device"),
        ({"device": ""}, "device"),
        ({"device": "bad.id"}, "device"),
        ({"device": "x" * 33}, "device"),
        ({"device": 12}, "device"),
        ({"device": "d1", "name": "n" * 256}, "name"),
        ({"device": "d1", "name": 5}, "name"),
        ({"device": "d1", "description": "d" * 256}, "description"),
        ({"device": "d1", "enabled": "true"}, "enabled"),
        ({"device": "d1", "enabled": 1}, "enabled"),
        ({"device": "d1", "asset_type": "bad id"}, "asset_type"),
        ({"device": "d1", "colour": "red"}, "colour"),
    ],
)
def test_create_validation_names_the_field(api, assert_json_error, body, field):
    message = assert_json_error(create(api, body), 400)

    assert message.startswith(f"{field}:"), message
    assert not Device.objects.exists()


@pytest.mark.parametrize("body", [[HTTP_DEVICE], "http_device", None])
def test_create_body_must_be_an_object(api, assert_json_error, body):
    assert_json_error(create(api, json.dumps(body)), 400)


def test_form_encoded_body_is_refused(api, assert_json_error):
    response = api.post(
        "/v1/users/alice/devices", "device=d1", content_type="application/x-www-form-urlencoded"
    )

    assert_json_error(response, 415)


# List, paging and filters.


def test_list_returns_the_owners_devices_sorted_by_id(api, owner):
    DeviceFactory(owner=owner, identifier="b", name="Beta")
    DeviceFactory(owner=owner, identifier="a", name="Alpha", description="first")
    DeviceFactory(identifier="c")  # another user's

    items = listing(api)

    assert [item["device"] for item in items] == ["a", "b"]
    assert set(items[0]) == ITEM_KEYS
    assert items[0]["name"] == "Alpha"
    assert items[0]["description"] == "first"
    assert items[0]["type"] == "HTTP"
    assert items[0]["connection"] == {"active": False, "ts": None}


def test_list_shows_the_connection_state(api, owner):
    now = timezone.now().replace(microsecond=0)
    DeviceFactory(owner=owner, identifier="on", connected=True, connected_at=now, last_call_at=now)
    DeviceFactory(owner=owner, identifier="off", connected=False, last_call_at=now, timeout_at=now)
    ms = int(now.timestamp() * 1000)

    items = {item["device"]: item["connection"] for item in listing(api)}

    assert items == {"off": {"active": False, "ts": ms}, "on": {"active": True, "ts": ms}}


def test_an_empty_list_is_a_json_array(api):
    response = api.get("/v1/users/alice/devices")

    assert assert_json_ok(response) == []


def test_paging_with_count_and_index_ends_with_a_short_page(api, owner):
    for n in range(7):
        DeviceFactory(owner=owner, identifier=f"d{n}")

    pages, index = [], 0
    while True:  # as clients do: loop while the page is full
        page = listing(api, f"?count=3&index={index}")
        pages.append([item["device"] for item in page])
        index += len(page)
        if len(page) < 3:
            break

    assert pages == [["d0", "d1", "d2"], ["d3", "d4", "d5"], ["d6"]]


def test_paging_past_the_end_is_empty(api, owner):
    DeviceFactory(owner=owner, identifier="d0")

    assert listing(api, "?count=3&index=3") == []


def test_paging_when_the_last_page_would_be_full_returns_an_empty_one(api, owner):
    for n in range(4):
        DeviceFactory(owner=owner, identifier=f"d{n}")

    assert len(listing(api, "?count=2&index=2")) == 2
    assert listing(api, "?count=2&index=4") == []


def test_filters_by_name_type_and_id(api, owner):
    DeviceFactory(owner=owner, identifier="greenhouse-1", name="Temperature sensor")
    DeviceFactory(owner=owner, identifier="greenhouse-2", name="Humidity sensor")
    DeviceFactory(owner=owner, identifier="garage", name="Door")

    def ids(query):
        return [item["device"] for item in listing(api, query)]

    assert ids("?name=SENSOR") == ["greenhouse-1", "greenhouse-2"]
    assert ids("?name=humid") == ["greenhouse-2"]
    assert ids("?id=greenhouse") == ["greenhouse-1", "greenhouse-2"]
    assert ids("?id=garage&name=door") == ["garage"]
    assert ids("?type=HTTP") == ["garage", "greenhouse-1", "greenhouse-2"]
    assert ids("?type=MQTT") == []
    assert ids("?name=nothing") == []


def test_empty_and_unknown_parameters_are_ignored(api, owner):
    DeviceFactory(owner=owner, identifier="d0")
    DeviceFactory(owner=owner, identifier="d1")

    items = listing(api, "?count=&index=&name=&type=&id=&asset_type=x&sort=name&order=asc&")

    assert [item["device"] for item in items] == ["d0", "d1"]


def test_huge_paging_numbers_mean_all_and_past_the_end(api, owner):
    DeviceFactory(owner=owner, identifier="d0")

    assert len(listing(api, f"?count={10**30}")) == 1
    assert listing(api, f"?count=5&index={10**30}") == []


@pytest.mark.parametrize(("query", "field"), [("?count=abc", "count"), ("?index=-1", "index")])
def test_bad_paging_parameters_are_400(api, assert_json_error, query, field):
    message = assert_json_error(api.get(f"/v1/users/alice/devices{query}"), 400)

    assert message.startswith(f"{field}:")


# Read, update, delete.


def test_read_returns_the_item_with_connection_details(api, owner):
    now = timezone.now().replace(microsecond=0)
    device = DeviceFactory(
        owner=owner,
        identifier="d1",
        connected=True,
        connected_at=now,
        last_call_at=now,
        remote_ip="192.0.2.7",
    )
    callback_configure(device, timeout=15)
    ms = int(now.timestamp() * 1000)

    body = assert_json_ok(api.get("/v1/users/alice/devices/d1"))

    assert set(body) == ITEM_KEYS
    assert body["device"] == "d1"
    assert body["connection"] == {
        "active": True,
        "ts": ms,
        "ip_address": "192.0.2.7",
        "last_call": ms,
        "timeout": 15,
    }


def test_unknown_device_is_404(api, owner, assert_json_error):
    DeviceFactory(identifier="d1")  # another user's

    assert_json_error(api.get("/v1/users/alice/devices/d1"), 404)
    assert_json_error(update(api, "d1", {"name": "x"}), 404)
    assert_json_error(api.delete("/v1/users/alice/devices/d1"), 404)


def test_update_is_partial(api, owner):
    device = DeviceFactory(owner=owner, identifier="d1", name="Old", description="keep")

    body = assert_json_ok(update(api, "d1", {"name": "New"}))

    assert body["name"] == "New"
    assert body["description"] == "keep"
    device.refresh_from_db()
    assert (device.name, device.description, device.enabled) == ("New", "keep", True)


def test_update_can_disable_the_device(api, owner, callback_client):
    device = DeviceFactory(owner=owner, identifier="d1")

    assert assert_json_ok(update(api, "d1", {"enabled": False}))["enabled"] is False

    assert callback_client.post(device, {"n": 1}).status_code == 403


def test_update_as_the_references_full_update_example(api, owner):
    DeviceFactory(owner=owner, identifier="http_device")
    body = {**HTTP_DEVICE, "asset_group": "AssetGroup", "asset_type": "", "enabled": False}

    assert assert_json_ok(update(api, "http_device", body))["enabled"] is False


def test_update_keeps_the_connection_state_written_meanwhile(api, owner):
    """The update writes only its own columns: a callback's connection state is not undone."""
    device = DeviceFactory(owner=owner, identifier="d1")
    Device.objects.filter(pk=device.pk).update(connected=True, remote_ip="192.0.2.9")

    device_update(device=device, name="Renamed")  # device is the stale instance

    device.refresh_from_db()
    assert (device.name, device.connected, device.remote_ip) == ("Renamed", True, "192.0.2.9")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"device": "other"}, "device"),
        ({"type": "MQTT"}, "type"),
        ({"name": None}, "name"),
        ({"enabled": "no"}, "enabled"),
        ({"credentials": "secret12"}, "credentials"),
        ({"connected": True}, "connected"),
    ],
)
def test_update_validation_names_the_field(api, owner, assert_json_error, body, field):
    DeviceFactory(owner=owner, identifier="d1", name="Same")

    message = assert_json_error(update(api, "d1", body), 400)

    assert message.startswith(f"{field}:"), message
    assert Device.objects.get(identifier="d1").name == "Same"


def test_delete_removes_the_device_and_what_belongs_to_it(api, owner):
    device = DeviceFactory(owner=owner, identifier="d1")
    bucket = BucketFactory(owner=owner)
    endpoint = EndpointFactory(owner=owner)
    callback_configure(
        device,
        write_bucket=bucket,
        call_endpoint=endpoint,
        set_property=PropertyFactory(device=device),
    )
    DeviceDailyStatsFactory(device=device)
    ConnectionEventFactory(device=device)
    call = EndpointCallFactory(endpoint=endpoint, device=device)
    other = DeviceFactory(owner=owner, identifier="d2")
    PropertyFactory(device=other)

    assert_empty_ok(api.delete("/v1/users/alice/devices/d1"))

    assert list(Device.objects.values_list("identifier", flat=True)) == ["d2"]
    assert not CallbackSettings.objects.filter(device_id=device.pk).exists()
    assert list(Property.objects.values_list("device_id", flat=True)) == [other.pk]
    assert not DeviceDailyStats.objects.exists()
    assert not ConnectionEvent.objects.exists()
    bucket.refresh_from_db()  # the owner's bucket and endpoint stay
    endpoint.refresh_from_db()
    assert EndpointCall.objects.get(pk=call.pk).device_id is None


def test_a_deleted_devices_callback_is_404(api, owner, callback_client, assert_json_error):
    device = DeviceFactory(owner=owner, identifier="d1")

    assert_empty_ok(api.delete("/v1/users/alice/devices/d1"))

    assert_json_error(callback_client.post(device, {"n": 1}), 404)


# Who may.


def test_without_credentials_is_401(client, owner, assert_json_error):
    DeviceFactory(owner=owner, identifier="d1")

    assert_json_error(client.get("/v1/users/alice/devices"), 401)
    assert_json_error(create(client, HTTP_DEVICE), 401)
    assert_json_error(client.get("/v1/users/alice/devices/d1"), 401)
    assert_json_error(update(client, "d1", {"name": "x"}), 401)
    assert_json_error(client.delete("/v1/users/alice/devices/d1"), 401)


def test_a_device_token_is_not_an_api_credential(client, owner, assert_json_error):
    device = DeviceFactory(owner=owner, identifier="d1")
    headers = {"Authorization": f"Bearer {callback_token_for(device)}"}

    assert_json_error(client.get("/v1/users/alice/devices/d1", headers=headers), 401)


def test_another_users_devices_are_403(bearer_client, owner, assert_json_error):
    DeviceFactory(owner=owner, identifier="d1", name="Same")
    mallory = bearer_client(UserFactory(username="mallory"))

    assert_json_error(mallory.get("/v1/users/alice/devices"), 403)
    assert_json_error(create(mallory, HTTP_DEVICE), 403)
    assert_json_error(mallory.get("/v1/users/alice/devices/d1"), 403)
    assert_json_error(update(mallory, "d1", {"name": "x"}), 403)
    assert_json_error(mallory.delete("/v1/users/alice/devices/d1"), 403)
    assert list(Device.objects.values_list("name", flat=True)) == ["Same"]


def test_staff_may_read_but_not_write(bearer_client, owner, assert_json_error):
    DeviceFactory(owner=owner, identifier="d1", name="Same")
    staff = bearer_client(UserFactory(username="root", is_staff=True))

    assert [item["device"] for item in assert_json_ok(staff.get("/v1/users/alice/devices"))] == [
        "d1"
    ]
    assert assert_json_ok(staff.get("/v1/users/alice/devices/d1"))["device"] == "d1"
    assert_json_error(create(staff, HTTP_DEVICE), 403)
    assert_json_error(update(staff, "d1", {"name": "x"}), 403)
    assert_json_error(staff.delete("/v1/users/alice/devices/d1"), 403)
    assert Device.objects.get().name == "Same"


def test_unknown_user_is_404_for_staff(bearer_client, assert_json_error):
    staff = bearer_client(UserFactory(username="root", is_staff=True))

    assert_json_error(staff.get("/v1/users/nobody/devices"), 404)


def test_the_console_session_works_for_the_owner(client, owner):
    client.force_login(owner)

    body = assert_json_ok(create(client, HTTP_DEVICE))

    assert body["device"] == "http_device"
    assert [item["device"] for item in listing(client)] == ["http_device"]


def test_a_scoped_token_is_limited_to_its_actions(api, owner, client, assert_json_error):
    DeviceFactory(owner=owner, identifier="d1")
    DeviceFactory(owner=owner, identifier="d2")
    token = api.post(
        "/v1/users/alice/tokens",
        {
            "token": "reader",
            "name": "Reader",
            "enabled": True,
            "allow": {"Device": {"d1": ["ReadDeviceStatus"], "*": "ListDevices"}},
        },
        content_type="application/json",
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    assert client.get("/v1/users/alice/devices", headers=headers).status_code == 200
    assert client.get("/v1/users/alice/devices/d1", headers=headers).status_code == 200
    assert_json_error(client.get("/v1/users/alice/devices/d2", headers=headers), 403)
    message = assert_json_error(
        client.put(
            "/v1/users/alice/devices/d1",
            {"name": "x"},
            content_type="application/json",
            headers=headers,
        ),
        403,
    )
    assert "UpdateDevice" in message

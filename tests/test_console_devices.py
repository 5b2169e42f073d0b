"""Console pages for devices: list, search, create, edit, delete, the dashboard's tabs, the
callback settings, properties, and the JSON views the pages poll."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import Device, Property
from devices.tokens import callback_token_for
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    ConnectionEventFactory,
    DeviceDailyStatsFactory,
    DeviceFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def page(console, name, *args, **params):
    response = console.get(reverse(name, args=args), params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


# List.


def test_empty_list_says_what_to_do(console):
    body = page(console, "console-device-list")

    assert "No devices yet" in body
    assert reverse("console-device-create") in body


def test_list_shows_id_name_type_status_and_last_call(console, user):
    now = timezone.now()
    DeviceFactory(owner=user, identifier="never1", name="Fresh")
    DeviceFactory(owner=user, identifier="live1", connected=True, last_call_at=now)
    DeviceFactory(owner=user, identifier="gone1", connected=False, last_call_at=now)

    body = page(console, "console-device-list")

    assert "never1" in body and "Fresh" in body
    assert "HTTP Device (Sigfox, LoRa, cURL)" in body
    assert 'class="dot dot-connected"' in body
    assert 'class="dot dot-disconnected"' in body
    assert 'class="dot dot-never"' in body
    assert ">Connected<" in body and ">Disconnected<" in body and ">Never seen<" in body
    assert "3 devices" in body


def test_list_keeps_a_long_name_and_the_type_on_one_line(console, user):
    """A 255-character name and description are cut with an ellipsis (CSS: ``truncate``), the
    whole text in their title; the type never wraps."""
    name = ("Greenhouse north wall, upper shelf " * 8)[:255]
    DeviceFactory(owner=user, identifier="long1", name=name, description=name)

    body = page(console, "console-device-list")

    assert f'<span class="truncate" title="{name}">{name}</span>' in body
    assert f'<span class="sub truncate" title="{name}">{name}</span>' in body
    type_label = "HTTP Device (Sigfox, LoRa, cURL)"
    assert f'<span class="truncate type-label" title="{type_label}">{type_label}</span>' in body


def test_list_search_matches_id_or_name(console, user):
    DeviceFactory(owner=user, identifier="greenhouse", name="Tomatoes")
    DeviceFactory(owner=user, identifier="garage", name="Door sensor")

    by_id = page(console, "console-device-list", q="green")
    by_name = page(console, "console-device-list", q="door")
    nothing = page(console, "console-device-list", q="zzz")

    assert "greenhouse" in by_id and "garage" not in by_id
    assert "garage" in by_name and "greenhouse" not in by_name
    assert "No device matches your search" in nothing


def test_list_status_json_gives_fragments(console, user):
    DeviceFactory(owner=user, identifier="live1", connected=True, last_call_at=timezone.now())

    data = console.get(reverse("console-device-list-status")).json()

    assert "dot-connected" in data["fragments"]["status-live1"]
    assert "<time" in data["fragments"]["last-live1"]


# Create.


def test_create_form_has_the_fields(console):
    body = page(console, "console-device-create")

    for label in ("Device ID", "Device Name", "Description", "Device Type"):
        assert label in body
    assert "HTTP Device (Sigfox, LoRa, cURL)" in body


def test_create_device(console, user):
    response = console.post(
        reverse("console-device-create"),
        {"identifier": "sensor1", "name": "Sensor", "description": "Roof", "type": "HTTP"},
    )

    device = Device.objects.get(owner=user, identifier="sensor1")
    assert response.status_code == 302
    assert response["Location"] == reverse("console-device-callback", args=["sensor1"])
    assert (device.name, device.description, device.enabled) == ("Sensor", "Roof", True)
    assert device.callback.timeout == 10
    followed = console.get(response["Location"]).content.decode()
    assert "Device sensor1 created" in followed


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        ("", "This field is required."),
        ("has space", "Use 1 to 32 letters, digits, &#x27;_&#x27; or &#x27;-&#x27;."),
        ("x" * 33, "Ensure this value has at most 32 characters"),
    ],
)
def test_create_refuses_a_bad_id_with_a_field_error(console, identifier, message):
    response = console.post(reverse("console-device-create"), {"identifier": identifier})

    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'id="field-identifier"' in response.content.decode()
    assert not Device.objects.exists()


def test_create_refuses_a_duplicate_id_on_the_id_field(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    response = console.post(
        reverse("console-device-create"), {"identifier": "sensor1", "type": "HTTP"}
    )

    form = response.context["form"]
    assert form.errors["identifier"] == ["You already have a device with this ID."]


def test_another_user_may_use_the_same_id(console, user):
    DeviceFactory(identifier="sensor1")

    response = console.post(
        reverse("console-device-create"), {"identifier": "sensor1", "type": "HTTP"}
    )

    assert response.status_code == 302
    assert Device.objects.filter(identifier="sensor1").count() == 2


# Edit and delete.


def test_edit_device(console, user):
    DeviceFactory(owner=user, identifier="sensor1", name="Old")

    form = page(console, "console-device-edit", "sensor1")
    response = console.post(
        reverse("console-device-edit", args=["sensor1"]), {"name": "New", "description": "D"}
    )

    assert 'value="Old"' in form
    assert response["Location"] == reverse("console-device", args=["sensor1"])
    device = Device.objects.get(identifier="sensor1")
    assert (device.name, device.description, device.enabled) == ("New", "D", False)


def test_delete_device(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    response = console.post(reverse("console-device-delete", args=["sensor1"]))

    assert response["Location"] == reverse("console-device-list")
    assert not Device.objects.exists()


def test_dashboard_has_a_delete_confirmation(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    body = page(console, "console-device", "sensor1")

    assert 'data-dialog="delete-device"' in body
    assert 'id="delete-device"' in body
    assert reverse("console-device-delete", args=["sensor1"]) in body


# Dashboard: Overview.


def test_overview_shows_status_totals_chart_and_events(console, user):
    now = timezone.now()
    device = DeviceFactory(
        owner=user,
        identifier="sensor1",
        connected=True,
        connected_at=now,
        last_call_at=now,
        remote_ip="203.0.113.7",
    )
    DeviceDailyStatsFactory(
        device=device, date=timezone.localdate(), calls=3, rx_bytes=2048, tx_bytes=10
    )
    ConnectionEventFactory(device=device, remote_ip="203.0.113.7")

    response = console.get(reverse("console-device", args=["sensor1"]))
    body = response.content.decode()

    assert "Daily Data Transmission" in body
    assert "203.0.113.7" in body
    assert "2.0\xa0KB" in body
    chart = json.loads(body.split('id="traffic-data" type="application/json">')[1].split("<")[0])
    assert len(chart["labels"]) == 30
    assert chart["calls"][-1] == 3 and chart["rx"][-1] == 2048
    assert 'class="tabs"' in body
    assert response.context["tab"] == "overview"


def test_overview_of_a_new_device_says_it_waits(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    body = page(console, "console-device", "sensor1")

    assert "waiting for its first call" in body
    assert "No connection events yet" in body


def test_device_status_json(console, user):
    now = timezone.now()
    device = DeviceFactory(owner=user, identifier="sensor1", connected=True, last_call_at=now)
    DeviceDailyStatsFactory(device=device, date=timezone.localdate(), calls=5)

    data = console.get(reverse("console-device-status", args=["sensor1"])).json()

    assert data["status"] == "connected"
    assert "dot-connected" in data["fragments"]["status"]
    assert data["fragments"]["calls"] == "5"
    assert data["charts"]["traffic"]["calls"][-1] == 5


# Dashboard: Callback.


def test_callback_overview_shows_url_token_curl_and_postman(console, user, settings):
    settings.PUBLIC_URL = "https://iot.example.com"
    device = DeviceFactory(owner=user, identifier="sensor1")
    token = callback_token_for(device)
    url = "https://iot.example.com/v3/users/alice/devices/sensor1/callback/data"

    response = console.get(reverse("console-device-callback", args=["sensor1"]))
    body = response.content.decode()

    assert f'value="{url}"' in body
    assert f'value="{token}"' in body
    assert f'value="{url}?authorization={token}"' in body
    assert f"curl -i -X POST {url}" in body
    assert f"Authorization: Bearer {token}" in body
    assert "Postman" in body
    assert "temperature" in body  # the sample body
    assert 'data-copy="#callback-token"' in body
    assert response.context["subtab"] == "overview"


def test_callback_overview_opened_at_another_address_says_so(console, user, settings):
    """The URLs shown are PUBLIC_URL's (what devices are given); opened at another address, the
    page says so and gives the URL on that address too."""
    settings.PUBLIC_URL = "https://iot.example.com"
    DeviceFactory(owner=user, identifier="sensor1")
    path = "/v3/users/alice/devices/sensor1/callback/data"

    response = console.get(
        reverse("console-device-callback", args=["sensor1"]), HTTP_HOST="192.168.1.20:8000"
    )
    body = response.content.decode()

    assert f'id="callback-url" value="https://iot.example.com{path}"' in body
    assert 'id="other-address"' in body
    assert 'You opened the console at <span class="mono">http://192.168.1.20:8000</span>' in body
    assert f'id="callback-url-here" value="http://192.168.1.20:8000{path}"' in body
    assert response.context["other_address"] == {
        "base": "http://192.168.1.20:8000",
        "url": f"http://192.168.1.20:8000{path}",
    }


@pytest.mark.parametrize(
    ("public_url", "host", "secure"),
    [
        ("https://iot.example.com", "iot.example.com", True),
        ("https://iot.example.com", "IOT.example.com:443", True),
        # Behind a proxy that ends TLS and says nothing: the same host is the same address.
        ("https://iot.example.com", "iot.example.com", False),
        ("http://localhost:8000", "localhost:8000", False),
    ],
)
def test_callback_overview_at_public_url_has_no_note(
    console, user, settings, public_url, host, secure
):
    settings.PUBLIC_URL = public_url
    DeviceFactory(owner=user, identifier="sensor1")

    response = console.get(
        reverse("console-device-callback", args=["sensor1"]), HTTP_HOST=host, secure=secure
    )

    assert response.context["other_address"] is None
    assert 'id="other-address"' not in response.content.decode()


@pytest.mark.parametrize(
    ("public_url", "host"),
    [("http://localhost:8000", "127.0.0.1:8000"), ("http://localhost:8000", "localhost:8001")],
)
def test_another_host_or_port_is_another_address(console, user, settings, public_url, host):
    settings.PUBLIC_URL = public_url
    DeviceFactory(owner=user, identifier="sensor1")

    response = console.get(reverse("console-device-callback", args=["sensor1"]), HTTP_HOST=host)

    assert response.context["other_address"]["base"] == f"http://{host}"


def test_callback_example_body_is_the_last_record(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    bucket = BucketFactory(owner=user, identifier="b1")
    BucketRecordFactory(bucket=bucket, ts=1, value={"old": 1})
    BucketRecordFactory(bucket=bucket, ts=2, value={"humidity": 77})
    callback_configure(device, write_bucket=bucket)

    response = console.get(reverse("console-device-callback", args=["sensor1"]))

    assert json.loads(response.context["body"]) == {"humidity": 77}
    assert "-d '{\"humidity\":77}'" in response.context["curl"]


def test_callback_example_body_is_the_set_property_value(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    prop = PropertyFactory(device=device, identifier="state", value={"led": "on"})
    callback_configure(device, set_property=prop)

    response = console.get(reverse("console-device-callback", args=["sensor1"]))

    assert json.loads(response.context["body"]) == {"led": "on"}


def test_curl_quotes_single_quotes(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    prop = PropertyFactory(device=device, identifier="state", value={"msg": "it's"})
    callback_configure(device, set_property=prop)

    response = console.get(reverse("console-device-callback", args=["sensor1"]))

    assert """-d '{"msg":"it'"'"'s"}'""" in response.context["curl"]


def test_rotate_token(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    before = callback_token_for(device)

    response = console.post(reverse("console-device-token-rotate", args=["sensor1"]))

    device.refresh_from_db()
    assert response["Location"] == reverse("console-device-callback", args=["sensor1"])
    assert callback_token_for(device) != before
    assert "old one stops working" in console.get(response["Location"]).content.decode()


# Dashboard: Callback settings.


def test_settings_lists_the_users_buckets_endpoints_and_the_devices_properties(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    BucketFactory(owner=user, identifier="mybucket")
    BucketFactory(identifier="otherbucket")
    EndpointFactory(owner=user, identifier="myendpoint")
    PropertyFactory(device=device, identifier="myprop")
    PropertyFactory(device=DeviceFactory(owner=user), identifier="otherprop")

    body = page(console, "console-device-callback-settings", "sensor1")

    assert 'value="mybucket"' in body and "otherbucket" not in body
    assert 'value="myendpoint"' in body
    assert 'value="myprop"' in body and "otherprop" not in body


def test_settings_without_choices_link_to_creating_them(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    body = page(console, "console-device-callback-settings", "sensor1")

    assert "You have no buckets yet" in body
    assert "You have no endpoints yet" in body
    assert "This device has no properties yet" in body


def test_save_settings(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    bucket = BucketFactory(owner=user, identifier="b1")
    endpoint = EndpointFactory(owner=user, identifier="e1")
    prop = PropertyFactory(device=device, identifier="state")

    response = console.post(
        reverse("console-device-callback-settings", args=["sensor1"]),
        {
            "write_bucket_on": "on",
            "write_bucket": "b1",
            "set_property_on": "on",
            "set_property": "state",
            "call_endpoint_on": "on",
            "call_endpoint": "e1",
            "send_property_on": "on",
            "send_property": "state",
            "timeout": "15",
        },
    )

    assert response.status_code == 302
    callback = Device.objects.get(pk=device.pk).callback
    assert callback.write_bucket == bucket
    assert callback.set_property == prop
    assert callback.call_endpoint == endpoint
    assert callback.send_property == prop
    assert callback.timeout == 15
    body = page(console, "console-device-callback-settings", "sensor1")
    assert "Callback settings saved." in body
    assert 'name="write_bucket_on"' in body and "checked" in body


def test_unticked_actions_are_switched_off(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    callback_configure(device, write_bucket=BucketFactory(owner=user, identifier="b1"))

    console.post(
        reverse("console-device-callback-settings", args=["sensor1"]),
        {"write_bucket": "b1", "timeout": "10"},
    )

    assert Device.objects.get(pk=device.pk).callback.write_bucket is None


def test_ticked_action_without_a_choice_is_an_inline_error(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    response = console.post(
        reverse("console-device-callback-settings", args=["sensor1"]),
        {"write_bucket_on": "on", "write_bucket": "", "timeout": "0"},
    )

    errors = response.context["form"].errors
    assert errors["write_bucket"] == ["Choose a bucket, or untick this action."]
    assert errors["timeout"] == ["Ensure this value is greater than or equal to 1."]
    assert "Choose a bucket, or untick this action." in response.content.decode()


def test_settings_cannot_choose_another_users_bucket(console, user):
    DeviceFactory(owner=user, identifier="sensor1")
    BucketFactory(identifier="theirs")

    response = console.post(
        reverse("console-device-callback-settings", args=["sensor1"]),
        {"write_bucket_on": "on", "write_bucket": "theirs", "timeout": "10"},
    )

    assert response.status_code == 200
    assert "write_bucket" in response.context["form"].errors


# Dashboard: Properties.


def test_properties_empty_state(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    body = page(console, "console-device-properties", "sensor1")

    assert "No properties yet" in body
    assert reverse("console-property-create", args=["sensor1"]) in body


def test_property_list_shows_values_and_a_badge(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    PropertyFactory(device=device, identifier="state", value={"led": "on"})

    response = console.get(reverse("console-device-properties", args=["sensor1"]))
    body = response.content.decode()

    assert "state" in body
    assert "{&quot;led&quot;: &quot;on&quot;}" in body
    assert '<span class="count">1</span>' in body
    assert response.context["tab"] == "properties"


def test_add_property(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")

    response = console.post(
        reverse("console-property-create", args=["sensor1"]),
        {"identifier": "state", "name": "State", "value": '{"led": "on"}'},
    )

    assert response["Location"] == reverse("console-device-properties", args=["sensor1"])
    prop = Property.objects.get(device=device)
    assert (prop.identifier, prop.name, prop.value) == ("state", "State", {"led": "on"})


def test_add_property_with_bad_json_says_why(console, user):
    DeviceFactory(owner=user, identifier="sensor1")

    response = console.post(
        reverse("console-property-create", args=["sensor1"]),
        {"identifier": "state", "value": "{led: on}"},
    )

    assert response.status_code == 200
    [error] = response.context["form"].errors["value"]
    assert error.startswith("This is not valid JSON: Expecting property name enclosed in double")
    assert "line 1, column 2" in error
    assert not Property.objects.exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "This is not valid JSON: NaN is not a JSON number (line 1, column 1)."),
        (
            '{"low": -Infinity}',
            "This is not valid JSON: -Infinity is not a JSON number (line 1, column 9).",
        ),
        (
            '{\n  "label": "Infinity",\n  "high": Infinity\n}',
            "This is not valid JSON: Infinity is not a JSON number (line 3, column 11).",
        ),
        (
            '{"big": 1e400}',
            "This JSON cannot be stored: the number 1e400 is too large (line 1, column 9).",
        ),
        (
            "[" + "9" * 5000 + "]",
            f"This JSON cannot be stored: the number {'9' * 20}… is too large (line 1, column 2).",
        ),
        ("[" * 100_000, "This JSON cannot be stored: it is nested too deeply."),
    ],
)
def test_property_value_json_cannot_hold_says_what_and_where(console, user, value, message):
    """NaN and Infinity (which Python would read), numbers too large and nesting too deep are
    explained like any other JSON mistake, on the field, never a 500."""
    DeviceFactory(owner=user, identifier="sensor1")

    response = console.post(
        reverse("console-property-create", args=["sensor1"]),
        {"identifier": "state", "value": value},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["value"] == [message]
    assert not Property.objects.exists()


def test_add_duplicate_property(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    PropertyFactory(device=device, identifier="state")

    response = console.post(
        reverse("console-property-create", args=["sensor1"]), {"identifier": "state"}
    )

    assert response.context["form"].errors["identifier"] == [
        "This device already has a property with this ID."
    ]


def test_edit_property_value(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    PropertyFactory(device=device, identifier="state", value={"led": "on"})

    form = page(console, "console-property-edit", "sensor1", "state")
    response = console.post(
        reverse("console-property-edit", args=["sensor1", "state"]),
        {"name": "Lamp", "value": "42"},
    )

    assert "&quot;led&quot;: &quot;on&quot;" in form
    assert response.status_code == 302
    prop = Property.objects.get(device=device)
    assert (prop.name, prop.value) == ("Lamp", 42)


def test_empty_value_is_null(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    PropertyFactory(device=device, identifier="state", value=1)

    console.post(reverse("console-property-edit", args=["sensor1", "state"]), {"value": "  "})

    assert Property.objects.get(device=device).value is None


def test_delete_property(console, user):
    device = DeviceFactory(owner=user, identifier="sensor1")
    PropertyFactory(device=device, identifier="state")

    response = console.post(reverse("console-property-delete", args=["sensor1", "state"]))

    assert response.status_code == 302
    assert not Property.objects.exists()


# Isolation: another user's device does not exist for you.


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("console-device", ["theirs"]),
        ("console-device-status", ["theirs"]),
        ("console-device-edit", ["theirs"]),
        ("console-device-callback", ["theirs"]),
        ("console-device-callback-settings", ["theirs"]),
        ("console-device-properties", ["theirs"]),
        ("console-property-create", ["theirs"]),
        ("console-property-edit", ["theirs", "prop"]),
    ],
)
def test_another_users_device_is_404(console, name, args):
    PropertyFactory(device=DeviceFactory(identifier="theirs"), identifier="prop")

    assert console.get(reverse(name, args=args)).status_code == 404


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("console-device-delete", ["theirs"]),
        ("console-device-token-rotate", ["theirs"]),
        ("console-property-delete", ["theirs", "prop"]),
        ("console-device-edit", ["theirs"]),
    ],
)
def test_another_users_device_cannot_be_changed(console, name, args):
    device = DeviceFactory(identifier="theirs", name="Theirs")
    PropertyFactory(device=device, identifier="prop")
    generation = device.token_generation

    response = console.post(reverse(name, args=args), {"name": "Mine"})

    assert response.status_code == 404
    device.refresh_from_db()
    assert (device.name, device.token_generation) == ("Theirs", generation)
    assert Property.objects.filter(device=device).exists()


def test_list_shows_only_own_devices(console, user):
    DeviceFactory(owner=user, identifier="mine")
    DeviceFactory(identifier="theirs")

    body = page(console, "console-device-list")
    status = console.get(reverse("console-device-list-status")).json()

    assert "mine" in body and "theirs" not in body
    assert list(status["fragments"]) == ["status-mine", "last-mine"]


def test_property_of_a_device_is_not_found_through_another_device(console, user):
    DeviceFactory(owner=user, identifier="mine")
    PropertyFactory(device=DeviceFactory(owner=user, identifier="other"), identifier="prop")

    response = console.get(reverse("console-property-edit", args=["mine", "prop"]))

    assert response.status_code == 404


def test_disconnected_device_note(console, user):
    DeviceFactory(
        owner=user,
        identifier="sensor1",
        connected=False,
        last_call_at=timezone.now() - timedelta(hours=1),
    )

    body = page(console, "console-device", "sensor1")

    assert "no call within its timeout" in body

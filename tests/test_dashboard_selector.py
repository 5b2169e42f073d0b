"""A dashboard as a template (issue 17, item 6): with ``device_from_selector`` its widgets naming
a device read the one picked at the top (``?device=``), in the console and the API; buckets stay
as they are; the controls write the picked device's property; another user's device is refused;
its shared link shows its own device only. And the read-only link through the API."""

import html
import json
import re

import pytest
from django.test import Client

from dashboards import services
from dashboards.models import Dashboard
from devices.models import Property
from tests.factories import (
    BucketFactory,
    BucketRecordFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def prop(device, ident, value):
    return PropertyFactory(device=device, identifier=ident, value=value)


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    for ident, temperature in (("pump1", 21.5), ("pump2", 33.25)):
        device = DeviceFactory(owner=user, identifier=ident, name=f"Pump {ident[-1]}")
        prop(device, "state", {"t": temperature, "on": False})
    bucket = BucketFactory(owner=user, identifier="readings")
    BucketRecordFactory(bucket=bucket, value={"t": 7.5})
    bob = UserFactory(username="bob")
    prop(DeviceFactory(owner=bob, identifier="bobs"), "state", {"t": 66.5, "on": False})
    return user


WIDGETS = [
    {
        "id": "temp",
        "type": "value",
        "source": {"kind": "property", "device": "pump1", "property": "state", "field": "t"},
    },
    {
        "id": "power",
        "type": "switch",
        "source": {"kind": "property", "device": "pump1", "property": "state", "field": "on"},
    },
    {"id": "status", "type": "device_status", "source": {"kind": "device", "device": "pump1"}},
    {
        "id": "last",
        "type": "value",
        "source": {"kind": "bucket", "bucket": "readings", "field": "t"},
    },
]


@pytest.fixture
def board(alice):
    return services.dashboard_create(
        owner=alice, identifier="pumps", widgets=WIDGETS, device_from_selector=True
    )


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


def text(response):
    return html.unescape(response.content.decode())


def shown(body, widget):
    found = re.search(rf'data-widget="{widget}".*?data-value>([^<]*)<', body, re.S)
    return found.group(1) if found else None


# --- The console ----------------------------------------------------------------------------


def test_the_edit_form_turns_the_selector_on(console, alice):
    services.dashboard_create(owner=alice, identifier="pumps", widgets=WIDGETS)
    data = {
        "name": "Pumps",
        "enabled": "on",
        "device_from_selector": "on",
        "widgets": json.dumps(WIDGETS),
        "layout": "{}",
    }

    response = console.post("/dashboards/pumps/edit", data)

    assert response.status_code == 302
    assert Dashboard.objects.get(identifier="pumps").device_from_selector
    page = text(console.get("/dashboards/pumps/edit"))
    assert re.search(r'<input type="checkbox" name="device_from_selector"[^>]*checked', page)


def test_the_page_shows_the_first_named_device_by_default(console, board):
    body = text(console.get("/dashboards/pumps/"))

    assert shown(body, "temp") == "21.5"
    assert shown(body, "last") == "7.5"
    selector = re.search(r'<form method="get" class="card device-selector".*?</form>', body, re.S)
    assert selector
    options = re.findall(r'<option value="([^"]+)"( selected)?', selector.group(0))
    assert options == [("pump1", " selected"), ("pump2", "")]
    assert 'data-searchable="devices"' in selector.group(0)


def test_the_page_shows_the_picked_device(console, board):
    body = text(console.get("/dashboards/pumps/?device=pump2"))

    assert shown(body, "temp") == "33.25"
    assert shown(body, "last") == "7.5"  # buckets stay as they are
    assert re.search(r'data-widget="status".*?href="/devices/pump2/"', body, re.S)
    assert '<option value="pump2" selected' in body
    assert 'action="/dashboards/pumps/widgets/power/write?device=pump2"' in body


@pytest.mark.parametrize("device", ["bobs", "nowhere"])
def test_another_users_or_an_unknown_device_is_refused_on_the_page(console, board, device):
    response = console.get(f"/dashboards/pumps/?device={device}")

    body = text(response)
    assert response.status_code == 404
    assert f'You have no device "{device}"' in body
    assert shown(body, "temp") == "21.5"
    assert "66.5" not in body


def test_a_dashboard_without_a_selector_ignores_the_parameter(console, alice):
    services.dashboard_create(owner=alice, identifier="plain", widgets=WIDGETS)

    body = text(console.get("/dashboards/plain/?device=pump2"))

    assert shown(body, "temp") == "21.5"
    assert "device-selector" not in body


def test_a_control_writes_the_picked_devices_property(console, board):
    response = console.post("/dashboards/pumps/widgets/power/write?device=pump2", {"value": "on"})

    assert response.status_code == 302
    assert response["Location"] == "/dashboards/pumps/?device=pump2#tile-power"
    assert Property.objects.get(device__identifier="pump2").value == {"t": 33.25, "on": True}
    assert Property.objects.get(device__identifier="pump1").value == {"t": 21.5, "on": False}
    body = text(console.get(response["Location"]))
    assert "Property state of pump2 set to" in body
    assert shown(body, "power") == "On"


def test_a_control_does_not_write_another_users_device(console, board):
    response = console.post(
        "/dashboards/pumps/widgets/power/write?device=bobs", {"value": "on"}, follow=True
    )

    assert 'You have no device "bobs"' in text(response)
    assert Property.objects.get(device__identifier="bobs").value["on"] is False
    assert Property.objects.get(device__identifier="pump1").value["on"] is False


# --- The API --------------------------------------------------------------------------------


@pytest.fixture
def api(bearer_client, alice):
    return bearer_client(alice)


def test_the_api_sets_and_shows_the_selector(api, alice):
    created = api.post(
        "/v1/users/alice/dashboards",
        {"dashboard": "pumps", "widgets": WIDGETS, "device_from_selector": True},
        content_type="application/json",
    )

    assert created.status_code == 200
    assert created.json()["device_from_selector"] is True
    changed = api.put(
        "/v1/users/alice/dashboards/pumps",
        {"device_from_selector": False},
        content_type="application/json",
    )
    assert changed.json()["device_from_selector"] is False
    refused = api.put(
        "/v1/users/alice/dashboards/pumps",
        {"device_from_selector": "yes"},
        content_type="application/json",
    )
    assert refused.status_code == 400


def test_the_api_data_reads_the_picked_device(api, board):
    default = api.get("/v1/users/alice/dashboards/pumps/data").json()["widgets"]
    picked = api.get("/v1/users/alice/dashboards/pumps/data?device=pump2").json()["widgets"]

    assert default["temp"]["value"] == 21.5
    assert picked["temp"]["value"] == 33.25
    assert picked["last"]["value"] == 7.5
    assert picked["status"]["status"] == default["status"]["status"]


@pytest.mark.parametrize("device", ["bobs", "nowhere"])
def test_the_api_refuses_another_users_or_an_unknown_device(api, board, assert_json_error, device):
    response = api.get(f"/v1/users/alice/dashboards/pumps/data?device={device}")

    assert_json_error(response, 404)
    assert "66.5" not in response.content.decode()


def test_the_api_refuses_a_device_on_a_dashboard_without_a_selector(api, alice, assert_json_error):
    services.dashboard_create(owner=alice, identifier="plain", widgets=WIDGETS)

    response = api.get("/v1/users/alice/dashboards/plain/data?device=pump2")

    assert_json_error(response, 400)
    assert "device selector" in response.json()["error"]["message"]


def test_the_api_makes_and_revokes_the_link(api, board):
    made = api.post("/v1/users/alice/dashboards/pumps/share")

    assert made.status_code == 200
    body = made.json()
    assert body["url"].endswith(f"/shared/dashboards/{body['token']}/")
    assert api.get("/v1/users/alice/dashboards/pumps").json()["shared"] is True
    link = body["url"].split("://", 1)[1].split("/", 1)[1]
    assert Client().get(f"/{link}").status_code == 200

    assert api.delete("/v1/users/alice/dashboards/pumps/share").status_code == 200
    assert api.get("/v1/users/alice/dashboards/pumps").json()["shared"] is False
    assert Client().get(f"/{link}").status_code == 404


def test_another_user_cannot_share_through_the_api(bearer_client, board, assert_json_error):
    bob = bearer_client(UserFactory(username="bob"))

    for response in (
        bob.post("/v1/users/alice/dashboards/pumps/share"),
        bob.delete("/v1/users/alice/dashboards/pumps/share"),
    ):
        assert response.status_code in (403, 404)
        assert "error" in response.json()
    assert Dashboard.objects.get(identifier="pumps").share_token is None


# --- The shared link ------------------------------------------------------------------------


def test_the_shared_link_shows_the_default_device_only(api, board):
    link = "/" + api.post("/v1/users/alice/dashboards/pumps/share").json()["url"].split("/", 3)[3]

    response = Client().get(link)

    body = text(response)
    assert shown(body, "temp") == "21.5"
    assert "a shared link shows this dashboard's own device only" in body
    assert "pump2" not in body and "device-selector" not in body
    assert Client().get(f"{link}?device=pump2").status_code == 404
    assert Client().get(f"{link}?device=pump1").status_code == 200

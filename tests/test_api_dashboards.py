"""Dashboards through the REST API (issue 17, item 1): create, list, read, update, delete, with
the conventions of the other assets; the widgets and layout checked, each mistake a 400 naming
the widget and the field; only the owner's devices, properties and buckets; who may."""

import json

import pytest

from accounts.auth import access_token_value
from accounts.services import access_token_create
from dashboards.models import Dashboard
from tests.api_checks import assert_empty_ok, assert_json_ok
from tests.factories import (
    BucketFactory,
    DashboardFactory,
    DeviceFactory,
    PropertyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

FIELDS = {
    "dashboard",
    "name",
    "description",
    "enabled",
    "widgets",
    "layout",
    "device_from_selector",
    "shared",
    "share_controls",
    "created",
    "modified",
}
BASE = "/v1/users/alice/dashboards"


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    sensor = DeviceFactory(owner=user, identifier="sensor1")
    PropertyFactory(device=sensor, identifier="state", value={"temperature": 21.5})
    BucketFactory(owner=user, identifier="readings")
    return user


@pytest.fixture
def api(alice, bearer_client):
    return bearer_client(alice)


def send(client, method, path, body=None):
    data = b"" if body is None else json.dumps(body)
    return client.generic(method, path, data, content_type="application/json")


VALUE = {
    "id": "temp",
    "type": "value",
    "title": "Temperature",
    "background": "#f0fdf4",
    "source": {
        "kind": "property",
        "device": "sensor1",
        "property": "state",
        "field": "temperature",
    },
    "options": {"unit": "°C", "decimals": 1},
}
CHART = {
    "id": "history",
    "type": "chart",
    "source": {
        "kind": "bucket",
        "bucket": "readings",
        "fields": ["temperature", "humidity"],
        "range": {"last": "1d"},
        "aggregation": {"interval": "1h", "type": "max"},
    },
}
STATUS = {
    "id": "status",
    "type": "device_status",
    "source": {"kind": "device", "device": "sensor1"},
}


def test_create_read_list_update_delete(api):
    body = {
        "dashboard": "greenhouse",
        "name": "Greenhouse",
        "description": "North wall",
        "widgets": [VALUE, CHART, STATUS],
        "layout": {
            "temp": {"x": 0, "y": 0, "w": 4, "h": 3},
            "history": {"x": 4, "y": 0, "w": 8, "h": 4},
        },
    }

    created = assert_json_ok(send(api, "POST", BASE, body))

    assert set(created) == FIELDS
    assert created["widgets"] == [VALUE, CHART, STATUS]
    assert created["layout"] == body["layout"]
    assert created["enabled"] is True
    assert assert_json_ok(api.get(f"{BASE}/greenhouse")) == created
    assert [d["dashboard"] for d in assert_json_ok(api.get(BASE))] == ["greenhouse"]

    updated = assert_json_ok(send(api, "PUT", f"{BASE}/greenhouse", {"name": "Renamed"}))
    assert updated["name"] == "Renamed"
    assert updated["widgets"] == [VALUE, CHART, STATUS]  # a partial update

    assert_empty_ok(api.delete(f"{BASE}/greenhouse"))
    assert not Dashboard.objects.exists()
    assert api.get(f"{BASE}/greenhouse").status_code == 404


def test_a_dashboard_without_widgets_is_fine(api):
    created = assert_json_ok(send(api, "POST", BASE, {"dashboard": "empty"}))

    assert created["widgets"] == [] and created["layout"] == {}


def test_new_widgets_keep_the_places_of_those_that_stay(api):
    send(
        api,
        "POST",
        BASE,
        {
            "dashboard": "d",
            "widgets": [VALUE, STATUS],
            "layout": {
                "temp": {"x": 0, "y": 0, "w": 4, "h": 3},
                "status": {"x": 4, "y": 0, "w": 4, "h": 3},
            },
        },
    )

    updated = assert_json_ok(send(api, "PUT", f"{BASE}/d", {"widgets": [STATUS, CHART]}))

    assert updated["layout"] == {"status": {"x": 4, "y": 0, "w": 4, "h": 3}}


def test_list_pages_with_count_and_index_and_filters_by_name(api, alice):
    for name in ("a", "b", "c"):
        DashboardFactory(owner=alice, identifier=name, name=f"Board {name}")

    first = assert_json_ok(api.get(f"{BASE}?count=2&index=0"))
    last = assert_json_ok(api.get(f"{BASE}?count=2&index=2"))

    assert [d["dashboard"] for d in first] == ["a", "b"]
    assert [d["dashboard"] for d in last] == ["c"]
    assert [d["dashboard"] for d in assert_json_ok(api.get(f"{BASE}?name=board b"))] == ["b"]


def test_a_duplicate_id_is_a_400(api, assert_json_error):
    send(api, "POST", BASE, {"dashboard": "d"})

    message = assert_json_error(send(api, "POST", BASE, {"dashboard": "d"}), 400)

    assert message == "dashboard: You already have a dashboard with this ID."


def test_the_id_cannot_change(api, assert_json_error):
    send(api, "POST", BASE, {"dashboard": "d"})

    message = assert_json_error(send(api, "PUT", f"{BASE}/d", {"dashboard": "other"}), 400)

    assert "cannot be changed" in message


def _widget(**changes):
    widget = json.loads(json.dumps(VALUE))
    for key, value in changes.items():
        if value is None:
            widget.pop(key, None)
        else:
            widget[key] = value
    return widget


@pytest.mark.parametrize(
    ("widgets", "layout", "expected"),
    [
        ("not a list", {}, "widgets: must be a list of widgets"),
        ([_widget(id="bad id")], {}, "widgets[0].id: must be 1 to 32 letters"),
        ([_widget(), _widget()], {}, 'widgets[1].id: another widget has the id "temp"'),
        ([_widget(type="clock")], {}, "widgets[0].type: must be one of chart, value"),
        ([_widget(background="green")], {}, "widgets[0].background: must be a colour"),
        ([_widget(title=7)], {}, "widgets[0].title: must be text"),
        ([_widget(colour="#000000")], {}, "widgets[0].colour: unknown field"),
        ([_widget(source=None)], {}, "widgets[0].source: is required"),
        (
            [_widget(source={"kind": "bucket", "bucket": "readings", "fields": ["t"]})],
            {},
            "widgets[0].source.fields: unknown field",
        ),
        (
            [{**CHART, "source": {**CHART["source"], "fields": []}}],
            {},
            "widgets[0].source.fields: must list 1 to 8 fields",
        ),
        (
            [{**CHART, "source": {**CHART["source"], "range": {"last": "forever"}}}],
            {},
            "widgets[0].source.range.last: must be an interval",
        ),
        (
            [
                {
                    **CHART,
                    "source": {
                        **CHART["source"],
                        "range": {"last": "30d"},
                        "aggregation": {"interval": "1m"},
                    },
                }
            ],
            {},
            "widgets[0].source.aggregation.interval: makes more than 1000 points",
        ),
        (
            [
                {
                    **CHART,
                    "source": {
                        **CHART["source"],
                        "aggregation": {"interval": "1h", "type": "median"},
                    },
                }
            ],
            {},
            "widgets[0].source.aggregation.type: must be one of mean, min, max, sum, count",
        ),
        (
            [
                {
                    "id": "s",
                    "type": "switch",
                    "source": {"kind": "device", "device": "sensor1", "field": "status"},
                }
            ],
            {},
            "widgets[0].source.kind: a switch widget reads property",
        ),
        (
            [
                {
                    "id": "v",
                    "type": "value",
                    "source": {"kind": "device", "device": "sensor1", "field": "rssi"},
                }
            ],
            {},
            "widgets[0].source.field: must be one of status, last_call, calls_today",
        ),
        ([_widget(options={"decimals": 9})], {}, "widgets[0].options.decimals: must be a whole"),
        (
            [{**_widget(type="gauge"), "options": {"min": 10, "max": 10}}],
            {},
            "widgets[0].options.max: must be above min (10)",
        ),
        (
            [
                {
                    **_widget(type="led"),
                    "options": {"ranges": [{"from": 5, "to": 1, "color": "#ff0000"}]},
                }
            ],
            {},
            "widgets[0].options.ranges: [0]",
        ),
        ([VALUE], {"nope": {"x": 0, "y": 0, "w": 1, "h": 1}}, "layout.nope: no widget has this id"),
        (
            [VALUE],
            {"temp": {"x": 0, "y": 0, "w": 13, "h": 1}},
            "layout.temp.w: must be a whole number from 1 to 12",
        ),
        (
            [VALUE],
            {"temp": {"x": 8, "y": 0, "w": 6, "h": 1}},
            "layout.temp.w: x + w must be at most 12",
        ),
        (
            [VALUE],
            {"temp": {"x": 0, "y": 0, "w": 4}},
            "layout.temp: must be an object with x, y, w and h",
        ),
        ([VALUE], [], "layout: must be an object"),
    ],
)
def test_each_mistake_is_a_400_naming_the_widget_and_field(
    api, assert_json_error, widgets, layout, expected
):
    response = send(api, "POST", BASE, {"dashboard": "d", "widgets": widgets, "layout": layout})

    assert expected in assert_json_error(response, 400)
    assert not Dashboard.objects.exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"kind": "property", "device": "nothere", "property": "state"},
            'widgets[0].source.device: you have no device "nothere" (widget "temp")',
        ),
        (
            {"kind": "property", "device": "sensor1", "property": "nothere"},
            'widgets[0].source.property: device "sensor1" has no property "nothere" '
            '(widget "temp")',
        ),
        (
            {"kind": "bucket", "bucket": "nothere"},
            'widgets[0].source.bucket: you have no bucket "nothere" (widget "temp")',
        ),
    ],
)
def test_a_source_must_exist(api, assert_json_error, source, expected):
    response = send(api, "POST", BASE, {"dashboard": "d", "widgets": [_widget(source=source)]})

    assert assert_json_error(response, 400) == expected


def test_another_users_devices_properties_and_buckets_are_refused(api, assert_json_error):
    bob = UserFactory(username="bob")
    bobs = DeviceFactory(owner=bob, identifier="bobs_device")
    PropertyFactory(device=bobs, identifier="secret")
    BucketFactory(owner=bob, identifier="bobs_bucket")
    for source in (
        {"kind": "property", "device": "bobs_device", "property": "secret"},
        {"kind": "device", "device": "bobs_device", "field": "status"},
        {"kind": "bucket", "bucket": "bobs_bucket"},
    ):
        response = send(api, "POST", BASE, {"dashboard": "d", "widgets": [_widget(source=source)]})
        assert "you have no" in assert_json_error(response, 400), source
    assert not Dashboard.objects.exists()


def test_an_update_that_fails_changes_nothing(api, assert_json_error):
    send(api, "POST", BASE, {"dashboard": "d", "name": "Before", "widgets": [VALUE]})

    response = send(
        api, "PUT", f"{BASE}/d", {"name": "After", "widgets": [_widget(type="nothing")]}
    )

    assert_json_error(response, 400)
    dashboard = Dashboard.objects.get()
    assert (dashboard.name, dashboard.widgets) == ("Before", [VALUE])


def test_renaming_a_dashboard_whose_device_was_deleted_still_works(api, alice):
    send(api, "POST", BASE, {"dashboard": "d", "widgets": [VALUE]})
    alice.devices.get(identifier="sensor1").delete()

    renamed = assert_json_ok(send(api, "PUT", f"{BASE}/d", {"name": "Still here"}))

    assert renamed["name"] == "Still here"


def test_bodies_are_closed_and_typed(api, assert_json_error):
    assert "unknown field" in assert_json_error(
        send(api, "POST", BASE, {"dashboard": "d", "tabs": []}), 400
    )
    assert assert_json_error(send(api, "POST", BASE, {"dashboard": "d", "enabled": "yes"}), 400)
    assert assert_json_error(send(api, "POST", BASE, {"name": "no id"}), 400)


# --- Who may ---------------------------------------------------------------------------------


def test_another_users_dashboards_are_403_and_unknown_ones_404(
    alice, bearer_client, assert_json_error
):
    DashboardFactory(owner=alice, identifier="mine", name="Alpha board")
    bob = bearer_client(UserFactory(username="bob"))

    for method in ("GET", "PUT", "DELETE"):
        response = send(bob, method, f"{BASE}/mine", {"name": "x"} if method == "PUT" else None)
        assert_json_error(response, 403)
    assert_json_error(bob.get(BASE), 403)
    assert_json_error(bob.get(f"{BASE}/mine/data"), 403)
    assert_json_error(send(bob, "POST", BASE, {"dashboard": "theirs"}), 403)
    assert_json_error(bearer_client(alice).get(f"{BASE}/nothere"), 404)
    assert_json_error(bearer_client(alice).get(f"{BASE}/nothere/data"), 404)
    assert Dashboard.objects.get().name == "Alpha board"


def test_without_credentials_401(client, alice, assert_json_error):
    assert_json_error(client.get(BASE), 401)


def test_a_scoped_token_allows_only_its_actions(client, alice, assert_json_error):
    DashboardFactory(owner=alice, identifier="mine")
    token = access_token_create(
        owner=alice,
        identifier="viewer",
        name="Viewer",
        allow={"Dashboard": {"*": ["ListDashboards", "ReadDashboard", "ReadDashboardData"]}},
    )
    headers = {"HTTP_AUTHORIZATION": f"Bearer {access_token_value(token)}"}

    assert client.get(BASE, **headers).status_code == 200
    assert client.get(f"{BASE}/mine", **headers).status_code == 200
    assert client.get(f"{BASE}/mine/data", **headers).status_code == 200
    message = assert_json_error(client.delete(f"{BASE}/mine", **headers), 403)
    assert message == "this token does not allow DeleteDashboard"
    assert_json_error(
        client.post(BASE, json.dumps({"dashboard": "x"}), "application/json", **headers), 403
    )


def test_the_schema_documents_the_routes(client):
    schema = client.get("/api/schema/?format=json").json()

    assert {"get", "post"} <= set(schema["paths"]["/v1/users/{user}/dashboards"])
    assert {"get", "put", "delete"} <= set(
        schema["paths"]["/v1/users/{user}/dashboards/{dashboard}"]
    )
    assert "get" in schema["paths"]["/v1/users/{user}/dashboards/{dashboard}/data"]
    widget = schema["components"]["schemas"]["DashboardOutput"]["properties"]["widgets"]
    assert "value" in widget["items"]["properties"]["type"]["enum"]


def test_the_server_lists_dashboards_among_its_assets(client, api, alice):
    DashboardFactory(owner=alice, identifier="mine")

    assets = {item["asset"]: item for item in client.get("/v1/server/assets").json()}

    path = assets["dashboard"]["paths"]["list"]
    assert path == "v1/users/(?<user>[a-zA-Z0-9_-]{1,32})/dashboards"
    listed = assert_json_ok(api.get("/" + path.replace("(?<user>[a-zA-Z0-9_-]{1,32})", "alice")))
    assert [d["dashboard"] for d in listed] == ["mine"]


@pytest.mark.parametrize(
    "body",
    [
        {"widgets": None},
        {"layout": None},
        {"widgets": [{"id": ["not", "text"], "type": "value"}]},
        {"widgets": [{"id": {"a": 1}}, {"id": {"a": 1}}]},
        {"widgets": "text", "layout": {"a": 1}},
    ],
)
def test_odd_json_is_a_400_never_a_500(api, assert_json_error, body):
    """Found by schemathesis: null widgets and an id that is a list were 500s."""
    send(api, "POST", BASE, {"dashboard": "d"})

    assert_json_error(send(api, "PUT", f"{BASE}/d", body), 400)
    assert_json_error(send(api, "POST", BASE, {"dashboard": "e", **body}), 400)

"""What Thinger.io's own clients (the Node-RED and n8n nodes) read before they touch a user's
assets, and how they tell success from failure (issue 15, items 1 to 3; SPEC section 10)."""

import re

import pytest
from django.urls import resolve

from tests.test_isolation import alice, all_routes, supported_methods, url_for  # noqa: F401

pytestmark = pytest.mark.django_db

# The Node-RED asset iterator's substitution of the user (nodes/asset-iterator.js).
USER_GROUP = re.compile(r"\(\?<user>[^)]+\)")


@pytest.mark.parametrize("authorization", [None, "Bearer undefined", "Bearer not.a.jwt"])
def test_the_asset_catalogue_is_public_and_ignores_a_bad_bearer(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.get("/v1/server/assets", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assets = response.json()
    assert {"device", "bucket", "endpoint", "token", "dashboard"} <= {
        item["asset"] for item in assets
    }
    for item in assets:
        assert set(item) == {"asset", "category", "paths", "role"}
        assert item["role"] == "user"
        assert USER_GROUP.search(item["paths"]["list"]), item


def test_each_assets_list_route_is_the_users_list_of_that_asset(alice, bearer_client):  # noqa: F811
    owner = bearer_client(alice.user)
    expected = {
        "device": alice.device.identifier,
        "bucket": alice.bucket.identifier,
        "endpoint": alice.endpoint.identifier,
        "token": alice.token.identifier,
        "dashboard": alice.dashboard.identifier,
    }

    for item in owner.get("/v1/server/assets").json():
        path = "/" + USER_GROUP.sub(alice.user.username, item["paths"]["list"])
        assert resolve(path).kwargs == {"user": alice.user.username}
        listed = owner.get(f"{path}?count=50&index=0")
        assert listed.status_code == 200, (path, listed.content)
        assert expected[item["asset"]] in listed.content.decode(), path


def test_the_event_catalogue_names_each_event_after_its_asset_with_filters_as_objects(client):
    response = client.get("/v1/server/events", HTTP_AUTHORIZATION="Bearer undefined")

    assert response.status_code == 200
    events = {item["event"]: item for item in response.json()}
    assert {
        "device_state_change",
        "device_callback_call",
        "device_property_update",
        "bucket_export_completed",
        "endpoint_call",
    } <= set(events)
    for name, item in events.items():
        asset = name.split("_")[0]
        assert asset in {"device", "bucket", "endpoint"}
        assert item["asset"] == asset
        assert item["filters"][0] == {"field": asset}
        for one in item["filters"]:
            assert set(one) <= {"field", "hints"}
            assert all(isinstance(hint, str) for hint in one.get("hints", []))
    assert {"field": "state", "hints": ["connected", "disconnected"]} in events[
        "device_state_change"
    ]["filters"]


def _error_keys(value, where="body"):
    """Where an ``error`` key is in a JSON value, at any depth."""
    if isinstance(value, dict):
        found = [where] if "error" in value else []
        for key, item in value.items():
            found += _error_keys(item, f"{where}.{key}")
        return found
    if isinstance(value, list):
        return [hit for index, item in enumerate(value) for hit in _error_keys(item, where)]
    return []


def test_no_success_body_of_the_api_has_an_error_key(alice, bearer_client, settings):  # noqa: F811
    """Thinger.io's clients read any JSON object with an ``error`` key as a failure and read
    ``error.message``: ``"error": null`` crashed Node-RED. Every GET of the API, as the owner,
    and the answers of the calls that report an outcome (an endpoint call, an export)."""
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False  # the call fails fast, with a reason
    owner = bearer_client(alice.user)
    answers = []
    for route in all_routes():
        if route.kind not in ("owner api", "public") or "GET" not in supported_methods(route):
            continue
        if route.name in ("api-schema", "api-docs", "healthz"):
            continue
        path = url_for(route, alice)
        answers.append((path, owner.get(path)))
    base = f"/v1/users/{alice.user.username}"
    answers.append(
        (
            "endpoint call",
            owner.post(
                f"{base}/endpoints/{alice.endpoint.identifier}/call",
                {"a": 1},
                content_type="application/json",
            ),
        )
    )
    answers.append(
        (
            "export",
            owner.post(
                f"{base}/buckets/{alice.bucket.identifier}/exports",
                {"data_type": "json"},
                content_type="application/json",
            ),
        )
    )

    assert [r.status_code for p, r in answers if p in ("endpoint call", "export")] == [200, 200]
    checked = 0
    for path, response in answers:
        if response.status_code != 200 or not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            continue
        checked += 1
        assert not _error_keys(response.json()), (path, response.content[:300])
    assert checked >= 20


def iterate_like_node_red(client, username, asset, count):
    """The Node-RED asset iterator (nodes/asset-iterator.js): the list route from the catalogue,
    then pages of ``count`` from ``index`` 0, each page's length added to ``index``, until a page
    is shorter than ``count`` (its query ends with ``&`` and sends only the non-empty filters)."""
    catalogue = client.get("/v1/server/assets", HTTP_AUTHORIZATION="Bearer undefined").json()
    path = USER_GROUP.sub(
        username, next(a for a in catalogue if a["asset"] == asset)["paths"]["list"]
    )
    seen, index = [], 0
    for _ in range(50):
        response = client.get(f"/{path}?count={count}&index={index}")
        assert response.status_code == 200, response.content
        items = response.json()
        seen += items
        index += len(items)
        if len(items) != count:
            return seen
    raise AssertionError(f"{asset}: the iterator never saw a short page")


@pytest.mark.parametrize("asset", ["device", "bucket", "endpoint", "token", "dashboard"])
@pytest.mark.parametrize("how_many", [0, 2, 3, 4])
def test_the_node_red_asset_iterator_sees_each_asset_once_and_stops(bearer_client, asset, how_many):
    from accounts.services import access_token_create
    from tests.factories import (
        BucketFactory,
        DashboardFactory,
        DeviceFactory,
        EndpointFactory,
        UserFactory,
    )

    owner = UserFactory(username="iter")
    make = {
        "device": lambda i: DeviceFactory(owner=owner, identifier=f"a{i}"),
        "bucket": lambda i: BucketFactory(owner=owner, identifier=f"a{i}"),
        "endpoint": lambda i: EndpointFactory(owner=owner, identifier=f"a{i}"),
        "token": lambda i: access_token_create(owner=owner, identifier=f"a{i}", name=f"a{i}"),
        "dashboard": lambda i: DashboardFactory(owner=owner, identifier=f"a{i}"),
    }[asset]
    for i in range(how_many):
        make(i)
    client = bearer_client(owner)
    expected = how_many

    seen = iterate_like_node_red(client, "iter", asset, count=2)

    ids = [item[asset] for item in seen]
    assert len(ids) == len(set(ids)) == expected

"""Text no database stores (a NUL character, a lone surrogate) is refused with 400 on every way in,
as the callback refuses it: the API's bodies and query strings, the console's forms and search;
never a 500, nothing changed. Then Hypothesis throws arbitrary JSON at the API's body routes."""

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import AccessToken
from buckets.models import BucketRecord
from core.text import UNSTORABLE_MESSAGE
from dashboards.models import Dashboard
from devices.models import Device, Property
from endpoints.models import EndpointCall
from tests.factories import (
    BucketFactory,
    DashboardFactory,
    DeviceFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
)
from tests.reliability import report
from tests.strategies import json_text

pytestmark = pytest.mark.django_db

NUL, SURROGATE = "\x00", "\ud800"


@pytest.fixture
def owner():
    owner = UserFactory(username="alice")
    device = DeviceFactory(owner=owner, identifier="d1", name="Sensor")
    BucketFactory(owner=owner, identifier="b1")
    PropertyFactory(device=device, identifier="p", value={"on": True})
    EndpointFactory(owner=owner, identifier="e1")
    DashboardFactory(owner=owner, identifier="db1")
    return owner


@pytest.fixture
def api(bearer_client, owner):
    client = bearer_client(owner)
    client.raise_request_exception = False
    return client


def snapshot():
    return (
        list(Device.objects.values_list("identifier", "name").order_by("pk")),
        list(Property.objects.values_list("identifier", "value").order_by("pk")),
        BucketRecord.objects.count(),
        EndpointCall.objects.count(),
        AccessToken.objects.count(),
        list(Dashboard.objects.values_list("identifier", "widgets", "layout").order_by("pk")),
    )


def assert_refused(response):
    assert response.status_code == 400, response.content
    assert response.json() == {"error": {"message": UNSTORABLE_MESSAGE}}


# (method, path, body with the text in it): every kind of body the API takes.
BODIES = {
    "property value": (
        "POST",
        "/v3/users/alice/devices/d1/properties",
        lambda bad: {"property": "q", "value": {"k": bad}},
    ),
    "property update": (
        "PUT",
        "/v3/users/alice/devices/d1/properties/p",
        lambda bad: {"value": {"k": bad}},
    ),
    "bucket data value": ("POST", "/v1/users/alice/buckets/b1/data", lambda bad: [{"k": bad}]),
    "bucket data key": ("POST", "/v1/users/alice/buckets/b1/data", lambda bad: [{bad: 1}]),
    "device name": ("PUT", "/v1/users/alice/devices/d1", lambda bad: {"name": f"x{bad}"}),
    "endpoint config": (
        "PUT",
        "/v1/users/alice/endpoints/e1",
        lambda bad: {"config": {"url": f"https://example.com/{bad}"}},
    ),
    "endpoint call payload": ("POST", "/v1/users/alice/endpoints/e1/call", lambda bad: {"k": bad}),
    "token allow key": (
        "POST",
        "/v1/users/alice/tokens",
        lambda bad: {"token": "t1", "name": "t", "allow": {bad: {}}, "deny": {}},
    ),
    "dashboard widget": (
        "POST",
        "/v1/users/alice/dashboards",
        lambda bad: {
            "dashboard": "db2",
            "widgets": [
                {
                    "id": "w",
                    "type": "text",
                    "title": bad,
                    "source": {"kind": "bucket", "bucket": "b1"},
                }
            ],
        },
    ),
    "dashboard layout key": (
        "PUT",
        "/v1/users/alice/dashboards/db1",
        lambda bad: {"layout": {bad: {"x": 0, "y": 0, "w": 1, "h": 1}}},
    ),
    "export file name": (
        "POST",
        "/v1/users/alice/buckets/b1/exports",
        lambda bad: {"data_type": "csv", "file": f"f{bad}"},
    ),
}


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("route", BODIES)
def test_api_bodies_with_unstorable_text_are_400_and_change_nothing(api, route, bad):
    method, path, body = BODIES[route]
    before = snapshot()

    response = api.generic(method, path, json.dumps(body(bad)), content_type="application/json")

    assert_refused(response)
    assert snapshot() == before


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/alice/devices?name=%00",
        "/v1/users/alice/buckets?name=a%00b",
        "/v1/users/alice/devices?%00=1",
        "/v1/users/alice/buckets/b1/data?items=10&sort=%00",
    ],
)
def test_api_query_strings_with_a_nul_are_400(api, path):
    assert_refused(api.get(path))


def test_oauth_form_with_a_nul_is_400(client, owner):
    response = client.post(
        "/oauth/token",
        "grant_type=password&username=alice%00&password=x",
        content_type="application/x-www-form-urlencoded",
    )

    assert_refused(response)


def test_console_search_with_a_nul_is_a_400_page(client, owner):
    client.force_login(owner)
    client.raise_request_exception = False

    response = client.get("/devices/?q=sen%00sor")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800"], ids=["nul", "surrogate"])
def test_console_property_form_with_unstorable_text_is_a_form_error(client, owner, bad):
    client.force_login(owner)
    before = snapshot()

    response = client.post(
        "/devices/d1/properties/p/edit", {"value": '{"k": "' + bad + '"}'}, follow=True
    )

    assert response.status_code == 200
    assert UNSTORABLE_MESSAGE in response.content.decode()
    assert snapshot() == before


# --- Arbitrary JSON at the API's body routes ---------------------------------------------------

statuses = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    report(request, f"API fuzz answers {answers}; 5xx: {server_errors}")


@pytest.mark.parametrize("route", BODIES)
def test_any_json_body_on_the_api_is_never_a_5xx(api, route):
    method, path, _ = BODIES[route]

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(body=json_text, wrap=st.booleans())
    def check(body, wrap):
        text = f'{{"value": {body}}}' if wrap else body
        response = api.generic(
            method, path, text.encode("utf-8", "surrogatepass"), "application/json"
        )
        statuses[response.status_code] += 1
        assert response.status_code < 500, (text, response.content)
        if response.status_code >= 400:
            assert response.json()["error"]["message"]

    check()


def test_the_callback_checks_its_own_query(client, owner):
    """A NUL in a device's query is the callback's to judge (a bad token is 401, as the server
    serves the callback without the project's middleware): the same answer either way."""
    response = client.post(
        "/v3/users/alice/devices/d1/callback/data?authorization=%00bad",
        b"{}",
        content_type="application/json",
    )

    assert response.status_code == 401

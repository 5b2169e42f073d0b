"""Isolation (issue 6, item 5): one tenant never sees or changes another's data.

User A owns one of everything; user B, another ordinary user, walks EVERY URL pattern of the
project, derived from the URL resolver, with A's identifiers in it and every method: as B with an
API token, as B logged in to the console, and anonymously. A route nobody classified fails the
test, so a new route cannot be forgotten:

- REST API routes under ``{user}``, the device callbacks included: 401, 403 or 404, every method;
- the shared, read-only API routes (endpoint templates) and the public ones (login, OAuth,
  health, schema and docs): whatever they answer, never A's data;
- console pages: 404 for A's objects (the login page when anonymous); B's own pages (lists,
  forms) show none of A's data;
- the Django admin: staff only, every page sends B (and anonymous callers) to the admin login.

No body may carry A's data: names, descriptions, values, records, endpoint configuration, tokens,
e-mail, or an identifier of A's that the request did not name itself. And afterwards A's data is
exactly as it was.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve

from accounts.auth import access_token_value
from accounts.models import AccessToken
from buckets.models import Bucket, BucketExport, BucketRecord
from dashboards.models import Dashboard
from devices.models import Device, Property
from devices.tokens import callback_token_for
from endpoints.models import Endpoint, EndpointCall
from tests.factories import (
    BucketExportFactory,
    BucketFactory,
    BucketRecordFactory,
    DashboardFactory,
    DeviceFactory,
    EndpointCallFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
    callback_configure,
)
from tests.reliability import report

pytestmark = pytest.mark.django_db

API_METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
PAGE_METHODS = ["GET", "POST"]
# Routes anyone may call; they hold no user's data. The device callbacks are not here: they
# have their own credentials and are walked with the owner's routes.
PUBLIC = {
    "healthz",
    "oauth-token",
    "api-schema",
    "api-docs",
    "console-login",
    "console-logout",
    "admin:login",
    "server-assets",
    "server-events",
    # A dashboard's read-only link: its token is 256 random bits, not a user's name or id
    # (tests/test_dashboard_sharing.py walks the other routes with one).
    "shared-dashboard",
    "shared-dashboard-control",
    "shared-dashboard-tiles",
}
# Routes every signed-in user may read: the same for everyone.
SHARED = {"api-endpoint-templates", "api-endpoint-template"}
# Path parameters that name one of A's objects (console pages answer 404 for them).
OBJECT_KWARGS = {
    "device",
    "bucket",
    "endpoint",
    "property",
    "prop",
    "file",
    "token",
    "object_id",
    "dashboard",
    "widget",
    "call",
}

walked = {"routes": 0, "requests": 0}


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if walked["routes"]:
        report(
            request,
            f"isolation: routes walked {walked['routes']}, requests {walked['requests']}, "
            "none showed another user's data",
        )


# --- The routes -----------------------------------------------------------------------------


@dataclass
class Route:
    name: str  # "admin:..." for the admin; the pattern itself when the route has no name
    pattern: str
    view: object
    kwargs: frozenset

    @property
    def kind(self):
        if self.name in PUBLIC:
            return "public"
        if self.name in SHARED:
            return "shared"
        if self.name.startswith("admin:") or self.pattern.startswith("admin/"):
            return "admin"
        if self.name.startswith("console-"):
            return "console"
        if "user" in self.kwargs:
            return "owner api"
        return None


def _pattern_kwargs(pattern):
    regex = pattern.regex
    return set(regex.groupindex)


def all_routes():
    """Every URL pattern of the project, includes flattened, with its full pattern."""

    def walk(patterns, prefix, namespaces, kwargs):
        for entry in patterns:
            found = kwargs | _pattern_kwargs(entry.pattern)
            if isinstance(entry, URLResolver):
                spaces = namespaces + [entry.namespace] if entry.namespace else namespaces
                yield from walk(entry.url_patterns, prefix + str(entry.pattern), spaces, found)
            else:
                pattern = prefix + str(entry.pattern)
                name = ":".join([*namespaces, entry.name]) if entry.name else pattern
                yield Route(name, pattern, entry.callback, frozenset(found))

    return list(walk(get_resolver().url_patterns, "", [], set()))


def test_every_route_is_classified():
    unclassified = [route.pattern for route in all_routes() if route.kind is None]

    assert not unclassified, (
        "routes that test_isolation does not know how to walk: give them a {user} parameter, "
        f"or add them to PUBLIC or SHARED: {unclassified}"
    )


# --- A's data -------------------------------------------------------------------------------


@dataclass
class Tenant:
    user: object
    device: Device
    prop: Property
    bucket: Bucket
    endpoint: Endpoint
    export: BucketExport
    token: AccessToken
    secrets: list  # strings that only A's data contains
    identifiers: list  # A's identifiers (a request may name them; a body must not add others)
    dashboard: Dashboard


@pytest.fixture
def alice(db):
    user = UserFactory(username="alice_iso", email="alice-mail-7d1e@example.com")
    device = DeviceFactory(
        owner=user,
        identifier="alice_dev_4b2",
        name="Alpha Device Name 9c1",
        description="alpha device description 0f3",
    )
    prop = PropertyFactory(
        device=device, identifier="alice_prop_8e4", value={"secret": "alpha-property-value-2d7"}
    )
    bucket = BucketFactory(
        owner=user,
        identifier="alice_bucket_5a9",
        name="Alpha Bucket Name 6b0",
        description="alpha bucket description 1c8",
    )
    BucketRecordFactory(bucket=bucket, value={"reading": "alpha-record-value-3e5"})
    endpoint = EndpointFactory(
        owner=user,
        identifier="alice_hook_7f2",
        name="Alpha Endpoint Name 4d6",
        config={
            "url": "http://alpha-endpoint-7a3.example/hook",
            "method": "POST",
            "headers": [{"key": "X-Alpha", "value": "alpha-header-value-5f1"}],
            "body_type": "json",
        },
    )
    # Failed: one B might try to retry.
    EndpointCallFactory(
        endpoint=endpoint,
        device=device,
        payload={"p": "alpha-call-payload-8b2"},
        status=EndpointCall.Status.FAILED,
    )
    callback_configure(device, write_bucket=bucket, set_property=prop, call_endpoint=endpoint)
    export = BucketExportFactory(bucket=bucket, file="alice_export_2c4.csv")
    token = AccessToken.objects.create(
        owner=user, identifier="alice_token_3f9", name="Alpha Token Name 0a4"
    )
    # A control widget: its form would write A's property.
    dashboard = DashboardFactory(
        owner=user,
        identifier="alice_dash_6e1",
        name="Alpha Dashboard Name 3b7",
        description="alpha dashboard description 5c2",
        widgets=[
            {
                "id": "alice_widget_9d2",
                "type": "switch",
                "title": "Alpha Widget Title 1f8",
                "source": {
                    "kind": "property",
                    "device": device.identifier,
                    "property": prop.identifier,
                },
            }
        ],
    )
    secrets = [
        user.email,
        device.name,
        device.description,
        "alpha-property-value-2d7",
        bucket.name,
        bucket.description,
        "alpha-record-value-3e5",
        endpoint.name,
        "alpha-endpoint-7a3.example",
        "alpha-header-value-5f1",
        "alpha-call-payload-8b2",
        token.name,
        callback_token_for(device),
        access_token_value(token),
        endpoint.secret,
        dashboard.name,
        dashboard.description,
        "Alpha Widget Title 1f8",
    ]
    identifiers = [
        user.username,
        device.identifier,
        prop.identifier,
        bucket.identifier,
        endpoint.identifier,
        export.file,
        token.identifier,
        dashboard.identifier,
        "alice_widget_9d2",
    ]
    return Tenant(
        user, device, prop, bucket, endpoint, export, token, secrets, identifiers, dashboard
    )


def snapshot(tenant):
    """Everything of A's that B might try to change."""
    device = Device.objects.get(pk=tenant.device.pk)
    return {
        "device": (device.name, device.enabled, device.token_generation),
        "callback": (
            device.callback.write_bucket_id,
            device.callback.set_property_id,
            device.callback.call_endpoint_id,
            device.callback.timeout,
        ),
        "properties": list(Property.objects.filter(device=device).values_list("value")),
        "buckets": list(Bucket.objects.filter(owner=tenant.user).values_list("name", "enabled")),
        "records": list(BucketRecord.objects.filter(bucket__owner=tenant.user).values_list("ts")),
        "exports": list(BucketExport.objects.filter(bucket__owner=tenant.user).values_list("file")),
        "endpoints": list(Endpoint.objects.filter(owner=tenant.user).values_list("name", "config")),
        "calls": list(
            EndpointCall.objects.filter(endpoint__owner=tenant.user).values_list("pk", "status")
        ),
        "tokens": list(AccessToken.objects.filter(owner=tenant.user).values_list("enabled")),
        "dashboards": list(
            Dashboard.objects.filter(owner=tenant.user).values_list("name", "widgets", "layout")
        ),
    }


# --- Building a URL for a route ---------------------------------------------------------------


def _admin_object_id(tenant, pattern):
    """A's object of the model an admin route is about (any id for the others)."""
    owned = {
        ("auth", "user"): tenant.user,
        ("devices", "device"): tenant.device,
        ("devices", "callbacksettings"): tenant.device.callback,
        ("devices", "property"): tenant.prop,
        ("buckets", "bucket"): tenant.bucket,
        ("buckets", "bucketexport"): tenant.export,
        ("buckets", "bucketrecord"): BucketRecord.objects.filter(bucket=tenant.bucket).first(),
        ("endpoints", "endpoint"): tenant.endpoint,
        ("endpoints", "endpointcall"): EndpointCall.objects.filter(device=tenant.device).first(),
        ("dashboards", "dashboard"): tenant.dashboard,
    }
    parts = pattern.split("/")
    found = owned.get(tuple(parts[1:3]))
    return str(found.pk) if found else "1"


def url_for(route, tenant):
    values = {
        "user": tenant.user.username,
        "device": tenant.device.identifier,
        "property": tenant.prop.identifier,
        "prop": tenant.prop.identifier,
        "bucket": tenant.bucket.identifier,
        "endpoint": tenant.endpoint.identifier,
        "file": tenant.export.file,
        "token": tenant.token.identifier,
        "dashboard": tenant.dashboard.identifier,
        "widget": "alice_widget_9d2",
        "version": "v2",  # v1 of the bucket read is the v1 data route, walked on its own
        "object_id": _admin_object_id(tenant, route.pattern),
        "call": str(EndpointCall.objects.get(endpoint=tenant.endpoint).pk),
        "id": str(tenant.user.pk),  # the admin's password change page of a user
        "content_type_id": str(ContentType.objects.get_for_model(Device).pk),
        "app_label": "devices",
        "url": "nowhere/at/all/",
    }
    unknown = route.kwargs - set(values)
    assert not unknown, f"{route.pattern}: no value for {sorted(unknown)}; teach url_for"

    def fill(match):
        return values[match.group("name")]

    path = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", fill, route.pattern)
    path = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, path)
    path = "/" + path.replace("^", "").replace("$", "")
    match = resolve(path)
    assert match.func == route.view or match.route == route.pattern.replace("^", ""), (
        f"{route.pattern}: built {path}, which resolves elsewhere ({match.route})"
    )
    return path


def supported_methods(route):
    """The methods the view has a handler for (a function view: GET and POST)."""
    view = route.view
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is None:
        return {"GET", "POST"}
    return {method.upper() for method in cls.http_method_names if hasattr(cls, method)}


# --- Calling as B -----------------------------------------------------------------------------

BODY = {"name": "taken over", "value": "taken over", "enabled": False, "description": "x"}


def call(client, method, path):
    walked["requests"] += 1
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return client.generic(method, path)
    if path.startswith(("/v1/", "/v2/", "/v3/", "/oauth/")):
        return client.generic(
            method, path, b'{"name": "taken over", "value": 1}', "application/json"
        )
    return client.generic(method, path, urlencode(BODY), "application/x-www-form-urlencoded")


def assert_no_data_of(tenant, response, path, where):
    body = b"".join(response) if response.streaming else response.content
    text = body.decode("utf-8", errors="replace")
    for secret in tenant.secrets:
        assert secret not in text, f"{where}: {secret!r} of A in the body"
    for identifier in tenant.identifiers:
        if identifier not in path:
            assert not re.search(rf"\b{re.escape(identifier)}\b", text), (
                f"{where}: A's {identifier!r} in the body"
            )


@pytest.fixture
def bob(db):
    return UserFactory(username="bob_iso")


@pytest.fixture
def callers(bob, bearer_client):
    """B with an API token, B logged in to the console, and nobody."""
    with_token = bearer_client(bob)
    with_session = Client()
    with_session.force_login(bob)
    return {"B's API token": with_token, "B's session": with_session, "anonymous": Client()}


ANSWERS = {
    # kind -> caller -> statuses allowed
    "owner api": {
        "B's API token": {403, 404},
        "B's session": {401, 403, 404},  # the device callbacks take no session
        "anonymous": {401},
    },
    "console": {"B's session": {404, 405}, "B's API token": {302, 405}, "anonymous": {302, 405}},
    "admin": {"B's session": {302}, "B's API token": {302}, "anonymous": {302}},
}


def test_another_user_gets_none_of_a_users_data_on_any_route(alice, callers):
    before = snapshot(alice)
    routes = all_routes()

    for route in routes:
        path = url_for(route, alice)
        methods = API_METHODS if route.kind in ("owner api", "shared") else PAGE_METHODS
        walked["routes"] += 1
        for who, client in callers.items():
            for method in methods:
                if route.name == "console-logout" and who == "B's session":
                    continue  # would end the session the walk goes on with
                where = f"{method} {path} as {who} ({route.kind})"
                response = call(client, method, path)
                assert response.status_code < 500, where
                assert_no_data_of(alice, response, path, where)
                allowed = ANSWERS.get(route.kind, {}).get(who)
                if route.kind == "console" and route.kwargs.isdisjoint(OBJECT_KWARGS):
                    allowed = None if who == "B's session" else allowed  # B's own pages
                if route.kind == "admin" and route.name == "admin:login":
                    allowed = None
                if allowed is not None and method not in supported_methods(route):
                    allowed = allowed | {405}
                if allowed is not None:
                    assert response.status_code in allowed, f"{where}: {response.status_code}"
                if route.kind == "admin" and response.status_code == 302:
                    # The admin's logout sends a non-staff user to the index, which asks for
                    # the login.
                    login = "/admin/" if route.name == "admin:logout" else "/admin/login/"
                    assert response["Location"].startswith(login), where

    assert snapshot(alice) == before


def test_every_admin_model_is_behind_the_staff_login(client, bob):
    """The walk covers every registered model; B is signed in but not staff."""
    client.force_login(bob)
    for model in admin.site._registry:
        path = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/"), path


def test_staff_see_the_admin(admin_client):
    assert admin_client.get("/admin/devices/device/").status_code == 200


def test_callback_settings_cannot_reference_another_users_objects(alice, bob, bearer_client):
    """B's own device, pointed at A's bucket, endpoint or property by id: 400, as if they did
    not exist (they do not, for B)."""
    own = DeviceFactory(owner=bob, identifier="bob_dev")
    client = bearer_client(bob)
    path = f"/v3/users/{bob.username}/devices/{own.identifier}/callback"
    for action, target in [
        ("write_bucket", alice.bucket.identifier),
        ("call_endpoint", alice.endpoint.identifier),
        ("set_property", alice.prop.identifier),
    ]:
        response = client.put(path, {"actions": {action: target}}, content_type="application/json")
        assert response.status_code == 400, (action, response.content)
        assert action in response.json()["error"]["message"]


def test_a_device_token_opens_only_its_own_device(alice, bob, callback_client):
    """B's device token on A's callback is 403 and stores nothing."""
    own = DeviceFactory(owner=bob, identifier="bob_dev")
    before = snapshot(alice)

    response = callback_client.post(alice.device, {"x": 1}, token=callback_token_for(own))

    assert response.status_code == 403
    assert snapshot(alice) == before

"""Callback Settings' choices (issue 16): each selector is searchable in the browser (a plain
select without JS), and its "Create a bucket" / "Create an endpoint" / "Add a property" link
opens the create page, which comes back to the settings with the new one chosen and its action
ticked. The way back (``next``) is a path of this site only."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from buckets.models import Bucket
from devices.models import CallbackSettings, Property
from endpoints.models import Endpoint
from tests.factories import BucketFactory, DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

SETTINGS = "/devices/sensor1/callback/settings"


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def device(user):
    return DeviceFactory(owner=user, identifier="sensor1")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def settings_page(console, **params):
    response = console.get(SETTINGS, params)
    assert response.status_code == 200
    return response


def create_links(response):
    """{action: (create page path, next)} of the settings page's links."""
    links = {}
    for row in response.context["rows"]:
        url = urlsplit(row["create_url"])
        links[row["action"]] = (url.path, parse_qs(url.query)["next"][0])
    return links


BUCKET = {"identifier": "b2", "name": "New", "enabled": "on", "retention_unit": "days"}
ENDPOINT = {
    "identifier": "hook",
    "type": "http_request",
    "enabled": "on",
    "http_request-url": "https://example.com/hook",
    "http_request-method": "POST",
    "http_request-body_type": "json",
}
PROPERTY = {"identifier": "reply", "value": '{"led": "on"}'}


def test_every_selector_is_searchable_and_has_a_create_link(console, device, user):
    BucketFactory(owner=user, identifier="b1")

    response = settings_page(console)
    body = response.content.decode()

    for action, noun in [
        ("write_bucket", "buckets"),
        ("set_property", "properties"),
        ("call_endpoint", "endpoints"),
        ("send_property", "properties"),
    ]:
        assert f'data-searchable="{noun}"' in body.split(f'id="id_{action}"')[0].rsplit("<", 1)[1]
    assert create_links(response) == {
        "write_bucket": ("/buckets/new", f"{SETTINGS}?choose=write_bucket"),
        "set_property": ("/devices/sensor1/properties/new", f"{SETTINGS}?choose=set_property"),
        "call_endpoint": ("/endpoints/new", f"{SETTINGS}?choose=call_endpoint"),
        "send_property": ("/devices/sensor1/properties/new", f"{SETTINGS}?choose=send_property"),
    }
    assert ">Create a bucket</a>" in body
    assert ">Create an endpoint</a>" in body
    assert body.count(">Add a property</a>") == 2
    assert "You have no endpoints yet." in body and "You have no buckets yet." not in body


@pytest.mark.parametrize(
    ("action", "data", "model"),
    [
        ("write_bucket", BUCKET, Bucket),
        ("call_endpoint", ENDPOINT, Endpoint),
        ("send_property", PROPERTY, Property),
    ],
)
def test_created_from_the_settings_comes_back_chosen(console, device, action, data, model):
    create, back = create_links(settings_page(console))[action]

    # The create page's Cancel goes back too.
    form = console.get(create, {"next": back})
    assert form.context["return_to"] == back
    assert f'href="{back}"' in form.content.decode().replace("&amp;", "&")

    response = console.post(f"{create}?next={back.replace('?', '%3F').replace('=', '%3D')}", data)

    created = model.objects.get(identifier=data["identifier"])
    assert response.status_code == 302
    assert response["Location"] == f"{back}&created={created.identifier}"
    page = console.get(response["Location"])
    form = page.context["form"]
    assert form[action].value() == created.identifier
    assert form[f"{action}_on"].value() is True
    assert "created." in page.content.decode()  # the create page's message
    assert "Created and chosen: save the settings to use it." in page.content.decode()
    # Nothing is saved until the settings are.
    assert not CallbackSettings.objects.filter(device=device).exclude(**{action: None}).exists()

    console.post(SETTINGS, {f"{action}_on": "on", action: created.identifier, "timeout": "10"})
    assert getattr(CallbackSettings.objects.get(device=device), action) == created


@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.example",
        "//evil.example/devices/",
        "https://evil.example",
        "https://evil.example/devices/sensor1/callback/settings",
        "/\\evil.example",
        "/\t/evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "devices/sensor1",
    ],
)
def test_next_to_another_site_is_ignored(console, device, next_url):
    form = console.get(reverse("console-bucket-create"), {"next": next_url})
    assert form.context["return_to"] is None
    assert "evil.example" not in form.content.decode()

    response = console.post(
        reverse("console-bucket-create") + "?" + f"next={next_url}".replace("\t", "%09"), BUCKET
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("console-bucket", args=["b2"])


def test_next_is_only_for_creating(console, device, user):
    BucketFactory(owner=user, identifier="b1")

    response = console.post(f"/buckets/b1/edit?next={SETTINGS}", BUCKET | {"identifier": "b1"})

    assert response["Location"] == reverse("console-bucket", args=["b1"])


@pytest.mark.parametrize(
    "params",
    [
        {"choose": "write_bucket", "created": "theirs"},  # another user's bucket
        {"choose": "write_bucket", "created": "nothing"},
        {"choose": "write_bucket", "created": ""},
        {"choose": "timeout", "created": "b1"},
        {"choose": "nonsense", "created": "b1"},
        {"created": "b1"},
    ],
)
def test_choosing_something_not_offered_chooses_nothing(console, device, user, params):
    BucketFactory(owner=user, identifier="b1")
    BucketFactory(identifier="theirs")

    form = settings_page(console, **params).context["form"]

    assert form["write_bucket"].value() == ""
    assert form["write_bucket_on"].value() is False
    assert form["timeout"].value() == 10


def test_a_post_is_not_changed_by_choose(console, device, user):
    BucketFactory(owner=user, identifier="b1")

    response = console.post(
        f"{SETTINGS}?choose=write_bucket&created=b1", {"write_bucket": "", "timeout": "10"}
    )

    assert response.status_code == 302
    assert CallbackSettings.objects.get(device=device).write_bucket is None

"""The console's account page (issue 16, item 5): a user changes their own password and manages
their long-lived API tokens (create with a preset or custom allow/deny, the value shown once,
enable, disable, revoke); a token's last use is recorded at most once a minute."""

import json
import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils import timezone

from accounts.auth import access_token_value
from accounts.models import AccessToken, RefreshTokenFamily
from accounts.permissions import PRESETS, READ_ACTIONS
from accounts.services import access_token_create
from core.events import PERMISSION
from tests.factories import UserFactory
from tests.test_isolation import all_routes

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"
NEW_PASSWORD = "violet-harbour-8812"
ACCOUNT = "/account/"


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def page(console):
    response = console.get(ACCOUNT)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def bearer(value):
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {value}"
    return client


def oauth(client, body):
    return client.post("/oauth/token", urlencode(body), "application/x-www-form-urlencoded")


def devices(value):
    return bearer(value).get("/v1/users/alice/devices").status_code


def change_password(console, old=PASSWORD, new1=NEW_PASSWORD, new2=None):
    body = {"old_password": old, "new_password1": new1, "new_password2": new2 or new1}
    return console.post(reverse("console-account-password"), body)


def create_token(console, **fields):
    body = {"identifier": "gateway", "name": "Gateway", "permissions": "full", **fields}
    return console.post(reverse("console-token-create"), body)


def errors_of(body, field):
    """The error list of one field of a form (as console/partials/field.html draws it)."""
    start = body.index(f'id="field-{field}"')
    end = body.find('id="field-', start + 1)
    found = re.search(
        r'<ul class="errorlist".*?</ul>', body[start : end if end > 0 else None], re.S
    )
    return found.group(0) if found else ""


def make_token(owner, identifier="gw", **fields):
    fields = {"name": "Gateway", "allow": PRESETS["full"].allow, **fields}
    return access_token_create(owner=owner, identifier=identifier, **fields)


# The page.


def test_the_account_page_is_linked_from_the_navigation_and_needs_a_login(client, console):
    assert client.get(ACCOUNT).status_code == 200
    assert f'href="{ACCOUNT}"' in console.get(reverse("console-device-list")).content.decode()
    anonymous = Client().get(ACCOUNT)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


def test_the_page_shows_the_password_form_and_an_empty_token_list(console):
    body = page(console)

    assert "Current password" in body and "New password, again" in body
    assert "No API tokens yet" in body
    assert reverse("console-token-create") in body


def test_the_page_is_never_cached(console):
    assert "no-store" in console.get(ACCOUNT)["Cache-Control"]


# Password.


def test_a_wrong_current_password_is_a_form_error_and_changes_nothing(console, user):
    response = change_password(console, old="not-my-password")

    assert response.status_code == 200
    assert "This is not your current password." in errors_of(
        response.content.decode(), "old_password"
    )
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("new1", "new2", "field", "message"),
    [
        ("abc12", None, "new_password2", "This password is too short."),
        ("password123", None, "new_password2", "This password is too common."),
        ("13579246801357", None, "new_password2", "This password is entirely numeric."),
        ("alice-example", None, "new_password2", "too similar to the"),
        (NEW_PASSWORD, "violet-harbour-8813", "new_password2", "fields didn’t match"),
        ("", "", "new_password1", "This field is required."),
    ],
)
def test_the_password_validators_say_what_is_wrong(console, user, new1, new2, field, message):
    response = change_password(console, new1=new1, new2=new2 if new2 is not None else new1)

    body = response.content.decode()
    assert response.status_code == 200
    assert "Please correct the errors below." in body
    assert message in errors_of(body, field)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_new_password_signs_out_other_sessions_and_revokes_refresh_tokens(console, user):
    other = Client()
    other.force_login(user)
    assert other.get(ACCOUNT).status_code == 200
    api = oauth(Client(), {"grant_type": "password", "username": "alice", "password": PASSWORD})
    refresh = api.json()["refresh_token"]
    token = make_token(user)

    response = change_password(console)

    assert response.status_code == 302 and response["Location"] == ACCOUNT
    body = page(console)  # this session goes on
    assert "Your password was changed" in body and "1 API login (refresh tokens)" in body
    assert other.get(ACCOUNT)["Location"].startswith("/login/")  # the other one is signed out
    assert not RefreshTokenFamily.objects.filter(owner=user, revoked=False).exists()
    spent = oauth(Client(), {"grant_type": "refresh_token", "refresh_token": refresh})
    assert spent.status_code == 401
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # Long-lived tokens are managed one by one: they keep working.
    assert devices(access_token_value(token)) == 200


def test_wrong_current_passwords_count_as_failed_logins(console, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = "2/15m"
    change_password(console, old="guess-one")
    change_password(console, old="guess-two")

    response = change_password(console)  # the right one, too late

    assert "Too many failed logins" in response.content.decode()
    locked = oauth(Client(), {"grant_type": "password", "username": "alice", "password": PASSWORD})
    assert locked.status_code == 429


def test_the_password_page_itself_is_the_account_page(console):
    assert console.get(reverse("console-account-password"))["Location"] == ACCOUNT


# Tokens: create and show once.


def test_a_new_token_is_shown_once_and_works(console, user):
    response = create_token(console, permissions="read")

    assert response.status_code == 302 and response["Location"] == ACCOUNT  # not in the URL
    token = AccessToken.objects.get(owner=user, identifier="gateway")
    value = access_token_value(token)
    first = page(console)
    assert value in first
    assert "Copy its value now: it is not shown again." in first
    assert 'data-copy="#new-token-value"' in first
    again = page(console)
    assert value not in again
    assert 'id="new-token-value"' not in again
    assert devices(value) == 200
    assert bearer(value).post("/v1/users/alice/devices", {"device": "x1"}).status_code == 403


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_stores_its_permissions(console, user, preset):
    create_token(console, permissions=preset)

    token = AccessToken.objects.get(owner=user)
    assert (token.allow, token.deny) == (PRESETS[preset].allow, PRESETS[preset].deny)
    assert PRESETS[preset].label in page(console)


def test_the_events_preset_is_thingers_read_events():
    assert PRESETS["events"].allow == {"Events": {"*": ["ReadEvents"]}}


def test_custom_permissions_are_stored_as_typed(console, user):
    allow = {"Bucket": {"readings": ["ReadBucket"]}, "Device": {"*": "*"}}
    deny = {"Device": {"*": ["DeleteDevice"]}}

    response = create_token(
        console, permissions="custom", allow=json.dumps(allow), deny=json.dumps(deny)
    )

    assert response.status_code == 302
    token = AccessToken.objects.get(owner=user)
    assert (token.allow, token.deny) == (allow, deny)
    body = page(console)
    assert "Custom" in body and "ReadBucket" in body
    value = access_token_value(token)
    assert devices(value) == 200
    assert bearer(value).get("/v1/users/alice/buckets").status_code == 403


@pytest.mark.parametrize(
    ("allow", "deny", "field", "message"),
    [
        ("{Device: *}", "", "allow", "This is not valid JSON"),
        ('["Device"]', "", "allow", "It must be a JSON object"),
        ('{"Device": "*"}', "", "allow", "must map resource names to actions"),
        ('{"Device": {"*": 3}}', "", "allow", "must be an action"),
        ('{"Dev ice": {"*": "*"}}', "", "allow", "is not a resource type"),
        ("", "", "allow", "Give at least one permission"),
        ('{"*": {"*": "*"}}', '{"Token": []}', "deny", "must map resource names to actions"),
        ('{"*": {"*": "*"}}', "nope", "deny", "This is not valid JSON"),
    ],
)
def test_invalid_custom_permissions_are_a_form_error(console, allow, deny, field, message):
    response = create_token(console, permissions="custom", allow=allow, deny=deny)

    body = response.content.decode()
    assert response.status_code == 200
    assert message in errors_of(body, field)
    assert not AccessToken.objects.exists()


def test_the_json_boxes_are_ignored_for_a_preset(console, user):
    response = create_token(console, permissions="devices", allow="not json at all")

    assert response.status_code == 302
    assert AccessToken.objects.get(owner=user).allow == {"Device": {"*": "*"}}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"identifier": "no spaces"}, "identifier", "Use 1 to 50 letters"),
        ({"name": ""}, "name", "This field is required."),
        ({"permissions": "root"}, "permissions", "Select a valid choice."),
        ({"expire": "2001-01-01T00:00"}, "expire", "Choose a time in the future"),
    ],
)
def test_token_fields_are_checked(console, fields, field, message):
    response = create_token(console, **fields)

    assert response.status_code == 200
    assert message in errors_of(response.content.decode(), field)
    assert not AccessToken.objects.exists()


def test_a_duplicate_token_id_is_an_error_on_the_id(console, user):
    make_token(user, "gateway", name="First")

    response = create_token(console)

    assert "You already have a token with this ID." in errors_of(
        response.content.decode(), "identifier"
    )


def test_an_expiry_is_stored_in_milliseconds_and_listed(console, user):
    when = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)

    create_token(console, expire=when.strftime("%Y-%m-%dT%H:%M"))

    token = AccessToken.objects.get(owner=user)
    assert token.expire == int(when.timestamp() * 1000)
    assert when.strftime("%b %-d, %Y") in page(console)


# Tokens: the list.


def test_the_list_shows_each_tokens_name_id_permissions_times_and_state(console, user):
    used = timezone.now() - timedelta(hours=3)
    make_token(user, "node_red", name="Node-RED", allow=PRESETS["read"].allow)
    make_token(user, "old", name="Old script", enabled=False)
    expired = make_token(user, "gone", name="Gone", expire=1_000)
    AccessToken.objects.filter(identifier="node_red").update(last_used=used)

    body = page(console)
    row = {
        ident: re.search(rf'<tr data-token="{ident}">(.*?)</tr>', body, re.S).group(1)
        for ident in ("node_red", "old", "gone")
    }

    assert "Node-RED" in row["node_red"] and "node_red" in row["node_red"]
    assert "Read only" in row["node_red"] and "Enabled" in row["node_red"]
    assert used.strftime("%b %-d, %Y") in row["node_red"]
    assert "Never" in row["old"] and "Disabled" in row["old"] and "Enable<" in row["old"]
    assert "Expired" in row["gone"] and expired.expires_at.strftime("%b %-d, %Y") in row["gone"]
    assert "Full access" in row["old"]
    for token in AccessToken.objects.all():
        assert access_token_value(token) not in body  # never listed


# Tokens: enable, disable, revoke.


def test_disable_and_enable_a_token(console, user):
    token = make_token(user)
    value = access_token_value(token)
    url = reverse("console-token-enable", args=["gw"])

    console.post(url, {"enabled": "false"})
    assert devices(value) == 401
    assert "Token gw disabled" in page(console)

    console.post(url, {"enabled": "true"})
    assert devices(value) == 200
    assert "Token gw enabled." in page(console)

    assert console.post(url, {"enabled": "maybe"}).status_code == 400


def test_revoking_a_token_refuses_it_at_once(console, user):
    token = make_token(user)
    value = access_token_value(token)
    url = reverse("console-token-revoke", args=["gw"])
    body = page(console)
    assert f'action="{url}"' in body and 'data-dialog="revoke-gw"' in body  # the confirmation

    response = console.post(url)

    assert response.status_code == 302 and response["Location"] == ACCOUNT
    assert not AccessToken.objects.exists()
    assert devices(value) == 401
    assert "Token gw revoked" in page(console)
    assert console.get(url).status_code == 405


def test_another_users_token_ids_are_404(console):
    bob = UserFactory(username="bob")
    theirs = make_token(bob, "bobs", name="Bob's secret token")

    assert console.post(reverse("console-token-revoke", args=["bobs"])).status_code == 404
    enable = reverse("console-token-enable", args=["bobs"])
    assert console.post(enable, {"enabled": "false"}).status_code == 404
    assert "Bob's secret token" not in page(console)
    theirs.refresh_from_db()
    assert theirs.enabled


# The presets and the actions the API declares.


def declared_actions():
    """{(resource type, action): {HTTP methods}} over every API view's ``actions``."""
    found = {}
    for route in all_routes():
        view = getattr(route.view, "cls", None) or getattr(route.view, "view_class", None)
        for method, scope in (getattr(view, "actions", None) or {}).items():
            found.setdefault(scope, set()).add(method)
    found.setdefault(PERMISSION, set()).add("GET")  # the events WebSocket
    return found


def test_the_read_only_preset_grants_every_read_and_nothing_else():
    declared = declared_actions()
    reads = {scope for scope, methods in declared.items() if methods <= {"GET", "HEAD"}}
    secrets = {("Device", "ReadDeviceCallbackToken")}
    tokens = {scope for scope in reads if scope[0] == "Token"}
    granted = {(kind, action) for kind, actions in READ_ACTIONS.items() for action in actions}

    assert granted == reads - secrets - tokens
    assert get_resolver()  # the routes were there to walk

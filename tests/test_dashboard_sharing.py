"""A dashboard's read-only link (issue 17, item 5): the owner makes, remakes and revokes it and
lets its controls work; only the token's SHA-256 is stored; the link opens the dashboard
logged out, and nothing else of the account: a walk of every other route with its token."""

import hashlib
import html
import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import Client
from gunicorn.config import Config

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
from tests.test_isolation import PUBLIC, SHARED, all_routes
from thinger_http.gunicorn_log import MaskedLogger
from thinger_http.log import mask

pytestmark = pytest.mark.django_db

# What the link must never show: the account's other data.
PRIVATE = ("alice@example.com", "Private board 7f3", "Secret plot 41b", "9941.5")
WIDGETS = [
    {
        "id": "temp",
        "type": "value",
        "title": "Temperature",
        "source": {"kind": "property", "device": "sensor1", "property": "state", "field": "t"},
    },
    {
        "id": "led",
        "type": "switch",
        "title": "Lamp",
        "source": {"kind": "property", "device": "sensor1", "property": "state", "field": "led"},
    },
    {"id": "status", "type": "device_status", "source": {"kind": "device", "device": "sensor1"}},
]


@pytest.fixture
def alice():
    user = UserFactory(username="alice")
    sensor = DeviceFactory(owner=user, identifier="sensor1", name="Greenhouse sensor")
    PropertyFactory(device=sensor, identifier="state", value={"t": 21.5, "led": False})
    other = DeviceFactory(owner=user, identifier="hidden2", name="Secret plot 41b")
    PropertyFactory(device=other, identifier="config", value={"level": 9941.5})
    bucket = BucketFactory(owner=user, identifier="readings", name="Secret plot 41b")
    BucketRecordFactory(bucket=bucket, value={"t": 9941.5})
    services.dashboard_create(
        owner=user, identifier="private", name="Private board 7f3", widgets=[]
    )
    return user


@pytest.fixture
def board(alice):
    return services.dashboard_create(
        owner=alice, identifier="greenhouse", name="Greenhouse", widgets=WIDGETS
    )


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


def link_of(response):
    """The link a creation page shows, as a path."""
    found = re.search(
        r'id="share-link" value="https?://[^/"]+(/shared/dashboards/[^"]+)"', text(response)
    )
    assert found, "the page shows no link"
    return found.group(1)


def text(response):
    return html.unescape(response.content.decode())


def share(console, identifier="greenhouse"):
    response = console.post(f"/dashboards/{identifier}/share")
    assert response.status_code == 200
    return link_of(response)


def token_in(path):
    return path.split("/")[3]


# --- The owner's side ------------------------------------------------------------------------


def test_the_dashboard_page_leads_to_sharing(console, board):
    page = console.get("/dashboards/greenhouse/")

    assert 'href="/dashboards/greenhouse/share"' in page.content.decode()


def test_a_dashboard_starts_without_a_link(console, board):
    page = console.get("/dashboards/greenhouse/share")

    assert page.status_code == 200
    assert "This dashboard has no link." in text(page)
    assert "/shared/dashboards/" not in text(page)


def test_the_link_is_shown_once(console, board):
    path = share(console)

    again = console.get("/dashboards/greenhouse/share")
    assert "This dashboard has a link." in text(again)
    assert token_in(path) not in text(again)
    assert "no-store" in again["Cache-Control"]


def test_only_the_tokens_hash_is_stored(console, board):
    token = token_in(share(console))

    board.refresh_from_db()
    assert len(token) >= 43
    assert board.share_token == hashlib.sha256(token.encode()).hexdigest()
    everything = io.StringIO()
    call_command("dumpdata", stdout=everything)
    assert token not in everything.getvalue()


def test_a_new_link_revokes_the_old(console, board):
    old = share(console)
    new = share(console)

    assert old != new
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200


def test_a_revoked_link_opens_nothing(console, board):
    path = share(console)

    response = console.post("/dashboards/greenhouse/share/revoke")

    assert response.status_code == 302
    assert Dashboard.objects.get(pk=board.pk).share_token is None
    gone = Client().get(path)
    assert gone.status_code == 404
    assert "Page not found" in text(gone)
    assert gone["Referrer-Policy"] == "no-referrer"
    assert "no link" in text(console.get("/dashboards/greenhouse/share"))


def test_a_disabled_dashboard_opens_nothing(console, board):
    path = share(console)
    services.dashboard_update(dashboard=board, enabled=False)

    assert Client().get(path).status_code == 404


def test_a_wrong_token_is_the_404_page():
    response = Client().get("/shared/dashboards/not-a-token-at-all/")

    assert response.status_code == 404
    assert "Page not found" in text(response)


def test_another_user_cannot_share_your_dashboard(board):
    bob = Client()
    bob.force_login(UserFactory(username="bob"))

    assert bob.get("/dashboards/greenhouse/share").status_code == 404
    assert bob.post("/dashboards/greenhouse/share").status_code == 404
    assert bob.post("/dashboards/greenhouse/share/revoke").status_code == 404
    assert (
        bob.post("/dashboards/greenhouse/share/controls", {"controls": "true"}).status_code == 404
    )
    board.refresh_from_db()
    assert board.share_token is None and not board.share_controls


def test_the_owner_lets_the_controls_work_and_stops_them(console, board):
    response = console.post("/dashboards/greenhouse/share/controls", {"controls": "true"})

    assert response.status_code == 302
    board.refresh_from_db()
    assert board.share_controls
    assert "work on the link" in text(console.get("/dashboards/greenhouse/share"))

    console.post("/dashboards/greenhouse/share/controls", {"controls": "false"})
    board.refresh_from_db()
    assert not board.share_controls


def test_controls_take_true_or_false(console, board):
    response = console.post("/dashboards/greenhouse/share/controls", {"controls": "yes"})

    assert response.status_code == 400


# --- The link, logged out --------------------------------------------------------------------


def test_the_link_shows_the_dashboard_logged_out(console, board):
    path = share(console)

    response = Client().get(path)

    body = text(response)
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]
    assert "no-store" in response["Cache-Control"]
    assert "Greenhouse" in body
    assert re.search(r'data-widget="temp".*?data-value>21.5<', body, re.S)
    assert 'data-widget="status"' in body


def test_the_link_shows_nothing_else_of_the_account(console, board):
    path = share(console)

    body = text(Client().get(path))

    hrefs = set(re.findall(r'href="([^"]*)"', body))
    assert all(href.startswith(("/static/", "data:")) for href in hrefs), hrefs
    assert 'action="/dashboards/' not in body
    for secret in PRIVATE:
        assert secret not in body
    assert "Log out" not in body and "Edit" not in body


def test_controls_are_disabled_on_the_link_by_default(console, board):
    path = share(console)
    anonymous = Client(enforce_csrf_checks=True)
    page = anonymous.get(path)
    assert re.search(
        r'data-widget="led".*?<fieldset class="control-fields" disabled', text(page), re.S
    )

    response = anonymous.post(
        f"{path}widgets/led/write",
        {"value": "on", "csrfmiddlewaretoken": anonymous.cookies["csrftoken"].value},
    )

    assert response.status_code == 403
    assert Property.objects.get(identifier="state").value["led"] is False


def test_controls_write_through_the_link_when_allowed(console, board):
    path = share(console)
    services.dashboard_update(dashboard=board, share_controls=True)
    anonymous = Client(enforce_csrf_checks=True)
    page = text(anonymous.get(path))
    assert f'action="{path}widgets/led/write"' in page
    assert "disabled" not in re.search(r'<fieldset class="control-fields"[^>]*>', page).group(0)

    response = anonymous.post(
        f"{path}widgets/led/write",
        {"value": "on", "csrfmiddlewaretoken": anonymous.cookies["csrftoken"].value},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{path}#tile-led"
    assert Property.objects.get(identifier="state").value == {"t": 21.5, "led": True}
    after = text(anonymous.get(path))
    assert "Sent." in after
    assert re.search(r'data-widget="led".*?data-value>On<', after, re.S)


def test_a_write_through_the_link_needs_the_csrf_token(console, board):
    path = share(console)
    services.dashboard_update(dashboard=board, share_controls=True)

    response = Client(enforce_csrf_checks=True).post(f"{path}widgets/led/write", {"value": "on"})

    assert response.status_code == 403
    assert Property.objects.get(identifier="state").value["led"] is False


def test_a_write_through_the_link_checks_the_value(console, board):
    path = share(console)
    services.dashboard_update(dashboard=board, share_controls=True)
    anonymous = Client()

    response = anonymous.post(f"{path}widgets/led/write", {"value": "maybe"}, follow=True)

    assert 'a switch is turned "on" or "off"' in text(response)
    assert Property.objects.get(identifier="state").value["led"] is False


def test_the_link_writes_only_its_dashboards_control_widgets(console, board, alice):
    path = share(console)
    services.dashboard_update(dashboard=board, share_controls=True)

    for widget in ("temp", "status", "nowhere"):
        response = Client().post(f"{path}widgets/{widget}/write", {"value": "on"}, follow=True)
        assert "has no control widget" in text(response)
    assert Client().get(f"{path}widgets/led/write").status_code == 405
    assert Property.objects.get(identifier="state").value["led"] is False


# --- Everything else, with the token ---------------------------------------------------------


def _filled(route, values):
    path = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", lambda m: values[m.group("name")], route.pattern)
    path = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", lambda m: values[m.group("name")], path)
    return "/" + path.replace("^", "").replace("$", "")


def test_the_token_opens_nothing_else(console, board, alice):
    token = token_in(share(console))
    other = services.dashboard_create(owner=alice, identifier="second", widgets=[])
    other_path = token_in(share(console, "second"))
    assert other.pk
    values = {
        "user": "alice",
        "device": "sensor1",
        "property": "state",
        "prop": "state",
        "bucket": "readings",
        "endpoint": "e1",
        "dashboard": "greenhouse",
        "widget": "led",
        "token": token,
        "file": "x.csv",
        "call": "1",
        "version": "v2",
        "object_id": str(board.pk),
        "id": str(alice.pk),
        "content_type_id": "1",
        "app_label": "dashboards",
        "url": "nowhere/",
    }
    paths = []
    for route in all_routes():
        if route.name in PUBLIC | SHARED or route.name == "admin:login":
            continue
        if route.kwargs - set(values):
            continue
        paths.append((route.name, _filled(route, values)))
    assert len(paths) > 50
    assert any(name.startswith("console-") for name, _ in paths)
    assert any(name.startswith("admin:") for name, _ in paths)
    assert ("events", "/v1/users/alice/events") in paths

    # The token of one dashboard does not open the other one's link.
    paths.append(("another link", f"/shared/dashboards/{other_path}x/"))
    paths.append(("another link's write", f"/shared/dashboards/{token}/widgets/nowhere/write"))
    bearer = Client(headers={"authorization": f"Bearer {token}"})
    anonymous = Client()
    for name, path in paths:
        for client, url in (
            (anonymous, path),
            (bearer, path),
            (anonymous, f"{path}?authorization={token}"),
        ):
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                where = f"{method.upper()} {url} ({name})"
                assert response.status_code in (302, 401, 403, 404, 405), where
                if response.status_code == 302:
                    # the admin's logout sends to its index, which asks for the login
                    assert "login" in response["Location"] or name == "admin:logout", where
                body = b"".join(response) if response.streaming else response.content
                body = body.decode(errors="replace")
                for secret in (*PRIVATE, "Greenhouse sensor", "21.5"):
                    assert secret not in body, f"{where}: {secret!r} in the body"
    assert Property.objects.get(identifier="state").value == {"t": 21.5, "led": False}


# --- Logs ------------------------------------------------------------------------------------


def test_the_token_of_a_link_is_masked_in_log_lines():
    line = '"GET /shared/dashboards/Zq3_x-9AbC/widgets/led/write HTTP/1.1" 403'

    assert mask(line) == '"GET /shared/dashboards/***/widgets/led/write HTTP/1.1" 403'


def test_gunicorns_access_log_masks_the_token(tmp_path):
    log = tmp_path / "access.log"
    config = Config()
    config.set("accesslog", str(log))
    config.set("access_log_format", '"%(m)s %(U)s %(r)s" %(s)s')
    logger = MaskedLogger(config)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/shared/dashboards/Zq3_x-9AbC/",
        "PATH_INFO": "/shared/dashboards/Zq3_x-9AbC/",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    response = SimpleNamespace(status="200", response_length=10, headers=(), sent=10)
    request = SimpleNamespace(headers=())

    logger.access(response, request, environ, timedelta(seconds=0.01))

    written = log.read_text()
    assert "/shared/dashboards/***/" in written
    assert "Zq3_x-9AbC" not in written

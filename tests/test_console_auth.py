"""Console login and logout; every console page asks for a login first."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Every console page, with placeholder arguments (the login check comes before any lookup).
PAGES = [
    ("console-home", []),
    ("console-device-list", []),
    ("console-device-list-status", []),
    ("console-device-create", []),
    ("console-device", ["d1"]),
    ("console-device-status", ["d1"]),
    ("console-device-edit", ["d1"]),
    ("console-device-callback", ["d1"]),
    ("console-device-callback-settings", ["d1"]),
    ("console-device-properties", ["d1"]),
    ("console-property-create", ["d1"]),
    ("console-property-edit", ["d1", "p1"]),
    ("console-bucket-list", []),
    ("console-bucket-create", []),
    ("console-bucket", ["b1"]),
    ("console-bucket-edit", ["b1"]),
    ("console-bucket-export-progress", ["b1", "f.csv"]),
    ("console-bucket-export-download", ["b1", "f.csv"]),
    ("console-endpoint-list", []),
    ("console-endpoint-create", []),
    ("console-endpoint", ["e1"]),
    ("console-endpoint-edit", ["e1"]),
]

POST_ONLY = [
    ("console-device-delete", ["d1"]),
    ("console-device-token-rotate", ["d1"]),
    ("console-property-delete", ["d1", "p1"]),
    ("console-bucket-delete", ["b1"]),
    ("console-bucket-clear", ["b1"]),
    ("console-bucket-export", ["b1"]),
    ("console-bucket-export-delete", ["b1", "f.csv"]),
    ("console-endpoint-delete", ["e1"]),
    ("console-endpoint-test", ["e1"]),
]


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_pages_ask_for_a_login(client, name, args):
    url = reverse(name, args=args)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('console-login')}?next={url}"


@pytest.mark.parametrize(("name", "args"), POST_ONLY)
def test_actions_ask_for_a_login(client, name, args):
    url = reverse(name, args=args)

    response = client.post(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console-login"))


@pytest.mark.parametrize(("name", "args"), POST_ONLY)
def test_actions_refuse_get(client, name, args):
    client.force_login(UserFactory())

    response = client.get(reverse(name, args=args))

    assert response.status_code == 405


def test_login_page(client):
    response = client.get(reverse("console-login"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Log in to the console" in body
    assert 'name="csrfmiddlewaretoken"' in body


def test_login_goes_to_the_devices(client):
    UserFactory(username="alice")

    response = client.post(
        reverse("console-login"), {"username": "alice", "password": "secret-pass-123"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("console-home")
    assert client.get(reverse("console-home"))["Location"] == reverse("console-device-list")


def test_login_with_a_wrong_password_says_so(client):
    UserFactory(username="alice")

    response = client.post(reverse("console-login"), {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_login_keeps_next(client):
    UserFactory(username="alice")
    target = reverse("console-bucket-list")

    response = client.post(
        reverse("console-login"),
        {"username": "alice", "password": "secret-pass-123", "next": target},
    )

    assert response["Location"] == target


def test_logout(client):
    client.force_login(UserFactory())

    response = client.post(reverse("console-logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("console-login")
    assert client.get(reverse("console-device-list")).status_code == 302


def test_header_shows_the_user_and_a_logout_form(client):
    client.force_login(UserFactory(username="alice"))

    body = client.get(reverse("console-device-list")).content.decode()

    assert "alice" in body
    assert f'action="{reverse("console-logout")}"' in body


def test_forms_carry_csrf_tokens(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(UserFactory())

    response = strict.post(reverse("console-device-create"), {"identifier": "x"})

    assert response.status_code == 403

"""Password guessing (issue 18, item 5): failed logins are counted per account and per client
address on all three ways in (``/oauth/token``, the console's ``/login/``, the admin's
``/admin/login/``); past the limit that account, or that address, is locked for the rest of the
window with a 429, a message and ``Retry-After``, even for the right password. The address is
the peer's: a client's own ``X-Forwarded-For`` changes nothing unless the peer is a trusted proxy.
The API's rate is counted atomically: parallel clients get exactly the rate."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.cache import cache

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "secret-pass-123"  # noqa: S105 (UserFactory's)
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = "3/15m"
    settings.LOGIN_FAILURES_PER_ADDRESS = "6/15m"
    # Counters of this test's own.
    settings.RATELIMIT_CACHE_PREFIX = f"test-{uuid.uuid4().hex}:"
    yield
    cache.clear()


@pytest.fixture
def alice():
    return UserFactory(username="alice")


def oauth(client, username, password, **extra):
    body = f"grant_type=password&username={username}&password={password}"
    return client.post("/oauth/token", body, content_type=FORM, **extra)


def console(client, username, password, **extra):
    return client.post("/login/", {"username": username, "password": password}, **extra)


def admin(client, username, password, **extra):
    return client.post("/admin/login/", {"username": username, "password": password}, **extra)


LOGINS = {"oauth": oauth, "console": console, "admin": admin}


def assert_locked(response):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 900
    text = response.content.decode()
    assert "too many failed logins" in text.lower()


@pytest.mark.parametrize("way", LOGINS)
def test_an_account_is_locked_after_its_failures_even_for_the_right_password(client, alice, way):
    login = LOGINS[way]
    for _ in range(3):
        assert login(client, "alice", "wrong").status_code in (200, 401)  # a form error, or 401

    assert_locked(login(client, "alice", PASSWORD))
    assert_locked(login(client, "ALICE", "wrong"))  # the account, whatever the case typed


def test_the_lock_is_shared_by_the_three_ways_in(client, alice):
    oauth(client, "alice", "wrong")
    console(client, "alice", "wrong")
    admin(client, "alice", "wrong")

    assert_locked(oauth(client, "alice", PASSWORD))
    assert_locked(console(client, "alice", PASSWORD))
    assert oauth(client, "alice", "wrong")["Content-Type"] == "application/json"


def test_an_address_guessing_many_accounts_is_locked(client):
    for n in range(6):
        UserFactory(username=f"user{n}")
        assert oauth(client, f"user{n}", "wrong").status_code == 401
    UserFactory(username="fresh")

    assert_locked(oauth(client, "fresh", PASSWORD))
    # Another address is not: the same account from elsewhere logs in.
    assert oauth(client, "fresh", PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 200


def test_a_spoofed_forwarded_for_does_not_escape_the_limit(client):
    for n in range(6):
        UserFactory(username=f"user{n}")
        spoofed = {"HTTP_X_FORWARDED_FOR": f"203.0.113.{n}"}
        assert oauth(client, f"user{n}", "wrong", **spoofed).status_code == 401
    UserFactory(username="fresh")

    assert_locked(oauth(client, "fresh", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99"))


def test_behind_a_trusted_proxy_the_forwarded_address_counts(client, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    for n in range(6):
        UserFactory(username=f"user{n}")
        oauth(client, f"user{n}", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.5")
    UserFactory(username="fresh")

    assert_locked(oauth(client, "fresh", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5"))
    other = oauth(client, "fresh", PASSWORD, HTTP_X_FORWARDED_FOR="spoof, 203.0.113.6")
    assert other.status_code == 200


def test_a_success_before_the_limit_is_a_login(client, alice):
    for _ in range(2):
        oauth(client, "alice", "wrong")

    assert oauth(client, "alice", PASSWORD).status_code == 200


def test_a_bad_trusted_proxy_setting_stops_start_up(tmp_path):
    from tests.reliability import django_process

    result = django_process(tmp_path, "check", TRUSTED_PROXIES="10.0.0.0/8,not-a-network")

    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_parallel_clients_get_exactly_the_api_rate(live_server, settings):
    """8 clients at once with one user's token: exactly the rate gets through (the count is one
    atomic increment; it was a read, then a write)."""
    settings.API_RATE = "100/h"
    UserFactory(username="alice")
    token = requests.post(
        f"{live_server.url}/oauth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        timeout=30,
    ).json()["access_token"]
    url = f"{live_server.url}/v1/users/alice/devices"
    headers = {"Authorization": f"Bearer {token}"}

    def get(_):
        with requests.Session() as session:
            return [session.get(url, headers=headers, timeout=30).status_code for _ in range(25)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for batch in pool.map(get, range(8)) for status in batch]

    # The token's own request counted as the address's, not the user's: 100 for the user.
    assert statuses.count(200) == 100
    assert statuses.count(429) == 100

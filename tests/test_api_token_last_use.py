"""A long-lived token's last use (issue 16, item 5): recorded when it authenticates a request,
at most once a minute (no write on every API call), answered by the API in milliseconds."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.auth import access_token_value
from accounts.models import ADMIN_ACCESS, AccessToken
from accounts.services import access_token_create, access_token_touch
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return UserFactory(username="alice")


def make_token(owner, **fields):
    return access_token_create(
        owner=owner, identifier="gw", name="Gateway", allow=ADMIN_ACCESS, **fields
    )


def bearer(value):
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {value}"
    return client


def devices(value):
    return bearer(value).get("/v1/users/alice/devices").status_code


def updates_of_tokens(queries):
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and "accesstoken" in q["sql"]
    ]


def test_last_use_is_written_at_most_once_a_minute(user):
    token = make_token(user)
    client = bearer(access_token_value(token))

    with CaptureQueriesContext(connection) as first:
        assert client.get("/v1/users/alice/devices").status_code == 200
    token.refresh_from_db()
    stamp = token.last_used
    assert stamp is not None and timezone.now() - stamp < timedelta(seconds=5)
    assert len(updates_of_tokens(first)) == 1

    with CaptureQueriesContext(connection) as again:
        for _ in range(3):
            assert client.get("/v1/users/alice/devices").status_code == 200
    assert updates_of_tokens(again) == []
    token.refresh_from_db()
    assert token.last_used == stamp

    AccessToken.objects.filter(pk=token.pk).update(last_used=stamp - timedelta(seconds=50))
    with CaptureQueriesContext(connection) as recent:
        client.get("/v1/users/alice/devices")
    assert updates_of_tokens(recent) == []

    AccessToken.objects.filter(pk=token.pk).update(last_used=stamp - timedelta(seconds=61))
    client.get("/v1/users/alice/devices")
    token.refresh_from_db()
    assert token.last_used > stamp


def test_a_refused_token_records_no_use(user):
    token = make_token(user, enabled=False)

    assert devices(access_token_value(token)) == 401

    token.refresh_from_db()
    assert token.last_used is None


def test_the_api_answers_the_last_use_in_milliseconds(user, bearer_client):
    token = make_token(user)
    api = bearer_client(user)
    assert api.get("/v1/users/alice/tokens/gw").json()["last_used"] is None

    devices(access_token_value(token))

    token.refresh_from_db()
    listed = api.get("/v1/users/alice/tokens").json()
    assert listed[0]["last_used"] == int(token.last_used.timestamp() * 1000)


def test_the_schema_lists_the_last_use(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    properties = schema["components"]["schemas"]["TokenOut"]["properties"]
    assert properties["last_used"]["type"] == "integer"
    assert properties["last_used"]["nullable"] is True


def test_of_requests_that_read_the_same_stale_last_use_only_one_writes(user):
    make_token(user)
    first, second = AccessToken.objects.get(), AccessToken.objects.get()

    assert access_token_touch(token=first) is True
    assert access_token_touch(token=second) is False  # the conditional UPDATE found it fresh

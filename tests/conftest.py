import json
import uuid
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse

from buckets.models import BucketRecord
from devices.models import ConnectionEvent, Device, DeviceDailyStats, Property
from devices.tokens import callback_token_for
from endpoints.models import EndpointCall
from tests.events_server import events_server  # noqa: F401 (fixture for the events tests)
from tests.factories import (
    BucketFactory,
    DeviceFactory,
    EndpointFactory,
    PropertyFactory,
    callback_configure,
)
from tests.worker import (  # noqa: F401 (fixtures for the endpoint tests)
    celery_worker_process,
    endpoint_worker,
    enqueued,
    receiver,
)


@pytest.fixture
def device(db):
    return DeviceFactory()


def pytest_report_header(config):
    from django.conf import settings

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return f"thinger-http: database={db} broker={settings.CELERY_BROKER_URL.split(':')[0]}"


@pytest.fixture
def on_postgresql():
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``services`` need PostgreSQL, Redis and a real worker: run them only there."""
    from django.conf import settings

    if not (settings.EMBEDDED_DB or settings.EMBEDDED_BROKER):
        return
    skip = pytest.mark.skip(reason="needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)")
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_rate_limits(settings):
    """Fresh rate-limit counters for every test.

    A per-test key prefix rather than ``cache.clear()``: in services mode the cache is the Redis
    database that is also the Celery broker (and may be shared with other test runs).
    """
    settings.RATELIMIT_CACHE_PREFIX = f"rl:test:{uuid.uuid4().hex}:"
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()


@pytest.fixture(autouse=True)
def handed_activity(monkeypatch):
    """The device activity log's writes that the web side hands to a worker, kept here instead
    of published (unit tests must not publish: the broker may be a shared Redis). A test plays
    the worker with ``devices.activity.callback_activity_write(**each)``."""
    from devices import activity
    from devices.tasks import callback_activity_write

    activity._recent.clear()
    handed = []
    monkeypatch.setattr(
        callback_activity_write,
        "apply_async",
        lambda args=(), kwargs=None, **options: handed.append(kwargs),
    )
    return handed


_OWN_TOKEN = object()


class CallbackClient:
    """Calls a device's callback over HTTP as a device does: a raw body and the device's token.

    ``body`` is sent as is when it is bytes or str, JSON-encoded otherwise. ``token`` defaults to
    the device's own token; pass ``""`` to send none. ``content_type=""`` sends no content type.
    """

    def __init__(self, client):
        self.client = client

    def request(
        self,
        method,
        device,
        body=b"",
        *,
        token=_OWN_TOKEN,
        token_in="header",
        query=None,
        content_type="application/json",
        legacy=False,
    ):
        if token is _OWN_TOKEN:
            token = callback_token_for(device)
        query = dict(query or {})
        headers = {}
        if token and token_in == "query":
            query["authorization"] = token
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        path = callback_path(device, legacy=legacy)
        if query:
            path = f"{path}?{urlencode(query)}"
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        return self.client.generic(method, path, body, content_type=content_type, headers=headers)

    def path(self, device, *, legacy=False):
        return callback_path(device, legacy=legacy)

    def post(self, device, body=b"", **kwargs):
        return self.request("POST", device, body, **kwargs)

    def get(self, device, **kwargs):
        return self.request("GET", device, **kwargs)


def callback_path(device, *, legacy=False):
    name = "device-callback" if legacy else "device-callback-data"
    return reverse(name, kwargs={"user": device.owner.username, "device": device.identifier})


@pytest.fixture
def callback_client(client):
    return CallbackClient(client)


@pytest.fixture
def assert_json_error():
    """Check an API error: the status, JSON content type and ``{"error": {"message": ...}}``."""

    def check(response, status):
        assert response.status_code == status, response.content
        assert response["Content-Type"] == "application/json"
        message = response.json()["error"]["message"]
        assert isinstance(message, str)
        assert message
        return message

    return check


@pytest.fixture
def callback_device(db):
    """A device whose callback has every action on: write_bucket, set_property ``state``,
    call_endpoint and send_property ``reply`` (value ``{"led": "on"}``)."""
    device = DeviceFactory()
    callback_configure(
        device,
        write_bucket=BucketFactory(owner=device.owner),
        set_property=PropertyFactory(device=device, identifier="state"),
        call_endpoint=EndpointFactory(owner=device.owner),
        send_property=PropertyFactory(device=device, identifier="reply", value={"led": "on"}),
    )
    return device


@pytest.fixture
def assert_nothing_stored(db):
    """Check that no callback left a trace: no data, property value, endpoint call, statistics
    or connection state."""

    def check():
        assert not BucketRecord.objects.exists()
        assert not EndpointCall.objects.exists()
        assert list(
            Property.objects.filter(identifier="state").values_list("value", flat=True)
        ) in (
            [],
            [None],
        )
        assert not DeviceDailyStats.objects.exists()
        assert not ConnectionEvent.objects.exists()
        assert not Device.objects.filter(connected=True).exists()
        assert not Device.objects.filter(last_call_at__isnull=False).exists()

    return check


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hashing passwords the production way costs a quarter second each; tests need none of it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def bearer_client(db):
    """``bearer_client(user)``: a new test client that sends the user's OAuth access token, got
    from ``POST /oauth/token`` form-encoded as Thinger.io clients do (UserFactory's password)."""

    def make(user):
        client = Client()
        response = client.post(
            "/oauth/token",
            urlencode(
                {"grant_type": "password", "username": user.username, "password": "secret-pass-123"}
            ),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200, response.content
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {response.json()['access_token']}"
        return client

    return make

"""Bodies sent with ``Transfer-Encoding: chunked`` and no ``Content-Length`` (Node.js streams, some
embedded clients) reach every route that takes a body in full, through the WSGI application the
server runs, within the same size (413) and depth limits as bodies with a length."""

import io
import json
from urllib.parse import urlencode

import pytest

from buckets.models import BucketRecord
from devices.models import CallbackSettings, Device, Property
from devices.tokens import callback_token_for
from tests.factories import BucketFactory, DeviceFactory, UserFactory, callback_configure
from tests.wsgi_client import answer, environ
from thinger_http import wsgi

pytestmark = pytest.mark.django_db(transaction=True)


class Pieces(io.RawIOBase):
    """A request body as a server hands a chunked one over: a few bytes per read."""

    def __init__(self, body, piece=7):
        self._body, self._piece = io.BytesIO(body), piece

    def readable(self):
        return True

    def read(self, size=-1):
        size = self._piece if size is None or size < 0 else min(size, self._piece)
        return self._body.read(size)


def send(method, path, body, *, content_type="application/json", token=None, chunked=True):
    """(status, headers, body) of ``wsgi.application`` for a request with ``body`` chunked."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    env = environ(method, path, body, headers=headers)
    env["wsgi.input"] = Pieces(body)
    if chunked:
        del env["CONTENT_LENGTH"]
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    status, headers, content = answer(wsgi.application, env)
    return int(status.split()[0]), dict(headers), content


@pytest.fixture
def owner():
    return UserFactory(username="alice")


@pytest.fixture
def device(owner):
    device = DeviceFactory(owner=owner, identifier="d1")
    callback_configure(device, write_bucket=BucketFactory(owner=owner, identifier="b1"))
    return device


@pytest.fixture
def token(owner):
    """An API token, from ``/oauth/token`` with a chunked form body."""
    form = urlencode({"grant_type": "password", "username": "alice", "password": "secret-pass-123"})
    status, _, body = send(
        "POST", "/oauth/token", form.encode(), content_type="application/x-www-form-urlencoded"
    )
    assert status == 200, body
    return json.loads(body)["access_token"]


def records():
    return sorted(BucketRecord.objects.values_list("value", flat=True), key=json.dumps)


CALLBACK = "/v3/users/alice/devices/d1/callback"


def test_callback_data_chunked_is_stored(device):
    status, _, _ = send(
        "POST", f"{CALLBACK}/data", b'{"temperature": 21.5}', token=callback_token_for(device)
    )

    assert status == 200
    assert records() == [{"temperature": 21.5}]


def test_legacy_callback_chunked_is_stored(device):
    body = json.dumps([{"n": 1}, {"n": 2}]).encode()

    status, _, _ = send("POST", CALLBACK, body, token=callback_token_for(device))

    assert status == 200
    assert records() == [{"n": 1}, {"n": 2}]


# Each API route that takes a JSON body, and what shows that the chunked body arrived whole.
API_ROUTES = {
    "bucket write": (
        "POST",
        "/v1/users/alice/buckets/b1/data",
        [{"n": 1}, {"n": 2, "text": "x" * 5000}],
        lambda: records() == [{"n": 1}, {"n": 2, "text": "x" * 5000}],
    ),
    "device create": (
        "POST",
        "/v1/users/alice/devices",
        {"device": "d2", "name": "Made from a stream"},
        lambda: Device.objects.get(identifier="d2").name == "Made from a stream",
    ),
    "device update": (
        "PUT",
        "/v1/users/alice/devices/d1",
        {"name": "Renamed from a stream"},
        lambda: Device.objects.get(identifier="d1").name == "Renamed from a stream",
    ),
    "property create": (
        "POST",
        "/v3/users/alice/devices/d1/properties",
        {"property": "state", "value": {"on": True}},
        lambda: Property.objects.get(identifier="state").value == {"on": True},
    ),
    "callback settings": (
        "PUT",
        "/v3/users/alice/devices/d1/callback",
        {"actions": {"write_bucket": "b1"}, "properties": {"timeout": 7}},
        lambda: CallbackSettings.objects.get(device__identifier="d1").timeout == 7,
    ),
}


@pytest.mark.parametrize("route", API_ROUTES)
def test_api_body_chunked_arrives_whole(device, token, route):
    method, path, body, arrived = API_ROUTES[route]

    status, _, answer = send(method, path, json.dumps(body).encode(), token=token)

    assert status in (200, 201, 204), answer
    assert arrived()


def test_callback_chunked_over_the_limit_is_413_and_stores_nothing(device, settings):
    settings.CALLBACK_MAX_BYTES = 1000
    body = json.dumps({"text": "x" * 2000}).encode()

    status, headers, answer = send(
        "POST", f"{CALLBACK}/data", body, token=callback_token_for(device)
    )

    assert status == 413
    assert "larger than 1000 bytes" in json.loads(answer)["error"]["message"]
    assert records() == []


def test_api_chunked_over_the_limit_is_413_as_with_a_length(device, token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps([{"text": "x" * 2000}]).encode()

    for chunked in (True, False):
        status, _, answer = send(
            "POST", "/v1/users/alice/buckets/b1/data", body, token=token, chunked=chunked
        )
        assert status == 413, answer
        assert "larger than 1000 bytes" in json.loads(answer)["error"]["message"]
    assert records() == []


def test_callback_chunked_too_deep_is_400(device, settings):
    body = b'{"a": ' * 40 + b"1" + b"}" * 40

    status, _, answer = send("POST", f"{CALLBACK}/data", body, token=callback_token_for(device))

    assert status == 400
    assert "deep" in json.loads(answer)["error"]["message"]
    assert records() == []

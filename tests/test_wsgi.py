"""The WSGI application served in production (thinger_http.wsgi): device callbacks go through the
callback's middleware stack, everything else through the project's, and a device gets the same
answer from either, byte for byte: status, headers and body."""

import json

import pytest
from django.urls import resolve

from devices.callback.views import callback_view
from devices.tokens import callback_token_for
from tests.factories import BucketFactory, DeviceFactory, PropertyFactory, callback_configure
from tests.wsgi_client import answer, environ
from thinger_http import wsgi

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def device():
    device = DeviceFactory()
    callback_configure(
        device,
        write_bucket=BucketFactory(owner=device.owner),
        send_property=PropertyFactory(device=device, identifier="reply", value={"led": "on"}),
    )
    return device


def requests_of(device):
    base = f"/v3/users/{device.owner.username}/devices/{device.identifier}/callback"
    token = {"Authorization": f"Bearer {callback_token_for(device)}"}
    json_body = {"Content-Type": "application/json", **token}
    return {
        "data": ("POST", f"{base}/data", json.dumps({"t": 21.5}).encode(), "", json_body),
        "data with ts": ("POST", f"{base}/data", b'{"n": 1}', "ts=1700000000000", json_body),
        "not json": (
            "POST",
            f"{base}/data",
            b"t=21.5",
            "",
            {"Content-Type": "text/plain", **token},
        ),
        "get": ("GET", f"{base}/data", b"", "", token),
        "legacy": ("POST", base, b'{"t": 1}', "", json_body),
        "bad token": ("POST", f"{base}/data", b"{}", "", {"Authorization": "Bearer nope"}),
        "no token": ("POST", f"{base}/data", b"{}", "", {}),
        "other method": ("PUT", f"{base}/data", b"{}", "", json_body),
        "token in the query": (
            "POST",
            f"{base}/data",
            b"{}",
            f"authorization={token['Authorization'][7:]}",
            {},
        ),
        "too deep": ("POST", f"{base}/data", b"[" * 40 + b"]" * 40, "", json_body),
    }


@pytest.mark.parametrize(
    "name",
    ["data", "data with ts", "not json", "get", "legacy", "bad token", "no token", "other method"]
    + ["token in the query", "too deep"],
)
def test_a_device_gets_the_same_answer_from_both_stacks(device, name):
    method, path, body, query, headers = requests_of(device)[name]
    env = environ(method, path, body, query=query, headers=headers)
    assert wsgi.is_callback(env)

    lean = answer(wsgi.application, env)
    full = answer(
        wsgi.project_application, environ(method, path, body, query=query, headers=headers)
    )

    assert lean == full
    assert lean[0].split()[0] in {"200", "400", "401", "405"}


def test_only_the_callback_takes_the_short_stack(device):
    base = f"/v3/users/{device.owner.username}/devices/{device.identifier}"
    routed = {
        (method, path): wsgi.is_callback(environ(method, path))
        for method, path in [
            ("POST", f"{base}/callback/data"),
            ("GET", f"{base}/callback/data"),
            ("POST", f"{base}/callback"),
            ("GET", f"{base}/callback"),
            ("PUT", f"{base}/callback"),
            ("GET", f"{base}/callback/token"),
            ("GET", f"/v1/users/{device.owner.username}/devices"),
            ("POST", f"{base}/callback/data/"),
        ]
    }

    assert [key for key, short in routed.items() if short] == [
        ("POST", f"{base}/callback/data"),
        ("GET", f"{base}/callback/data"),
        ("POST", f"{base}/callback"),
    ]
    # What the short stack takes is what the URLs route to the callback.
    assert resolve(f"{base}/callback/data").func is callback_view

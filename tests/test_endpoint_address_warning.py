"""An endpoint whose address the SSRF guard will refuse is saved with a warning (issue 16).

Saved, not refused: the guard's setting (ENDPOINTS_ALLOW_PRIVATE_NETWORKS) and a name's addresses
may change after the endpoint is saved, and Thinger.io clients that provision endpoints take
anything but a 200 as a failure. The console says it in a warning message, the API in an
``X-Endpoint-Warning`` header of its 200. The warning and the guard read one rule
(``endpoints.net.address_refusal``): one table of addresses run through both agrees.
"""

import socket

import pytest
from django.urls import reverse

from endpoints.kinds import refused_target
from endpoints.models import Endpoint
from endpoints.net import url_refusal
from endpoints.services import endpoint_call_attempt
from tests.factories import EndpointCallFactory, EndpointFactory, UserFactory

pytestmark = pytest.mark.django_db

WARNING = "X-Endpoint-Warning"


@pytest.fixture(autouse=True)
def guarded(settings):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False


@pytest.fixture
def resolve_to(monkeypatch):
    """Host names resolving to the given addresses (a local DNS, as on a home network)."""
    names = {}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names and not names[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host in names:
            return [
                info
                for address in names[host]
                for info in real_getaddrinfo(address, port, *args, **kwargs)
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def user():
    return UserFactory(username="alice")


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


# (URL, what the warning says; None: no warning). "nodered.lan" resolves to a private address,
# "mixed.example" to a private and a public one (the guard connects to the public one).
TABLE = [
    ("http://127.0.0.1:1880/hook", "127.0.0.1 is a loopback address"),
    ("http://localhost:1880/hook", "localhost resolves to 127.0.0.1 (loopback)"),
    ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
    ("https://192.168.1.20/hook", "192.168.1.20 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[::1]:8080/", "::1 is a loopback address"),
    ("http://[::ffff:192.168.1.1]/", "::ffff:192.168.1.1 is a private address"),
    ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ("http://nodered.lan:1880/{{device}}", "nodered.lan resolves to 192.168.1.30 (private)"),
    ("http://mixed.example/", None),
    ("https://93.184.216.34/hook", None),
    ("https://8.8.8.8/hook?x={{temperature}}", None),
    ("https://no-such-name.invalid/", None),  # fails for another reason: no warning
]


@pytest.fixture
def names(resolve_to):
    resolve_to["nodered.lan"] = ["192.168.1.30"]
    resolve_to["mixed.example"] = ["10.1.2.3", "93.184.216.34"]
    resolve_to["no-such-name.invalid"] = []
    return resolve_to


@pytest.mark.parametrize(("url", "said"), TABLE)
def test_the_warning_and_the_guard_agree(names, monkeypatch, url, said):
    """Each URL of the table through both paths: warned at save iff the guard refuses it."""
    refusal = url_refusal(url)
    assert refusal == said

    # The guard, without connecting anywhere it allows.
    monkeypatch.setattr(socket.socket, "connect", _no_connection)
    endpoint = EndpointFactory(config={"url": url, "method": "POST"})
    call = EndpointCallFactory(endpoint=endpoint, payload={"a": 1})
    endpoint_call_attempt(call_id=call.pk)
    call.refresh_from_db()
    refused_by_guard = "ENDPOINTS_ALLOW_PRIVATE_NETWORKS is off" in call.last_error
    assert refused_by_guard == (said is not None), call.last_error


def _no_connection(sock, address):
    raise ConnectionRefusedError(111, "Connection refused (test)")


def test_no_warning_when_private_networks_are_allowed(settings, names):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True

    assert url_refusal("http://127.0.0.1/") is None
    assert refused_target("http_request", {"url": "http://nodered.lan/"}) is None


@pytest.mark.parametrize(
    ("type_", "config", "warned"),
    [
        ("http_request", {"url": "http://127.0.0.1/"}, True),
        (
            "http_device",
            {"url": "http://10.0.0.9/v3/users/bob/devices/d/callback", "token": "t"},
            True,
        ),
        ("http_request", {"url": "not a url"}, False),
        ("http_request", {"url": 5}, False),
        ("email", {"recipient": "ops@example.com"}, False),
        ("telegram", {"bot_token": "1:a", "chat_id": "1", "text": "x"}, False),
        ("no_such_type", {"url": "http://127.0.0.1/"}, False),
        ("http_request", "not an object", False),
    ],
)
def test_which_kinds_are_checked(type_, config, warned):
    assert (refused_target(type_, config) is not None) == warned


# The console.


def endpoint_form(url, **overrides):
    return {
        "identifier": "hook",
        "name": "Hook",
        "type": "http_request",
        "enabled": "on",
        "http_request-url": url,
        "http_request-method": "POST",
        "http_request-body_type": "json",
        **overrides,
    }


def shown_messages(response):
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_console_create_warns_and_saves(console, user, names):
    response = console.post(
        reverse("console-endpoint-create"), endpoint_form("http://nodered.lan:1880/in"), follow=True
    )

    assert Endpoint.objects.get(owner=user, identifier="hook").config["url"] == (
        "http://nodered.lan:1880/in"
    )
    assert response.redirect_chain == [(reverse("console-endpoint", args=["hook"]), 302)]
    assert shown_messages(response) == [
        ("success", "Endpoint hook created. Send it a test call below."),
        (
            "warning",
            "Its calls will be refused: nodered.lan resolves to "
            "192.168.1.30 (private), and this server's endpoints may not reach loopback, private "
            "or link-local addresses (ENDPOINTS_ALLOW_PRIVATE_NETWORKS is off).",
        ),
    ]
    assert "message-warning" in response.content.decode()


def test_console_edit_warns_and_saves(console, user):
    EndpointFactory(owner=user, identifier="hook", config={"url": "https://93.184.216.34/"})

    response = console.post(
        reverse("console-endpoint-edit", args=["hook"]),
        endpoint_form("http://169.254.169.254/latest"),
        follow=True,
    )

    assert Endpoint.objects.get(identifier="hook").config["url"] == "http://169.254.169.254/latest"
    [(_, saved), (level, warning)] = shown_messages(response)
    assert level == "warning"
    assert "169.254.169.254 is a link-local address" in warning


def test_console_public_address_has_no_warning(console, user):
    response = console.post(
        reverse("console-endpoint-create"), endpoint_form("https://93.184.216.34/in"), follow=True
    )

    assert [level for level, _ in shown_messages(response)] == ["success"]


# The API: the same rule, the same 200, and a header saying it.


@pytest.fixture
def api(bearer_client, user):
    return bearer_client(user)


def test_api_create_and_update_say_it_in_a_header(api, user, names):
    body = {"endpoint": "hook", "type": "http_request", "config": {"url": "http://localhost/x"}}

    created = api.post("/v1/users/alice/endpoints", body, content_type="application/json")

    assert created.status_code == 200
    assert created[WARNING].startswith(
        "calls will be refused: localhost resolves to 127.0.0.1 (loopback), and this server's "
        "endpoints may not reach"
    )
    assert "error" not in created.json()
    assert Endpoint.objects.filter(owner=user, identifier="hook").exists()

    public = {"config": {"url": "https://93.184.216.34/x"}}
    updated = api.put("/v1/users/alice/endpoints/hook", public, content_type="application/json")
    assert updated.status_code == 200 and WARNING not in updated

    private = {"config": {"url": "http://10.0.0.5/x"}}
    updated = api.put("/v1/users/alice/endpoints/hook", private, content_type="application/json")
    assert updated.status_code == 200
    assert "10.0.0.5 is a private address" in updated[WARNING]
    assert WARNING not in api.get("/v1/users/alice/endpoints/hook")


def test_api_header_is_ascii_for_an_international_name(api, resolve_to):
    resolve_to["bücher.lan"] = ["192.168.1.31"]
    body = {"endpoint": "hook", "type": "http_request", "config": {"url": "http://bücher.lan/"}}

    created = api.post("/v1/users/alice/endpoints", body, content_type="application/json")

    assert created.status_code == 200
    assert created[WARNING].isascii()
    assert "b\\xfccher.lan resolves to 192.168.1.31 (private)" in created[WARNING]

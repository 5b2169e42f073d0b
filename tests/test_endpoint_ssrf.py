"""The SSRF guard: endpoints may not reach loopback, private or link-local addresses unless
ENDPOINTS_ALLOW_PRIVATE_NETWORKS is on; the check is on the address actually connected to."""

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from endpoints.models import EndpointAttempt, EndpointCall
from endpoints.net import OutgoingRequest, address_refusal, http_send
from endpoints.services import endpoint_call_attempt, endpoint_call_now
from tests.factories import EndpointCallFactory, EndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def connects(monkeypatch):
    """Every socket connection attempted from Python (the database driver is not Python)."""
    attempted = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        attempted.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempted


@pytest.fixture
def resolve_to(monkeypatch):
    """Make a host name resolve to the given address, as a hostile DNS server would."""
    real_getaddrinfo = socket.getaddrinfo

    def install(name, address):
        def getaddrinfo(host, port, *args, **kwargs):
            if host == name:
                return real_getaddrinfo(address, port, *args, **kwargs)
            return real_getaddrinfo(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    return install


def attempt(url, **config):
    endpoint = EndpointFactory(config={"url": url, "method": "POST", **config})
    call = EndpointCallFactory(endpoint=endpoint, payload={"a": 1})
    endpoint_call_attempt(call_id=call.pk)
    call.refresh_from_db()
    return call


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1: loopback"),
        ("http://10.0.0.1/", "10.0.0.1: private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254: link-local"),
        ("http://localhost:8000/", ": loopback"),
        ("http://[::1]:8080/", "::1: loopback"),
        ("http://[::ffff:192.168.1.1]/", "private"),
        ("http://0.0.0.0/", "0.0.0.0: unspecified"),
        ("http://224.0.0.1/", "224.0.0.1: multicast"),
        ("https://192.168.0.10/", "192.168.0.10: private"),
    ],
)
def test_private_targets_are_refused_without_connecting(
    url, reason, settings, connects, enqueued, django_capture_on_commit_callbacks
):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False
    with django_capture_on_commit_callbacks(execute=True):
        call = attempt(url)
    assert connects == []
    assert (call.status, call.attempts) == (EndpointCall.Status.FAILED, 1)
    assert call.last_error.startswith("refused to connect to ")
    assert reason in call.last_error
    assert "ENDPOINTS_ALLOW_PRIVATE_NETWORKS" in call.last_error
    assert EndpointAttempt.objects.get(call=call).error == call.last_error
    assert enqueued == []  # a refusal is permanent: no retry


def test_dns_rebinding_is_checked_on_the_connected_address(
    settings, resolve_to, connects, receiver, enqueued
):
    """A name that passed any earlier check but now resolves to loopback is refused."""
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False
    resolve_to("rebind.example.com", "127.0.0.1")
    call = attempt(f"http://rebind.example.com:{receiver.port}/")
    assert call.status == EndpointCall.Status.FAILED
    assert "rebind.example.com (127.0.0.1: loopback)" in call.last_error
    assert connects == []
    assert receiver.requests == []


def test_the_host_header_keeps_the_name_when_connecting_to_the_checked_address(
    settings, resolve_to, receiver, enqueued
):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    resolve_to("sensors.example.com", "127.0.0.1")
    call = attempt(f"http://sensors.example.com:{receiver.port}/in")
    assert call.status == EndpointCall.Status.SUCCEEDED
    [received] = receiver.requests
    assert received.headers["Host"] == f"sensors.example.com:{receiver.port}"
    assert received.path == "/in"


def test_private_targets_are_allowed_by_the_setting(settings, receiver, enqueued):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    call = attempt(f"http://localhost:{receiver.port}/ok")
    assert call.status == EndpointCall.Status.SUCCEEDED
    assert [r.path for r in receiver.requests] == ["/ok"]


def test_a_connection_pooled_while_allowed_is_not_reused_once_refused(settings, receiver):
    endpoint = EndpointFactory(config={"url": f"{receiver.url}/", "method": "POST"})
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    assert endpoint_call_now(endpoint=endpoint, payload={}).status_code == 200
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False
    result = endpoint_call_now(endpoint=endpoint, payload={})
    assert result.status_code is None
    assert result.error.startswith("refused to connect to 127.0.0.1")
    assert len(receiver.requests) == 1


def test_proxies_from_the_environment_are_ignored(settings, monkeypatch, enqueued):
    """A proxy would connect on our behalf, unchecked."""
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = False
    monkeypatch.setenv("HTTP_PROXY", "http://203.0.113.1:3128")
    monkeypatch.setenv("http_proxy", "http://203.0.113.1:3128")
    call = attempt("http://127.0.0.1:8000/")
    assert call.last_error.startswith("refused to connect to 127.0.0.1")


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.2", "loopback"),
        ("172.16.5.4", "private"),
        ("100.64.0.1", "non-public"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::", "unspecified"),
        ("::ffff:10.1.2.3", "private"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_address_refusal(address, refused):
    import ipaddress

    assert address_refusal(ipaddress.ip_address(address)) == refused


@pytest.fixture
def tls_server(tmp_path):
    """A TLS listener on 127.0.0.1 with a self-signed certificate; records the SNI it is sent."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("needs the openssl command")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
        + ["-subj", "/CN=sensors.example.com"],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError):
            context.wrap_socket(conn, server_side=True)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], server_names
    listener.close()
    thread.join(timeout=5)


def test_tls_uses_the_host_name_for_sni_and_verification(settings, resolve_to, tls_server):
    settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS = True
    port, server_names = tls_server
    resolve_to("sensors.example.com", "127.0.0.1")
    result = http_send(OutgoingRequest("GET", f"https://sensors.example.com:{port}/"), secret="s")
    assert server_names == ["sensors.example.com"]
    assert result.error.startswith("TLS error with sensors.example.com"), result.error
    assert (
        "CERTIFICATE_VERIFY_FAILED" in result.error or "certificate verify failed" in result.error
    )
    assert not result.permanent

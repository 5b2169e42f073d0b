"""Outgoing HTTP for endpoints: one sender, with timeouts, a signature and an SSRF guard.

The guard sits where the socket is opened: the host name is resolved once, every address is
checked, and the socket connects to a checked address. A name that resolves to a public address
when validated and to a private one when connected (DNS rebinding) is therefore still refused.
TLS keeps the original host name for SNI and certificate checks; the Host header keeps it too.
Redirects are never followed, and proxies from the environment are ignored (a proxy would make
the connection on our behalf, unchecked).
"""

import email.utils
import hashlib
import hmac
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

USER_AGENT = "thinger-http-endpoints"
SIGNATURE_HEADER = "X-Signature"
EXCERPT_CHARS = 1000
_READ_LIMIT = 4 * EXCERPT_CHARS  # bytes read from a response at most, enough for the excerpt


@dataclass
class Outcome:
    """The result of one attempt, whatever the kind of endpoint."""

    ok: bool
    status_code: int | None = None
    error: str = ""
    # True when trying again cannot help (4xx, bad configuration, refused address).
    permanent: bool = False
    retry_after: float | None = None  # seconds, from a 429/503's Retry-After
    response_excerpt: str = ""
    duration_ms: int = 0

    @classmethod
    def failure(cls, error, *, permanent):
        return cls(ok=False, error=error, permanent=permanent)


@dataclass
class OutgoingRequest:
    method: str
    url: str
    headers: dict = field(default_factory=dict)
    body: bytes = b""


class AddressRefused(Exception):
    """The target resolves only to addresses that endpoints may not reach.

    Deliberately not an OSError, so that urllib3 and requests let it through unwrapped.
    """


def address_refusal(address):
    """Why an endpoint may not connect to ``address`` (an ``ipaddress`` object), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for reason in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    if not address.is_global:
        return "non-public"
    return None


def url_refusal(url):
    """Why the guard will refuse every connection to ``url``'s host, said for a person (``"10.0.0.5
    is a private address"``, ``"localhost resolves to 127.0.0.1 (loopback)"``), or None.

    For warning when an endpoint is saved: the name is resolved now, as a call would resolve it.
    None when private networks are allowed, when one of the addresses may be reached, and when
    the name does not resolve (a call then fails for that reason).
    """
    if settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except (TypeError, ValueError):
        return None
    if not host:
        return None
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        reason = address_refusal(literal)
        article = "an" if reason and reason[0] in "aeiou" else "a"
        return f"{host} is {article} {reason} address" if reason else None
    try:
        infos = socket.getaddrinfo(host, port or 443, allowed_gai_family(), socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    refusals = {}
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        refusals[address] = address_refusal(address)
    if not refusals or not all(refusals.values()):
        return None
    found = ", ".join(f"{address} ({reason})" for address, reason in refusals.items())
    return f"{host} resolves to {found}"


def _connect_checked(conn):
    """Resolve, check and connect: replaces urllib3's ``HTTPConnection._new_conn``."""
    host = conn._dns_host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, conn.port, allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    refused, last_error = [], None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])  # without an IPv6 scope
        reason = None if conn.allow_private else address_refusal(address)
        if reason:
            refused.append(f"{address}: {reason}")
            continue
        try:
            return create_connection(
                (sockaddr[0], conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            last_error = exc
    if last_error is not None:
        raise NewConnectionError(
            conn, f"Failed to establish a new connection: {last_error}"
        ) from last_error
    raise AddressRefused(
        f"refused to connect to {conn.host} ({', '.join(refused) or 'no address'}): endpoints may "
        "not reach loopback, private or link-local addresses (ENDPOINTS_ALLOW_PRIVATE_NETWORKS "
        "is off)"
    )


class _GuardedHTTPConnection(HTTPConnection):
    allow_private = False

    def _new_conn(self):
        return _connect_checked(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    allow_private = False

    def _new_conn(self):
        return _connect_checked(self)


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections pass through the address check."""

    def __init__(self, *, allow_private, **kwargs):
        self.allow_private = allow_private
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        attrs = {"allow_private": self.allow_private}
        http_conn = type("HTTPConnection", (_GuardedHTTPConnection,), attrs)
        https_conn = type("HTTPSConnection", (_GuardedHTTPSConnection,), attrs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("HTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type(
                "HTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }


_sessions = {}
_sessions_lock = threading.Lock()


def session(*, allow_private):
    """The process's session for this policy, reused so that connections are pooled.

    One per policy: a pooled connection opened while private networks were allowed is never
    reused once they are not.
    """
    with _sessions_lock:
        if allow_private not in _sessions:
            s = requests.Session()
            s.trust_env = False
            s.headers["User-Agent"] = USER_AGENT
            adapter = GuardedAdapter(allow_private=allow_private)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            _sessions[allow_private] = s
        return _sessions[allow_private]


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def timeouts():
    return (
        float(settings.ENDPOINTS_CONNECT_TIMEOUT_SECONDS),
        float(settings.ENDPOINTS_READ_TIMEOUT_SECONDS),
    )


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date), or None."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def http_send(request, *, secret):
    """Send one request and classify the result; never raises for network errors."""
    # http.client sends str header values as Latin-1: send anything else as UTF-8 bytes.
    headers = {
        name: value if value.isascii() else value.encode()
        for name, value in request.headers.items()
    }
    headers[SIGNATURE_HEADER] = signature(secret, request.body)
    connect_timeout, read_timeout = timeouts()
    host = urlsplit(request.url).hostname or request.url
    started = time.monotonic()
    try:
        response = session(allow_private=settings.ENDPOINTS_ALLOW_PRIVATE_NETWORKS).request(
            request.method,
            request.url,
            headers=headers,
            data=request.body or None,
            timeout=(connect_timeout, read_timeout),
            allow_redirects=False,
            stream=True,
        )
        try:
            excerpt = _read_excerpt(response, deadline=started + connect_timeout + read_timeout)
        finally:
            response.close()
    except AddressRefused as exc:
        outcome = Outcome.failure(str(exc), permanent=True)
    except requests.exceptions.ConnectTimeout:
        error = f"timed out connecting to {host} after {connect_timeout:g}s"
        outcome = Outcome.failure(error, permanent=False)
    except requests.exceptions.ReadTimeout:
        error = f"no response from {host} within {read_timeout:g}s"
        outcome = Outcome.failure(error, permanent=False)
    except requests.exceptions.SSLError as exc:
        error = f"TLS error with {host}: {_root_cause(exc)}"
        outcome = Outcome.failure(error, permanent=False)
    except requests.exceptions.ConnectionError as exc:
        error = f"could not connect to {host}: {_root_cause(exc)}"
        outcome = Outcome.failure(error, permanent=False)
    except (requests.exceptions.RequestException, ValueError) as exc:
        outcome = Outcome.failure(f"invalid request: {exc}", permanent=True)
    else:
        outcome = _classify(response, excerpt)
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


def _read_excerpt(response, *, deadline):
    data = b""
    for chunk in response.iter_content(1024):
        data += chunk
        if len(data) >= _READ_LIMIT or time.monotonic() > deadline:
            break
    return data.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS]


def _classify(response, excerpt):
    status = response.status_code
    outcome = Outcome(ok=200 <= status < 300, status_code=status, response_excerpt=excerpt)
    if outcome.ok:
        return outcome
    if status == 429 or status >= 500:
        outcome.error = f"HTTP {status} {response.reason or ''}".strip()
        outcome.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    elif 300 <= status < 400:
        location = response.headers.get("Location", "")
        outcome.error = f"HTTP {status}: redirect to {location or '?'} not followed"
        outcome.permanent = True
    else:
        outcome.error = f"HTTP {status} {response.reason or ''}".strip()
        outcome.permanent = True
    return outcome


def _root_cause(exc):
    """The innermost readable reason of a requests/urllib3 exception chain (no URLs, no tokens)."""
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        following = getattr(cause, "reason", None)
        if not isinstance(following, BaseException):
            following = cause.__cause__ or cause.__context__
        if following is None and cause.args and isinstance(cause.args[0], BaseException):
            following = cause.args[0]
        cause = following
    return type(exc).__name__

"""Hardening (issue 6, items 6 and 7): deployment checks, HTTPS settings, CSP, CSRF on every
console form, no debug pages, tokens kept out of logs and compared in constant time.

The HTTPS protections follow ``PUBLIC_URL``: on for ``https://``, off for the ``http://localhost``
of ``make run`` (so that its cookies work), each one configurable on its own.
"""

import hmac
import io
import logging
import re
import runpy
import secrets
import time
import tomllib
from datetime import timedelta
from types import SimpleNamespace

import jwt
import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import include, path, reverse
from django.utils.log import RequireDebugTrue

from accounts.services import access_token_create
from dashboards.services import dashboard_create
from devices.tokens import callback_token_for
from tests.factories import (
    BucketExportFactory,
    BucketFactory,
    DeviceFactory,
    EndpointCallFactory,
    EndpointFactory,
    PropertyFactory,
    UserFactory,
)
from tests.reliability import django_process
from tests.test_isolation import all_routes
from thinger_http.log import MaskSecrets, mask

PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "iot.example.com",
    "PUBLIC_URL": "https://iot.example.com",
}


# --- manage.py check --deploy and the settings behind it ------------------------------------


def test_check_deploy_is_clean_with_the_production_environment(tmp_path):
    result = django_process(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("environ", "warning"),
    [
        ({"DEBUG": "on"}, "security.W018"),
        ({"SECURE_COOKIES": "off"}, "security.W012"),
        ({"PUBLIC_URL": "http://iot.example.com"}, "security.W004"),
    ],
)
def test_check_deploy_fails_when_a_protection_is_off(tmp_path, environ, warning):
    result = django_process(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, **environ}
    )

    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


PRINT = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print([s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
    "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
    "getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
    "'thinger_http.security.PageContentSecurityPolicy' in s.MIDDLEWARE, "
    "hasattr(s, 'CONTENT_SECURITY_POLICY'), hasattr(s, 'CONTENT_SECURITY_POLICY_REPORT_ONLY')])"
)
YEAR = 365 * 24 * 3600


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, [False, False, False, False, 0, False, False, None, True, True, False]),
        (PRODUCTION, [False, True, True, True, YEAR, True, True, None, True, True, False]),
        (
            {
                **PRODUCTION,
                "SECURE_COOKIES": "off",
                "SECURE_SSL_REDIRECT": "off",
                "SECURE_HSTS_SECONDS": "60",
                "SECURE_HSTS_PRELOAD": "off",
                "TRUST_X_FORWARDED_PROTO": "on",
                "CSP_REPORT_ONLY": "on",
            },
            [
                False,
                False,
                False,
                False,
                60,
                True,
                False,
                ("HTTP_X_FORWARDED_PROTO", "https"),
                True,
                False,
                True,
            ],
        ),
        (
            {"SECURE_COOKIES": "on", "CSP": "off"},
            [False, True, True, False, 0, False, False, None, False, True, False],
        ),
    ],
    ids=["make-run", "production", "each-one-configurable", "secure-cookies-over-http"],
)
def test_security_settings_from_the_environment(tmp_path, environ, expected):
    result = django_process(tmp_path, code=PRINT, **environ)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(expected)


# --- Headers and cookies --------------------------------------------------------------------


def test_console_pages_carry_a_content_security_policy(client):
    policy = client.get(reverse("console-login"))["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"


def test_json_api_and_device_answers_carry_no_policy(client, device):
    response = client.post(
        f"/v3/users/{device.owner.username}/devices/{device.identifier}/callback/data",
        b"{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {callback_token_for(device)}"},
    )

    assert response.status_code == 200
    assert "Content-Security-Policy" not in response
    assert "Content-Security-Policy" not in client.get("/v1/endpoints/templates")


def test_policy_can_be_report_only(client, settings):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = None

    response = client.get(reverse("console-login"))

    assert "Content-Security-Policy" not in response
    assert "default-src 'self'" in response["Content-Security-Policy-Report-Only"]


def test_other_security_headers(client):
    response = client.get(reverse("console-login"))

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_hsts_and_https_redirect_when_configured(client, settings):
    settings.SECURE_HSTS_SECONDS = YEAR
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_SSL_REDIRECT = True

    secure = client.get(reverse("console-login"), secure=True)
    plain = client.get(reverse("console-login"))

    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == f"max-age={YEAR}; includeSubDomains; preload"
    assert plain.status_code == 301
    assert plain["Location"].startswith("https://")
    # Load balancers probe over plain http.
    assert client.get("/healthz").status_code == 200


def _login(client):
    UserFactory(username="carol")
    response = client.post(
        reverse("console-login"), {"username": "carol", "password": "secret-pass-123"}
    )
    assert response.status_code == 302
    return response


@pytest.mark.django_db
def test_cookies_are_secure_when_configured(settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client = Client()
    client.get(reverse("console-login"), secure=True)

    response = _login(client)

    session = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"]
    assert session["samesite"] == "Lax"
    assert client.cookies[settings.CSRF_COOKIE_NAME]["secure"]


@pytest.mark.django_db
def test_cookies_work_over_plain_http_by_default(client):
    """``make run`` serves http://localhost: a Secure cookie would never come back."""
    client.get(reverse("console-login"))

    response = _login(client)

    assert not response.cookies[django_settings.SESSION_COOKIE_NAME]["secure"]
    assert client.get(reverse("console-device-list")).status_code == 200


# --- Console pages: CSRF on every form, nothing inline that the policy would block ----------


@pytest.fixture
def owner_pages(db):
    """(client logged in as the owner, URLs of every console page for the owner's objects)."""
    user = UserFactory()
    device = DeviceFactory(owner=user, identifier="d1")
    prop = PropertyFactory(device=device, identifier="p1", value={"a": 1})
    bucket = BucketFactory(owner=user, identifier="b1")
    export = BucketExportFactory(bucket=bucket, file="f.csv")
    endpoint = EndpointFactory(owner=user, identifier="e1")
    token = access_token_create(owner=user, identifier="t1", name="Token")
    # A dashboard with a control widget (its form) and a chart.
    source = {"kind": "property", "device": "d1", "property": "p1"}
    dashboard = dashboard_create(
        owner=user,
        identifier="db1",
        widgets=[
            {"id": "w1", "type": "switch", "source": source},
            {
                "id": "c1",
                "type": "chart",
                "source": {"kind": "bucket", "bucket": "b1", "fields": ["a"]},
            },
        ],
    )
    values = {
        "call": EndpointCallFactory(endpoint=endpoint, status="failed").pk,  # Retry is a form
        "device": device.identifier,
        "prop": prop.identifier,
        "bucket": bucket.identifier,
        "file": export.file,
        "endpoint": endpoint.identifier,
        "token": token.identifier,
        "dashboard": dashboard.identifier,
        "widget": "w1",
    }
    urls = {}
    for route in all_routes():
        if route.kind != "console" or route.name in ("console-logout",):
            continue
        urls[route.name] = reverse(route.name, kwargs={k: values[k] for k in route.kwargs})
    client = Client()
    client.force_login(user)
    return client, urls


def test_every_console_action_refuses_a_post_without_the_csrf_token(owner_pages):
    client, urls = owner_pages
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies

    refused = {name: strict.post(url, {"name": "x"}).status_code for name, url in urls.items()}

    assert set(refused.values()) <= {403, 405}, refused
    assert list(refused.values()).count(403) >= 10


def test_every_console_form_carries_the_csrf_token_and_no_inline_script(owner_pages):
    client, urls = owner_pages
    forms = 0
    for name, url in urls.items():
        response = client.get(url)
        if response.status_code != 200 or "html" not in response["Content-Type"]:
            continue
        page = response.content.decode()
        for form in re.findall(r"<form\b[^>]*>.*?</form>", page, flags=re.S | re.I):
            if re.search(r'method="post"', form, flags=re.I):
                forms += 1
                assert 'name="csrfmiddlewaretoken"' in form, f"{name}: {form[:200]}"
        # script-src 'self': an inline script or event handler would not run.
        for tag in re.findall(r"<script\b[^>]*>", page, flags=re.I):
            assert "src=" in tag or "application/json" in tag, f"{name}: inline {tag}"
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page, flags=re.I), f"{name}: onevent="
    assert forms >= 10


@pytest.mark.django_db
def test_api_writes_with_a_session_need_the_csrf_token(owner_pages):
    client, _ = owner_pages
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    user = client.session["_auth_user_id"]
    username = UserFactory._meta.model.objects.get(pk=user).username

    response = strict.post(
        f"/v1/users/{username}/devices", {"device": "x1"}, content_type="application/json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


# --- No debug pages -------------------------------------------------------------------------


def _boom(request):
    raise RuntimeError("secret internals: SECRET_KEY and a stack")


urlpatterns = [
    path("boom", _boom),
    path("v1/boom", _boom),
    path("", include("thinger_http.urls")),
]
handler400 = "thinger_http.views.bad_request"
handler404 = "thinger_http.views.not_found"
handler500 = "thinger_http.views.server_error"


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_errors_show_no_debug_page():
    client = Client(raise_request_exception=False)
    assert django_settings.DEBUG is False

    page = client.get("/boom")
    api = client.get("/v1/boom")
    missing = client.get("/no/such/page")

    assert page.status_code == 500 and api.status_code == 500
    for response in (page, api, missing):
        body = response.content.decode()
        assert "Traceback" not in body and "secret internals" not in body
        assert "URLconf" not in body and "DEBUG" not in body
    assert api.json() == {"error": {"message": "internal server error"}}


def test_debug_is_off_unless_asked_for(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"

    assert django_process(tmp_path, code=code).stdout.strip() == "False"
    assert django_process(tmp_path, code=code, DEBUG="on").stdout.strip() == "True"


# --- Tokens: never in logs, compared in constant time, expired ones refused -----------------

TOKEN = jwt.encode({"usr": "alice", "jti": "DeviceCallback_d1", "gen": 7}, "k" * 32)


@pytest.mark.parametrize(
    "line",
    [
        f'"POST /v3/users/alice/devices/d1/callback/data?authorization={TOKEN} HTTP/1.1" 200 0',
        f"GET /x?ts=1&authorization={TOKEN}&ip=1.2.3.4",
        f"Authorization: Bearer {TOKEN}",
        f"grant_type=refresh_token&refresh_token={TOKEN}",
        f"could not reach http://h/cb?AUTHORIZATION={TOKEN[:20]}",
        f"token {TOKEN} in any other text",
    ],
)
def test_masking_hides_every_form_of_a_token(line):
    masked = mask(line)

    assert TOKEN[:20] not in masked
    assert "***" in masked


def test_masking_keeps_everything_else():
    line = '"POST /v3/users/alice/devices/d1/callback/data?ts=17&ip=10.0.0.1 HTTP/1.1" 200 0'

    assert mask(line) == line


def _output_of(handler, emit):
    stream = io.StringIO()
    saved = handler.setStream(stream)
    try:
        emit()
    finally:
        handler.setStream(saved)
    return stream.getvalue()


def writing_handlers(logger):
    """The handlers a record of this logger reaches that write it somewhere in production:
    not pytest's, not Django's DEBUG-only console, not the e-mail to ADMINS (none are set)."""
    found, current = [], logger
    while current:
        found += current.handlers
        current = current.parent if current.propagate else None
    return [
        handler
        for handler in found
        if isinstance(handler, logging.StreamHandler)
        and not type(handler).__module__.startswith("_pytest")
        and not any(isinstance(f, RequireDebugTrue) for f in handler.filters)
    ]


@pytest.mark.parametrize("logger_name", ["django.server", "django.request", "devices", "celery"])
def test_configured_log_handlers_mask_tokens(logger_name):
    """Each handler that LOGGING sets up (runserver's request lines, everything else), with
    the token in the message, in its arguments, and in a traceback."""
    logger = logging.getLogger(logger_name)
    handlers = writing_handlers(logger)
    assert handlers
    url = f"/v3/users/alice/devices/d1/callback/data?authorization={TOKEN}"

    def emit():
        logger.warning('"%s %s HTTP/1.1" %s', "POST", url, 401)
        logger.warning(f"called {url}")
        try:
            raise ValueError(f"bad url {url}")
        except ValueError:
            logger.exception("failed")

    for handler in handlers:
        assert any(isinstance(f, MaskSecrets) for f in handler.filters), handler
        output = _output_of(handler, emit)
        assert TOKEN[:20] not in output
        assert output.count("authorization=***") == 3


def test_celery_log_handlers_get_the_mask():
    """Celery replaces the root logger's handlers in its processes; its logging signals put the
    filter back on the ones it installs."""
    from celery import signals

    logger = logging.getLogger("a-celery-logger-for-the-test")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        signals.after_setup_logger.send(sender=None, logger=logger, loglevel=20)
        logger.error("GET /x?authorization=%s", TOKEN)
    finally:
        logger.removeHandler(handler)

    assert any(isinstance(f, MaskSecrets) for f in handler.filters)
    assert TOKEN[:20] not in handler.stream.getvalue()


def test_callback_requests_log_no_token(callback_client, device, caplog):
    """Refused, ignored and accepted callbacks with the token in the URL: not a trace of it."""
    token = callback_token_for(device)
    caplog.set_level(logging.DEBUG)
    for body in (b"{}", b"not json", b'{"ts": 1e400}'):
        callback_client.post(device, body, token_in="query")
    callback_client.post(device, b"{}", token=token + "x", token_in="query")

    assert caplog.records
    assert token[:20] not in caplog.text


def test_gunicorn_access_log_has_no_query_string():
    """The access log format of thinger_http/gunicorn.conf.py leaves the query string out."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    conf = runpy.run_path(str(django_settings.BASE_DIR / "thinger_http" / "gunicorn.conf.py"))
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", conf["access_log_format"])
    access = Logger(config)
    query = f"ts=0&authorization={TOKEN}"
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/v3/users/alice/devices/d1/callback/data?{query}",
        "PATH_INFO": "/v3/users/alice/devices/d1/callback/data",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
    }
    response = SimpleNamespace(status="200 OK", sent=0, headers=[])
    request = SimpleNamespace(headers=[("AUTHORIZATION", f"Bearer {TOKEN}")])

    output = _output_of(
        access.access_log.handlers[0],
        lambda: access.access(response, request, environ, timedelta(milliseconds=3)),
    )

    assert "/v3/users/alice/devices/d1/callback/data" in output
    assert TOKEN[:20] not in output and "authorization" not in output


@pytest.fixture
def compare_digest_calls(monkeypatch):
    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def test_callback_token_signature_is_compared_in_constant_time(
    callback_client, device, compare_digest_calls
):
    token = callback_token_for(device)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    good = callback_client.post(device, b"{}", token=token)
    bad = callback_client.post(device, b"{}", token=forged)

    assert (good.status_code, bad.status_code) == (200, 401)
    signatures = [jwt.utils.base64url_decode(t.rsplit(".", 1)[1]) for t in (token, forged)]
    compared = [a for pair in compare_digest_calls for a in pair]
    assert all(signature in compared for signature in signatures)


@pytest.mark.django_db
def test_api_token_signature_is_compared_in_constant_time(client, compare_digest_calls):
    user = UserFactory()
    issued = client.post(
        "/oauth/token",
        f"grant_type=password&username={user.username}&password=secret-pass-123",
        content_type="application/x-www-form-urlencoded",
    ).json()["access_token"]
    compare_digest_calls.clear()

    response = client.get(
        f"/v1/users/{user.username}/devices", headers={"Authorization": f"Bearer {issued}"}
    )

    assert response.status_code == 200
    signature = jwt.utils.base64url_decode(issued.rsplit(".", 1)[1])
    assert any(signature in pair for pair in compare_digest_calls)


@pytest.mark.django_db
def test_expired_api_token_is_refused_by_the_callback_too(callback_client, device):
    past = int(time.time()) - 10
    expired = jwt.encode(
        {"usr": device.owner.username, "typ": "access", "iat": past - 7200, "exp": past},
        django_settings.SECRET_KEY,
        algorithm="HS256",
    )

    response = callback_client.post(device, b"{}", token=expired)

    assert response.status_code == 401


# --- The dependency audit's input -----------------------------------------------------------


def _pins(requirements):
    pins = {}
    for line in requirements:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version.strip()
    return pins


def test_the_lock_file_pins_each_dependency_as_pyproject_does():
    """``requirements.lock`` is what pip-audit checks in ``.ci/run``: it must not drift from
    the pins that ``make test`` installs."""
    base = django_settings.BASE_DIR
    project = tomllib.loads((base / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    locked = _pins((base / "requirements.lock").read_text().splitlines())

    assert {name: locked.get(name) for name in wanted} == wanted

"""Playwright (Python) driving Debian's Chromium, headless, against pytest-django's live server.

No browser is downloaded: the tests use /usr/bin/chromium (``apt-get install chromium``) and skip
with the reason when it or the ``playwright`` package is missing. Screenshots of each page go to
``tests/screenshots/``: the journeys' (1280 px wide) are git-ignored, the responsive test's
(``<page>-390.png``, ``<page>-1280.png``) are committed.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 15_000

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None
else:
    expect.set_options(timeout=TIMEOUT_MS)


def _missing():
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"browser tests: {reason}")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def site_url(request):
    """The address of the site the browser opens: pytest-django's live server (HTTP only), or
    with ``@pytest.mark.websockets`` the in-process uvicorn of tests/events_server.py, which
    serves the whole site, its WebSockets (a dashboard's live socket) included."""
    if request.node.get_closest_marker("websockets"):
        return request.getfixturevalue("events_server").base_url
    return request.getfixturevalue("live_server").url


@pytest.fixture
def page(site_url, monkeypatch, request):
    """A fresh headless Chromium page (clipboard allowed) on the live server (``site_url``).

    Playwright's sync API runs an event loop in this thread while the browser is open, so the
    browser lives only as long as the test: the rest of the session's ORM calls see no loop.
    The test's own ORM calls are synchronous, hence DJANGO_ALLOW_ASYNC_UNSAFE meanwhile.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The live server's threads keep a browser's keep-alive connection, and their database
    # connection with it: close it after each request, so the test database can be dropped.
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        # @pytest.mark.browser_timezone("Asia/Kolkata"): the browser's clock (default: the
        # machine's).
        zone = request.node.get_closest_marker("browser_timezone")
        context = browser.new_context(
            viewport=VIEWPORT,
            base_url=site_url,
            **({"timezone_id": zone.args[0]} if zone else {}),
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site_url)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # The test's own queries ran while Playwright's loop was running, on a connection of
            # their own: close it, or it outlives the test database.
            connections.close_all()
    assert not errors, f"JavaScript errors: {errors}"


def screenshots_folder():
    """Where screenshots go: tests/screenshots/latest/ (ignored by git), or with
    ``UPDATE_SCREENSHOTS=1`` tests/screenshots/ itself, whose ``*-390.png`` and ``*-1280.png`` are
    committed (their times and tokens differ at each run: a plain run leaves them alone)."""
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else SCREENSHOTS / "latest"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def screenshot(page):
    """``screenshot("name")`` saves a full-page PNG as name.png in ``screenshots_folder()``."""

    def take(name):
        page.wait_for_load_state("networkidle")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(screenshots_folder() / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def eager_tasks():
    """Celery tasks (exports) run inside the request that enqueues them.

    Celery's own configuration is changed (and restored), not Django's CELERY_* settings: Celery
    reads those once, so a setting changed during a test would stay in force for the session.
    """
    from thinger_http.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved

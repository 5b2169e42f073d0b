"""A dashboard's read-only link in Chromium (issue 17, item 5): the owner makes it on the
dashboard's Share page and copies it; logged out, the link shows the widgets with their values,
the controls disabled and no way into the account, and follows the property's changes live.
Screenshots ``dashboard-share-<width>.png`` and ``dashboard-shared-<width>.png`` (in
tests/screenshots/latest/, or tests/screenshots/ with ``UPDATE_SCREENSHOTS=1``)."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from dashboards import services
from devices.models import Property
from devices.services import property_merge
from tests.browser.test_console_dashboards import HEIGHTS, LAYOUT, WIDGETS, seed
from tests.browser.test_console_responsive import assert_no_sideways_scroll, log_in, save

# On the in-process uvicorn (websockets): the link's page follows its changes live too.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.websockets,
    pytest.mark.django_db(transaction=True),
]


@pytest.mark.parametrize("width", [1280, 390])
def test_the_shared_link_shows_the_dashboard_logged_out(page, width):
    seed()
    board = services.dashboard_create(
        owner=get_user_model().objects.get(username="alice"),
        identifier="greenhouse",
        name="Greenhouse",
        description="North house",
        widgets=WIDGETS,
        layout=LAYOUT,
    )
    page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
    log_in(page)
    page.goto("/dashboards/greenhouse/")
    page.get_by_role("link", name="Share").click()
    expect(page.locator("[data-share-state]")).to_have_text("This dashboard has no link.")
    page.get_by_role("button", name="Create a link").click()

    link = page.locator("#share-link").input_value()
    assert re.fullmatch(r"http://[^/]+/shared/dashboards/[\w-]{43}/", link)
    expect(page.locator("[data-share-state]")).to_have_text("This dashboard has a link.")
    assert_no_sideways_scroll(page, "dashboard-share")
    save(page, "dashboard-share", width)

    page.context.clear_cookies()
    page.goto(link)
    expect(page.get_by_role("heading", name="Greenhouse")).to_be_visible()
    expect(page.locator('[data-widget="temp"] [data-value]')).to_have_text("23.5")
    expect(page.locator('[data-widget="fan"] [data-led]')).to_have_attribute("data-led", "on")
    expect(page.locator('[data-widget="power"] button')).to_be_disabled()
    page.wait_for_function("window.consoleCharts && window.consoleCharts['widget-history']")
    assert page.locator("nav, .sidebar, .user-menu").count() == 0
    hrefs = page.locator("a[href]").evaluate_all("links => links.map(a => a.href)")
    assert all("openstreetmap.org" in href for href in hrefs), hrefs
    assert_no_sideways_scroll(page, "dashboard-shared")
    if width == 390:
        boxes = [page.locator(f'[data-widget="{w}"]').bounding_box() for w in ("temp", "fan")]
        assert boxes[0]["x"] == boxes[1]["x"] and boxes[0]["y"] < boxes[1]["y"]
    save(page, "dashboard-shared", width)

    # Live, logged out: the property's new value reaches the link's page without a reload.
    expect(page.locator("[data-live-state]")).to_have_text("Live")
    page.evaluate("window.notReloaded = true")
    state = Property.objects.get(device__identifier="sensor1", identifier="state")
    property_merge(prop=state, value={"temperature": 19.25})
    expect(page.locator('[data-widget="temp"] [data-value]')).to_have_text("19.2")
    assert page.evaluate("window.notReloaded") is True

    board.refresh_from_db()
    services.dashboard_unshare(dashboard=board)
    page.goto(link)
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()

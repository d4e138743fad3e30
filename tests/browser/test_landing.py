"""The landing page in a real chromium, served by pytest-django's live_server."""

import pytest
from django.urls import reverse
from playwright.sync_api import Route, expect

from tests.browser.conftest import errors_of

pytestmark = pytest.mark.browser


@pytest.fixture
def landing_url(live_server) -> str:
    return live_server.url + reverse("subscriptions:landing")


def test_landing_renders_without_console_errors_or_csp_violations(page, landing_url):
    response = page.goto(landing_url)

    assert response is not None and response.status == 200
    # The strict policy is really in force, so "no violations" means something.
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "DailyQ" in page.title()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert errors_of(page) == []


def test_csp_violations_are_reported_as_console_errors(page, landing_url):
    """The check above can fail: an inline script on the landing page is blocked and reported."""

    def inject_inline_script(route: Route) -> None:
        response = route.fetch()
        body = response.text().replace("</body>", "<script>document.title = 'injected';</script></body>")
        route.fulfill(response=response, body=body)

    page.route(landing_url, inject_inline_script)
    page.goto(landing_url)
    page.wait_for_load_state("networkidle")

    assert page.title() != "injected"
    assert any("Content Security Policy" in error for error in errors_of(page)), errors_of(page)


def test_landing_fits_a_phone_screen(phone_page, landing_url):
    phone_page.goto(landing_url)

    expect(phone_page.get_by_role("heading", level=1)).to_be_visible()
    width = phone_page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    scroll_width, inner_width = width
    assert inner_width == 375, "the page's meta viewport should give the device width"
    assert scroll_width <= inner_width, f"horizontal scroll on a phone: {scroll_width}px content in {inner_width}px"
    assert errors_of(phone_page) == []


def test_landing_renders_without_javascript(no_js_page, landing_url):
    response = no_js_page.goto(landing_url)

    assert response is not None and response.status == 200
    heading = no_js_page.get_by_role("heading", level=1)
    expect(heading).to_be_visible()
    expect(heading).not_to_have_text("")
    expect(no_js_page.get_by_role("link", name="DailyQ")).to_be_visible()


def test_site_css_is_served_and_applied(page, landing_url):
    with page.expect_response(lambda response: response.url.endswith("/static/css/site.css")) as css:
        page.goto(landing_url)

    assert css.value.status == 200
    assert css.value.headers["content-type"].startswith("text/css")
    # A link is font-weight 400 unless site.css's `.brand` rule applies.
    expect(page.locator("a.brand")).to_have_css("font-weight", "700")
    expect(page.locator("html")).to_have_css("background-color", "rgb(246, 248, 251)")
    assert "system-ui" in page.evaluate("getComputedStyle(document.documentElement).fontFamily")


@pytest.mark.parametrize(("locale", "lang"), [("ko-KR", "ko"), ("en-US", "en")])
def test_landing_follows_the_browser_language(make_page, landing_url, locale, lang):
    page = make_page(locale=locale)
    page.goto(landing_url)

    expect(page.locator("html")).to_have_attribute("lang", lang)

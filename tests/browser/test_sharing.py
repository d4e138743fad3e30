"""A question page's share button in chromium: the Web Share API, the clipboard fallback, no JavaScript."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import errors_of
from tests.factories import make_questions

pytestmark = pytest.mark.browser

NO_WEB_SHARE = "delete Navigator.prototype.share; delete Navigator.prototype.canShare;"
# Stands in for the system's share sheet, which headless chromium does not have.
FAKE_WEB_SHARE = """
Navigator.prototype.share = function (data) { window.sharedData = data; return Promise.resolve(); };
Navigator.prototype.canShare = function () { return true; };
"""


@pytest.fixture
def question_url(live_server, settings):
    settings.SITE_URL = live_server.url
    [question] = make_questions("backend", 1)
    return live_server.url + reverse("mailer:question", args=[question.pk])


def test_without_web_share_the_button_copies_the_link(make_page, question_url):
    page = make_page(permissions=["clipboard-read", "clipboard-write"])
    page.add_init_script(NO_WEB_SHARE)
    page.goto(question_url)
    assert page.evaluate("typeof navigator.share") == "undefined"
    page.get_by_role("link", name="이 질문 공유하기").click()
    expect(page.locator("#share-status")).to_have_text("링크를 복사했어요.")
    assert page.evaluate("navigator.clipboard.readText()") == question_url
    assert page.url == question_url  # the link was not followed
    assert errors_of(page) == []


def test_with_web_share_the_button_opens_the_share_sheet(make_page, question_url):
    page = make_page(permissions=["clipboard-read", "clipboard-write"])
    page.add_init_script(FAKE_WEB_SHARE)
    page.goto(question_url)
    page.evaluate("navigator.clipboard.writeText('')")
    page.get_by_role("link", name="이 질문 공유하기").click()
    page.wait_for_function("window.sharedData !== undefined")
    shared = page.evaluate("window.sharedData")
    assert shared["url"] == question_url and shared["title"] == "backend question 1"
    assert page.evaluate("navigator.clipboard.readText()") == ""
    assert errors_of(page) == []


def test_without_javascript_the_button_is_a_link_to_the_page(no_js_page, question_url):
    no_js_page.goto(question_url)
    link = no_js_page.get_by_role("link", name="이 질문 공유하기")
    assert link.get_attribute("href") == question_url
    link.click()
    no_js_page.wait_for_url(question_url)

"""The pages' finish in a real chromium: form labels, spacing, icons, link previews, languages."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, errors_of
from tests.factories import make_questions

pytestmark = pytest.mark.browser

SMALL_PHONE = {"width": 320, "height": 640}

# For every label.choice: its weight, its control's right edge, and the box of
# each line of its text (the control excluded).
CHOICE_LABELS = """() => [...document.querySelectorAll('label.choice')].map(label => {
  const control = label.querySelector('input');
  const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
  const lines = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const rect of range.getClientRects()) lines.push({left: rect.left, top: Math.round(rect.top)});
  }
  return {
    text: label.textContent.trim(),
    weight: getComputedStyle(label).fontWeight,
    controlRight: control.getBoundingClientRect().right,
    lines: lines,
  };
})"""

# Every text node with Hangul in it, and the language its nearest lang attribute gives.
HANGUL_TEXT = r"""() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!/[\uac00-\ud7a3]/.test(node.textContent)) continue;
    const owner = node.parentElement.closest('[lang]');
    found.push({text: node.textContent.trim().slice(0, 40), lang: owner && owner.getAttribute('lang'),
                tag: node.parentElement.tagName});
  }
  return found;
}"""


@pytest.fixture
def site(live_server, settings) -> str:
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def landing_url(site) -> str:
    return site + reverse("subscriptions:landing")


@pytest.mark.parametrize("locale", ["ko-KR", "en-US"])
def test_checkbox_and_radio_labels_are_not_bold(make_page, landing_url, locale):
    page = make_page(locale=locale)
    page.goto(landing_url)

    labels = page.evaluate(CHOICE_LABELS)
    # Backend, frontend, daily, weekly and the consent.
    assert len(labels) == 5, labels
    assert {label["weight"] for label in labels} == {"400"}, labels
    # The field names above them stay bold.
    expect(page.locator("label[for=id_email]")).to_have_css("font-weight", "600")
    expect(page.locator("fieldset.field legend").first).to_have_css("font-weight", "600")


@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=["375px", "320px"])
def test_wrapped_option_text_stays_beside_its_control(make_page, landing_url, viewport):
    page = make_page(locale="en-US", viewport=viewport, is_mobile=True, has_touch=True)
    page.goto(landing_url)

    labels = page.evaluate(CHOICE_LABELS)
    wrapped = [label for label in labels if len({line["top"] for line in label["lines"]}) > 1]
    assert wrapped, f"no option wraps at {viewport['width']}px, so this test shows nothing: {labels}"
    for label in labels:
        for line in label["lines"]:
            assert line["left"] >= label["controlRight"], f"{label['text']!r} runs under its control: {label}"


def test_cards_have_no_empty_space_above_their_first_line(page, landing_url, transactional_db):
    make_questions("backend", 1)  # the landing page's second card is the day's sample question
    page.goto(landing_url)

    gaps = page.evaluate(
        """() => [...document.querySelectorAll('.card')].map(card => {
          const style = getComputedStyle(card);
          const inner = card.getBoundingClientRect().top + parseFloat(style.borderTopWidth)
            + parseFloat(style.paddingTop);
          return card.firstElementChild.getBoundingClientRect().top - inner;
        })"""
    )
    assert len(gaps) >= 2
    assert all(gap <= 1 for gap in gaps), gaps


def test_favicon_logo_and_preview_image_are_served(page, site, landing_url):
    page.goto(landing_url)
    page.wait_for_load_state("networkidle")

    icons = page.evaluate(
        "() => [...document.querySelectorAll('link[rel~=icon], link[rel=apple-touch-icon]')].map(l => l.href)"
    )
    logo = page.locator("header a.brand img")
    expect(logo).to_be_visible()
    preview = page.locator('meta[property="og:image"]').get_attribute("content")
    assert preview.startswith(site + "/")
    for url in [*icons, logo.get_attribute("src"), preview, site + "/favicon.ico"]:
        response = page.request.get(url if url.startswith("http") else site + url)
        assert response.status == 200, url
        assert response.headers["content-type"].startswith("image/"), (url, response.headers["content-type"])
    assert len(icons) >= 2
    assert errors_of(page) == []


def test_english_pages_show_english_text_and_mark_korean_fallbacks(make_page, landing_url, site, transactional_db):
    korean_only, translated = make_questions("backend", 2)
    korean_only.title = "프로세스와 스레드의 차이는 무엇인가요?"
    korean_only.answer_md = "프로세스는 자원을 할당받는 작업의 단위이고, 스레드는 그 안에서 실행되는 흐름이에요."
    korean_only.save()
    translated.title, translated.title_en, translated.answer_md_en = "교착 상태란?", "What is a deadlock?", "A cycle."
    translated.save()
    page = make_page(locale="en-US")

    page.goto(landing_url)
    expect(page.locator("#content-language")).to_contain_text("shown in English where the question has an")
    expect(page.locator(".sample h3")).to_have_attribute("lang", "en")
    assert [text for text in page.evaluate(HANGUL_TEXT) if text["tag"] != "OPTION"] == []

    page.goto(site + reverse("mailer:question", args=[translated.pk]))
    expect(page.locator("h1")).to_have_text("What is a deadlock?")
    expect(page.locator("#text-language")).to_have_count(0)

    for url in (
        site + reverse("mailer:question", args=[korean_only.pk]),
        site + reverse("mailer:archive", args=["backend"]),
    ):
        page.goto(url)
        expect(page.locator("#text-language")).to_be_visible()
        korean = [text for text in page.evaluate(HANGUL_TEXT) if text["tag"] not in {"OPTION", "TITLE"}]
        assert korean, url
        assert all(text["lang"] == "ko" for text in korean), (url, korean)

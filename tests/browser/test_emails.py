"""The mails as a reader's mail app draws them: the HTML part in a real chromium.

Each test renders the real messages (tests/mailer/mail_samples.py) and
loads their HTML part into a page, the way a webmail or a phone app shows it.
"""

from io import BytesIO

import pytest
from PIL import Image

from tests.browser.conftest import PHONE
from tests.mailer.mail_samples import answer_links, digest_questions, every_mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WITH_BUTTONS = (
    "verification", "welcome", "manage_link", "daily", "weekly", "run_report", "sending_paused", "send_missed",
    "bank_wrap",
)  # fmt: skip
# How far two colours may differ and still be one colour (per channel,
# out of 255): anti-aliasing aside, a drawn area is one exact colour.
SAME = 3


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def text_box(page, element) -> dict:
    """The box of the element's text itself (not of its padding)."""
    return element.evaluate(
        """(el) => { const range = document.createRange(); range.selectNodeContents(el);
                     const b = range.getBoundingClientRect();
                     return {x: b.x, y: b.y, width: b.width, height: b.height}; }"""
    )


def distance(a: tuple, b: tuple) -> int:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def colours_of(page, element, *, rim: int = 3) -> set[tuple]:
    """Colours drawn in the element's box, leaving out `rim` px of anti-aliased (rounded) edge."""
    shot = Image.open(BytesIO(page.screenshot(clip=element.bounding_box()))).convert("RGB")
    return {shot.getpixel((x, y)) for y in range(rim, shot.height - rim) for x in range(rim, shot.width - rim)}


def distinct(colours: set[tuple]) -> list[tuple]:
    """The colours that are not within SAME of one listed before them."""
    found: list[tuple] = []
    for colour in sorted(colours):
        if all(distance(colour, seen) > SAME for seen in found):
            found.append(colour)
    return found


@pytest.mark.parametrize("forced", [False, True], ids=["prefers-dark", "forced-dark"])
def test_buttons_stay_one_colour_in_a_dark_colour_scheme(make_page, eager_tasks, settings, forced):
    """Gmail's app and Chromium darken a light mail themselves; a button must stay one piece."""
    mails = every_mail(language="ko", settings=settings)
    page = make_page(color_scheme="dark")
    if forced:
        # What Chromium's own dark mode (and the Android WebViews mail apps use) does to a light page.
        page.context.new_cdp_session(page).send("Emulation.setAutoDarkModeOverride", {"enabled": True})

    two_tone = {}
    for kind in WITH_BUTTONS:
        page.set_content(html_of(mails[kind]))
        buttons = page.locator("a.button")
        assert buttons.count() >= 1, kind
        button = buttons.first
        button.scroll_into_view_if_needed()  # a long mail (the run report) has it below the first screen
        with_label = distinct(colours_of(page, button))
        # The fill alone: the label drawn in no colour, everything else as it was.
        button.evaluate("(el) => el.style.setProperty('color', 'transparent', 'important')")
        fill = distinct(colours_of(page, button))
        if len(fill) != 1:
            two_tone[kind] = fill
            continue
        label = max(distance(colour, fill[0]) for colour in with_label)
        assert label > 100, f"{kind}: the label does not stand out from the fill {fill[0]}"
    assert two_tone == {}


def test_the_weekly_digest_is_a_compact_list_on_a_phone(make_page, eager_tasks, settings):
    mails = every_mail(language="ko", settings=settings)
    page = make_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.set_content(html_of(mails["weekly"]))

    questions = digest_questions()
    assert len(questions) == settings.WEEKLY_DIGEST_SIZE
    for title, question_id in questions:
        link = page.get_by_role("link", name=title, exact=True)
        assert link.count() == 1, title
        # Each title opens the reader's own answer page for that question.
        [(_subscription, opened)] = answer_links(link.get_attribute("href")).values()
        assert opened == question_id, title
    assert page.locator("a.button").count() <= 1
    height = page.evaluate("document.body.getBoundingClientRect().height")
    # Five titles, the hint, one button and the footer: about one phone screen.
    assert height <= 1000, f"the digest is {height}px tall at {PHONE['width']}px wide"


def test_the_run_report_table_keeps_labels_apart_from_their_numbers(page, eager_tasks, settings):
    mails = every_mail(language="en", settings=settings)
    page.set_content(html_of(mails["run_report"]))

    rows = page.locator("td.content table").first.locator("tr")
    assert rows.count() >= 5
    for n in range(rows.count()):
        label, value = rows.nth(n).locator("th, td").all()[:2]
        # Padding, not the width the table happens to get: a short report is narrow.
        padding = label.evaluate("(el) => parseFloat(getComputedStyle(el).paddingRight)") + value.evaluate(
            "(el) => parseFloat(getComputedStyle(el).paddingLeft)"
        )
        gap = text_box(page, value)["x"] - (text_box(page, label)["x"] + text_box(page, label)["width"])
        assert padding >= 12 and gap >= 12, f"{label.inner_text()!r} and {value.inner_text()!r}: {padding}px padding"

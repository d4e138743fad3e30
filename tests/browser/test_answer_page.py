"""The reader's loop in chromium: follow a question's link, write an answer, reveal, rate
"didn't know", change to "partly", and find it all under My questions on the manage page.

The mail's link is made by subscriptions.links.answer_url, the builder the
send path calls; a sent delivery stands for the mail that carried it.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from mailer.models import Delivery, SendRun
from subscriptions import links
from subscriptions.models import Answer, Subscription
from tests.browser.conftest import PHONE, errors_of
from tests.factories import LONG_AGO, make_questions, make_subscriber

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(live_server, settings) -> str:
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_answer_reveal_rate_and_change_then_my_questions(site, make_page, javascript):
    (question,) = make_questions("backend", 1)
    question.answer_md = "A **three-way** handshake."
    question.save()
    reader = make_subscriber("reader@example.org")
    subscription = Subscription.objects.get(subscriber=reader)
    run = SendRun.objects.create(day=date(2026, 11, 30), cutoff=LONG_AGO)
    Delivery.objects.create(
        run=run, subscription=subscription, question_ids=[question.id], status="sent", sent_at=timezone.now()
    )
    page = make_page(locale="en-US", viewport=PHONE, is_mobile=True, has_touch=True, javascript=javascript)

    page.goto(links.answer_url(subscription.id, question.id))
    expect(page.get_by_role("heading", level=1)).to_have_text(question.title)
    expect(page.get_by_text("three-way")).to_have_count(0)  # never the answer first
    page.get_by_label("Your answer").fill("SYN, SYN-ACK, ACK <b>")
    page.get_by_role("button", name="Show the answer", exact=True).click()

    expect(page.locator("article.answer strong")).to_have_text("three-way")
    expect(page.locator("#own-answer-text")).to_have_text("SYN, SYN-ACK, ACK <b>")
    page.get_by_role("button", name="I didn't know").click()
    expect(page.get_by_role("button", name="I didn't know")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Partly").click()
    expect(page.get_by_role("button", name="Partly")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="I didn't know")).to_have_attribute("aria-pressed", "false")
    # Nothing wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    answer = Answer.objects.get()
    assert (answer.rating, answer.text) == ("partly", "SYN, SYN-ACK, ACK <b>")
    assert answer.next_review_on is not None

    page.goto(links.manage_url(reader.id))
    item = page.locator("ul.my-questions li")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("Partly")
    expect(item).to_contain_text(f"review on {answer.next_review_on:%Y-%m-%d}")
    expect(item).to_contain_text("SYN, SYN-ACK, ACK <b>")
    page.get_by_role("link", name="Due for review only").click()
    expect(page.locator("ul.my-questions li")).to_have_count(0)
    page.get_by_role("link", name="All", exact=True).click()
    page.get_by_role("link", name=question.title).click()
    expect(page.get_by_role("button", name="Partly")).to_have_attribute("aria-pressed", "true")
    assert errors_of(page) == []

"""The reader's loop from the mail in chromium: follow the daily mail's answer link, write, rate
"didn't know", and the question comes back as a review on the third send day after, not before.

The rating is made by the page on today's date (the wall clock); every send day is
counted from it with the send schedule, so the test holds on any day.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from mailer.selectors import is_send_day
from mailer.sending.runs import start_daily_send
from tests.factories import make_questions, make_subscriber
from tests.mailer.mail_samples import answer_links

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def send_days(start, step, count):
    days, day = [], start
    while len(days) < count:
        day += timedelta(days=step)
        if is_send_day(day):
            days.append(day)
    return days


def test_the_mails_answer_link_then_again_brings_the_review_on_the_third_send_day(
    live_server, settings, eager_tasks, make_page
):
    settings.SITE_URL = live_server.url
    settings.ADMINS = []
    settings.REVIEW_INTERVALS = [3, 7, 21]
    questions = make_questions("backend", 10)
    make_subscriber("reader@example.org", language="en")
    today = timezone.localdate()
    [first_day] = send_days(today + timedelta(days=1), -1, 1)  # the last send day up to today
    mail.outbox.clear()
    start_daily_send(day=first_day)
    [first] = mail.outbox
    [link] = [
        url
        for url, (_s, q) in answer_links(first.body.replace(settings.SITE_URL, "https://dailyq.example")).items()
        if q == questions[0].id
    ]
    page = make_page(locale="en-US")
    page.goto(link.replace("https://dailyq.example", live_server.url))
    expect(page.get_by_role("heading", level=1)).to_have_text(questions[0].title)
    page.get_by_label("Your answer").fill("No idea yet")
    page.get_by_role("button", name="Show the answer", exact=True).click()
    page.get_by_role("button", name="I didn't know").click()
    expect(page.get_by_role("button", name="I didn't know")).to_have_attribute("aria-pressed", "true")

    bodies = []
    for day in send_days(today, 1, 3):
        mail.outbox.clear()
        start_daily_send(day=day)
        [message] = mail.outbox
        bodies.append(message.body)
    assert all(questions[0].title + "\n" not in body for body in bodies[:2])
    assert "Review" in bodies[2] and bodies[2].count(questions[0].title + "\n") == 1

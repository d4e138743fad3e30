"""The reader's loop in the send path: answer links and reviews in the daily and weekly mails, tasks in-process.

Exactly-once reviews on real Celery workers are in test_send_integration.py.
"""

import re
from datetime import date, timedelta

import pytest
from django.core import mail

from mailer.models import Delivery
from mailer.sending import recovery
from mailer.sending.reasons import UNKNOWN_REASON
from mailer.sending.runs import start_daily_send
from subscriptions import answers
from subscriptions.models import Answer, Subscription
from subscriptions.selectors import AnswerTarget
from tests.factories import make_questions, make_subscriber
from tests.mailer.mail_samples import answer_links

MONDAY = date(2026, 11, 30)
TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = (MONDAY + timedelta(days=n) for n in range(1, 5))

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(eager_tasks, settings):
    settings.SITE_URL = "https://dailyq.example"
    settings.ADMINS = []
    settings.REVIEW_INTERVALS = [3, 7, 21]
    mail.outbox.clear()


def send(day, address):
    mail.outbox.clear()
    start_daily_send(day=day)
    found = [m for m in mail.outbox if m.to == [address]]
    assert len(found) == 1, (day, len(found))
    return found[0]


def rate(subscription, question, rating, day):
    target = AnswerTarget(subscription_id=subscription.id, subscriber=subscription.subscriber, question=question)
    return answers.rate_answer(target=target, rating=rating, today=day)


def html_of(message):
    [(html, _mimetype)] = message.alternatives
    return html.replace("&amp;", "&")


def test_a_question_rated_again_comes_back_on_the_third_send_day_and_not_before_then_knew_retires_it():
    questions = make_questions("backend", 30)
    make_subscriber("a@example.org")
    subscription = Subscription.objects.get()
    first = send(MONDAY, "a@example.org")
    # The mail's link opens the reader's own page for the question of the day.
    assert list(answer_links(first.body).values()) == [(subscription.id, questions[0].id)]
    rate(subscription, questions[0], "again", MONDAY)

    for day in (TUESDAY, WEDNESDAY):
        message = send(day, "a@example.org")
        assert questions[0].title not in message.body and "복습" not in message.body
        assert Delivery.objects.get(run__day=day).review_question_ids == []

    thursday = send(THURSDAY, "a@example.org")
    delivery = Delivery.objects.get(run__day=THURSDAY)
    assert delivery.question_ids == [questions[3].id] and delivery.review_question_ids == [questions[0].id]
    # Below today's new question, in the text and the HTML, each with the reader's answer link.
    body = thursday.body
    assert body.index(questions[3].title) < body.index("복습") < body.index(questions[0].title)
    for part in (body, html_of(thursday)):
        assert sorted(answer_links(part).values()) == sorted(
            [(subscription.id, questions[3].id), (subscription.id, questions[0].id)]
        )
    answer = Answer.objects.get(question=questions[0])
    assert (answer.reviews_sent, answer.last_review_on) == (1, THURSDAY)
    assert answer.next_review_on > THURSDAY
    # The review did not take a new question's place: the cursor moved by one.
    assert Subscription.objects.get().next_position == 5

    # A second trigger of the same day mails nothing and records no second review.
    mail.outbox.clear()
    start_daily_send(day=THURSDAY)
    assert mail.outbox == []
    assert Answer.objects.get(question=questions[0]).reviews_sent == 1

    rate(subscription, questions[0], "knew", FRIDAY)
    day = FRIDAY
    for _ in range(25):  # five weeks of send days: past every interval
        day += timedelta(days=3 if day.weekday() == 4 else 1)
        send(day, "a@example.org")
    assert not Delivery.objects.exclude(review_question_ids=[]).exclude(run__day=THURSDAY).exists()
    assert Answer.objects.get(question=questions[0]).reviews_sent == 1


def test_a_daily_mail_carries_the_oldest_due_review_and_a_weekly_digest_all_but_its_own_questions():
    questions = make_questions("backend", 15)
    make_subscriber("d@example.org", next_position=8)
    make_subscriber("w@example.org", frequency="weekly", next_position=6)
    daily, weekly = Subscription.objects.order_by("subscriber__email")
    long_ago = MONDAY - timedelta(days=28)
    for subscription in (daily, weekly):
        rate(subscription, questions[1], "partly", long_ago + timedelta(days=1))
        rate(subscription, questions[0], "again", long_ago)  # due the longest
        rate(subscription, questions[6], "again", long_ago)  # in the weekly digest as new (q6..q10)

    start_daily_send(day=MONDAY)

    by_reader = {d.subscription_id: d for d in Delivery.objects.filter(run__day=MONDAY)}
    assert by_reader[daily.id].question_ids == [questions[7].id]
    assert by_reader[daily.id].review_question_ids == [questions[0].id]
    assert by_reader[weekly.id].question_ids == [q.id for q in questions[5:10]]
    assert by_reader[weekly.id].review_question_ids == [questions[0].id, questions[1].id]
    [digest] = [m for m in mail.outbox if m.to == ["w@example.org"]]
    positions = [digest.body.index(q.title + "\n") for q in [*questions[5:10], questions[0], questions[1]]]
    assert positions == sorted(positions) and positions[4] < digest.body.index("복습") < positions[5]
    assert len(answer_links(digest.body)) == 7
    # Reviews sent are recorded; the one not mailed (the daily reader's second) stays due.
    assert Answer.objects.get(subscription=daily, question=questions[0]).last_review_on == MONDAY
    assert Answer.objects.get(subscription=daily, question=questions[1]).last_review_on is None
    assert Answer.objects.get(subscription=weekly, question=questions[1]).last_review_on == MONDAY
    assert Answer.objects.get(subscription=weekly, question=questions[6]).last_review_on is None
    assert Subscription.objects.get(id=weekly.id).next_position == 11


def test_an_english_reader_gets_the_english_text_and_a_note_for_a_korean_only_question():
    [bilingual, korean_only] = make_questions("backend", 2)
    bilingual.title_en, bilingual.question_md_en, bilingual.answer_md_en = "What is TCP?", "Explain **TCP**.", "A."
    bilingual.save()
    make_subscriber("en@example.org", language="en")
    subscription = Subscription.objects.get()

    monday = send(MONDAY, "en@example.org")
    assert "What is TCP?" in monday.subject and "What is TCP?" in monday.body
    assert bilingual.title not in monday.body and "no English version" not in monday.body
    assert '<h1 lang="en"' in html_of(monday)

    rate(subscription, bilingual, "again", MONDAY)
    message = send(TUESDAY, "en@example.org")
    assert Delivery.objects.get(run__day=TUESDAY).question_ids == [korean_only.id]
    assert "This question has no English version yet, so it is shown in Korean." in message.body
    assert re.search(rf'<h1 lang="ko"[^>]*>{korean_only.title}</h1>', html_of(message))


def test_a_delivery_confirmed_sent_by_its_send_event_records_its_review_once():
    questions = make_questions("backend", 10)
    make_subscriber("c@example.org", next_position=4)
    subscription = Subscription.objects.get()
    rate(subscription, questions[0], "again", MONDAY - timedelta(days=7))
    start_daily_send(day=MONDAY)
    delivery = Delivery.objects.get()
    assert delivery.review_question_ids == [questions[0].id]
    # As if the worker died while sending it and SES's Send event came later.
    Answer.objects.filter(question=questions[0]).update(last_review_on=None, reviews_sent=0)
    Delivery.objects.filter(id=delivery.id).update(
        status=Delivery.Status.FAILED, reason=UNKNOWN_REASON + "test", accepted_message_id="m-1"
    )
    assert recovery.confirm_sent_deliveries(ids=[delivery.id]) == 1
    assert recovery.confirm_sent_deliveries(ids=[delivery.id]) == 0
    answer = Answer.objects.get(question=questions[0])
    assert (answer.reviews_sent, answer.last_review_on) == (1, MONDAY)

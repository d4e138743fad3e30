"""ADMINS are told once, ahead of time, when readers will start a category again from its first question."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail

from mailer import bank_wraps
from mailer.models import BankWrapNotice
from subscriptions.models import Subscription
from tests.factories import make_questions, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)

# A Monday; send days are Monday to Friday.
MONDAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # noon in Seoul, after the send
ADMIN = "ops@example.org"


@pytest.fixture(autouse=True)
def _setup(eager_tasks, settings):
    settings.ADMINS = [("Ops", ADMIN)]
    settings.LANGUAGE_CODE = "en"
    settings.SITE_URL = "https://dailyq.example"
    settings.BANK_WRAP_NOTICE_SEND_DAYS = 5
    mail.outbox.clear()


def test_readers_within_the_notice_days_of_the_end_make_one_mail_to_admins():
    make_questions("backend", 10)
    make_subscriber("near@example.org", next_position=7)  # 7..10 on Tue..Fri, #1 again next Monday
    make_subscriber("far@example.org", next_position=2)

    [notice] = bank_wraps.check_bank_wraps(today=MONDAY, now=NOW)

    assert (notice.category, notice.last_position, notice.questions) == ("backend", 10, 10)
    assert notice.wraps_on == MONDAY + timedelta(days=7) and notice.readers == 1
    [message] = mail.outbox
    assert message.to == [ADMIN]
    assert message.subject == "DailyQ: Backend readers start again from question 1 on 2026-12-07"
    assert "10 published questions, the last at position 10" in message.body
    assert "https://dailyq.example/admin/mailer/question/?category=backend" in message.body


def test_a_reader_one_send_day_further_is_not_told_about_yet():
    make_questions("backend", 10)
    make_subscriber("early@example.org", next_position=6)  # 6..10 Tue..next Mon: #1 on the sixth send day

    assert bank_wraps.check_bank_wraps(today=MONDAY, now=NOW) == []
    assert mail.outbox == []

    Subscription.objects.update(next_position=7)  # Tuesday's send mailed #6
    [notice] = bank_wraps.check_bank_wraps(today=MONDAY + timedelta(days=1), now=NOW)
    assert notice.wraps_on == MONDAY + timedelta(days=8)  # Tuesday a week on, the fifth send day after this one


def test_the_same_end_of_the_bank_is_told_once_and_a_grown_bank_again():
    make_questions("backend", 10)
    make_subscriber("a@example.org", next_position=9)
    make_subscriber("b@example.org", next_position=10)

    assert len(bank_wraps.check_bank_wraps(today=MONDAY, now=NOW)) == 1
    for day in range(1, 10):  # the next days' checks, and a reader after the first wrapped
        assert bank_wraps.check_bank_wraps(today=MONDAY + timedelta(days=day), now=NOW) == []
    Subscription.objects.filter(subscriber__email="a@example.org").update(next_position=1)
    assert bank_wraps.check_bank_wraps(today=MONDAY + timedelta(days=10), now=NOW) == []
    assert len(mail.outbox) == 1

    make_questions("backend", 2, start=11)  # a new end: #12
    Subscription.objects.filter(subscriber__email="b@example.org").update(next_position=12)
    [notice] = bank_wraps.check_bank_wraps(today=MONDAY, now=NOW)
    assert notice.last_position == 12
    assert len(mail.outbox) == 2
    assert BankWrapNotice.objects.count() == 2


def test_weekly_readers_wrap_in_the_digest_that_holds_the_first_question_again():
    make_questions("backend", 10)
    make_subscriber("weekly@example.org", frequency="weekly", next_position=4)  # 4..8 next Monday, 9,10,1.. after

    assert bank_wraps.check_bank_wraps(today=MONDAY, now=NOW) == []  # one digest day ahead: no wrap in it
    Subscription.objects.update(next_position=7)  # 7..10, 1 in next Monday's digest
    [notice] = bank_wraps.check_bank_wraps(today=MONDAY, now=NOW)
    assert notice.wraps_on == MONDAY + timedelta(days=7)


def test_inactive_readers_and_empty_categories_are_not_counted():
    make_questions("backend", 3)
    gone = make_subscriber("gone@example.org", next_position=3)
    gone.subscriptions.update(is_active=False)
    make_subscriber("frontend@example.org", categories=["frontend"], next_position=1)  # no frontend questions

    assert bank_wraps.check_bank_wraps(today=MONDAY, now=NOW) == []
    assert mail.outbox == []

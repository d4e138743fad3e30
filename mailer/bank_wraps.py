"""Telling ADMINS ahead of time that readers will start a category's questions again from the first.

A reader's sequence wraps around at the end of its category's bank
(selectors.Sequence.next_after). Checked once a day after the send: when a
reader will get a wrapped question within BANK_WRAP_NOTICE_SEND_DAYS send
days, ADMINS are told once per category and bank end (BankWrapNotice), so
they can add questions first. A bank that grows has a new end, and a new notice.
"""

import bisect
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from mailer import alerts, selectors
from mailer.emails import absolute_url
from mailer.models import BankWrapNotice
from subscriptions import tracks
from subscriptions.models import Frequency, Subscriber, Subscription


@dataclass(frozen=True)
class Wrap:
    category: str
    wraps_on: date  # the first send day a reader gets a question from the start again
    readers: int  # readers who do so within the notice's send days


def upcoming_wraps(*, today: date) -> list[Wrap]:
    """The categories whose readers start again from the first question within
    BANK_WRAP_NOTICE_SEND_DAYS send days after `today`."""
    calendar = selectors.send_calendar()
    send_days = []
    for n in range(1, 366):
        day = today + timedelta(days=n)
        if calendar.send_start(day) is not None:
            send_days.append(day)
            if len(send_days) == settings.BANK_WRAP_NOTICE_SEND_DAYS:
                break
    digest_days = [day for day in send_days if calendar.is_digest_day(day)]
    readers = (
        Subscription.objects.mailed()
        .filter(subscriber__status=Subscriber.Status.ACTIVE)
        .values_list("category", "next_position", "subscriber__frequency")
        .annotate(n=Count("id"))
        .order_by()
    )
    sequences = selectors.question_sequences()
    found: dict[str, tuple[date, int]] = {}
    for category, next_position, frequency, n in readers:
        sequence = sequences.get(category)
        if sequence is None or not sequence.ids:
            continue
        left = len(sequence.positions) - bisect.bisect_left(sequence.positions, next_position)
        wraps_on = _wrap_day(left, frequency, send_days, digest_days)
        if wraps_on is not None:
            first, count = found.get(category, (wraps_on, 0))
            found[category] = (min(first, wraps_on), count + n)
    return [Wrap(category, wraps_on, readers) for category, (wraps_on, readers) in sorted(found.items())]


def _wrap_day(left: int, frequency: str, send_days: list[date], digest_days: list[date]) -> date | None:
    """The send day a reader with `left` questions before the end gets the first one again, if among those given."""
    if frequency == Frequency.WEEKLY:
        # Each digest carries WEEKLY_DIGEST_SIZE questions: the one holding question `left` + 1 wraps.
        index, days = left // settings.WEEKLY_DIGEST_SIZE, digest_days
    else:
        index, days = left, send_days
    return days[index] if index < len(days) else None


def check_bank_wraps(*, today: date, now: datetime | None = None) -> list[BankWrapNotice]:
    """Record a notice for each category whose readers wrap soon, once per bank end; mail ADMINS each new one."""
    now = now or timezone.now()
    sequences = selectors.question_sequences()
    notices = []
    for wrap in upcoming_wraps(today=today):
        sequence = sequences[wrap.category]
        try:
            with transaction.atomic():
                notice = BankWrapNotice.objects.create(
                    category=wrap.category,
                    last_position=sequence.positions[-1],
                    questions=len(sequence.ids),
                    wraps_on=wrap.wraps_on,
                    readers=wrap.readers,
                    noticed_at=now,
                )
        except IntegrityError:
            continue  # told before about this end of the bank
        from mailer.tasks import send_bank_wrap_notice as send_bank_wrap_notice_task

        transaction.on_commit(lambda notice_id=notice.id: send_bank_wrap_notice_task.delay(notice_id=notice_id))
        notices.append(notice)
    return notices


def send_bank_wrap_notice(*, notice_id: int, to: list[str] | None = None) -> int:
    """Mail ADMINS (or `to`, on a retry) one notice, once."""
    return alerts.mail_admins_once(
        "bank_wrap",
        unclaimed=BankWrapNotice.objects.filter(id=notice_id, alerted_at__isnull=True),
        field="alerted_at",
        context=lambda: _notice_context(BankWrapNotice.objects.get(id=notice_id)),
        to=to,
    )


def _notice_context(notice: BankWrapNotice) -> dict:
    return {
        "notice": notice,
        "category": tracks.label(notice.category),
        "send_days": settings.BANK_WRAP_NOTICE_SEND_DAYS,
        "admin_url": absolute_url(reverse("admin:mailer_question_changelist") + f"?category={notice.category}"),
    }

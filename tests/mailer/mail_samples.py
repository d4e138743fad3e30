"""Every kind of mail DailyQ sends, made through the doors that send it.

`every_mail(language=...)` subscribes, confirms, asks again, runs a Monday
send for a daily and a weekly reader, sends them an announcement, reports the run, pauses
sending, misses a send day, tells of readers coming to the end of a bank,
and returns the message each of those put in Django's test outbox, keyed by
template name. Tests of the mails' text, spam score and looks all read the
same real messages. The caller provides a transactional database, eager
Celery tasks and the locmem mail backend (pytest-django's default).
"""

import re
from datetime import date, timedelta

from django.core import mail
from django.core.mail import EmailMessage
from django.test import override_settings

from mailer import alerts, bank_wraps, questions, schedule
from mailer.models import Delivery, Question, SendRun
from mailer.sending import announcements, reasons, runs
from subscriptions import services as subscriptions
from subscriptions.models import Subscription
from tests.factories import make_subscriber

MONDAY = date(2026, 11, 30)
KINDS = (
    "verification", "welcome", "manage_link", "daily", "weekly", "announcement", "run_report", "sending_paused",
    "send_missed", "bank_wrap",
)  # fmt: skip
ADMIN = "ops@example.org"
RUN_DURATION = timedelta(minutes=2, seconds=5, microseconds=123456)


# What an operator would announce, in each language.
ANNOUNCEMENT = {
    "ko": {
        "subject": "12월 소식: 데이터베이스 질문과 복습 기능",
        "body_md": (
            "안녕하세요, DailyQ입니다.\n\n"
            "이번 달에는 **데이터베이스** 질문 30개가 추가되었고, 헷갈렸던 질문을 며칠 뒤 다시 보내 드리는 "
            "복습 기능이 생겼습니다.\n\n"
            "- 답을 먼저 적어 본 뒤 모범 답안과 비교할 수 있습니다.\n"
            "- 질문마다 알았다, 애매했다, 몰랐다로 표시하면 복습 일정이 정해집니다.\n\n"
            "지난 질문은 [질문 보관함](https://dailyq.example/archive/backend/)에서 찾아볼 수 있습니다.\n\n"
            "늘 읽어 주셔서 고맙습니다."
        ),
    },
    "en": {
        "subject": "December news: database questions and reviews",
        "body_md": (
            "Hello from DailyQ.\n\n"
            "This month brings 30 new **database** questions, and reviews: a question you found hard "
            "comes back a few days later.\n\n"
            "- Write your own answer first, then compare it with the model answer.\n"
            "- Mark each question as known, partly known or not known, and the reviews follow from that.\n\n"
            "Earlier questions are in the [archive](https://dailyq.example/archive/backend/).\n\n"
            "Thank you for reading."
        ),
    },
}


def every_mail(*, language: str, settings) -> dict[str, EmailMessage]:
    """One message of each kind in KINDS, the reader's mails in `language`, the admin's too."""
    settings.SITE_URL = "https://dailyq.example"
    settings.ADMINS = [("Ops", ADMIN)]
    # Admin mails are in the site's language.
    settings.LANGUAGE_CODE = language
    questions.load_starter_questions()
    mail.outbox.clear()
    found: dict[str, EmailMessage] = {}

    newcomer = "newcomer@example.org"
    subscriptions.request_subscription(
        email=newcomer, categories=["backend", "frontend"], frequency="daily", language=language, client_ip="192.0.2.1"
    )
    found["verification"] = _only_mail()
    code = re.search(r"\b(\d{6})\b", found["verification"].subject).group(1)
    subscriptions.confirm_with_code(email=newcomer, code=code)
    found["welcome"] = _only_mail()
    subscriptions.request_subscription(
        email=newcomer, categories=["backend"], frequency="daily", language=language, client_ip="192.0.2.2"
    )
    found["manage_link"] = _only_mail()

    make_subscriber("daily@example.org", language=language)
    make_subscriber("weekly@example.org", language=language, frequency="weekly")
    run = runs.start_daily_send(day=MONDAY)
    by_recipient = {message.to[0]: message for message in mail.outbox}
    found["daily"] = by_recipient["daily@example.org"]
    found["weekly"] = by_recipient["weekly@example.org"]
    mail.outbox.clear()

    notice = announcements.create_announcement(**ANNOUNCEMENT[language])
    announcements.start_announcement(announcement_id=notice.id)
    found["announcement"] = next(m for m in mail.outbox if m.to == ["daily@example.org"])
    mail.outbox.clear()

    # A report with something to say: a failure and a delivery whose fate is unknown.
    for category, reason in [
        ("backend", "MessageRejected: Email address is not verified."),
        ("frontend", reasons.UNKNOWN_REASON + "ReadTimeoutError"),
    ]:
        subscription = Subscription.objects.get(subscriber__email=newcomer, category=category)
        Delivery.objects.create(
            run=run, subscription=subscription, question_ids=[], status=Delivery.Status.FAILED, reason=reason
        )
    started = runs.send_cutoff(MONDAY)
    SendRun.objects.filter(id=run.id).update(
        started_at=started, finished_at=started + RUN_DURATION, total=run.total + 2
    )
    alerts.send_run_report(run_id=run.id, to=[ADMIN])
    found["run_report"] = _only_mail()

    alerts.send_pause_alert(reason="Complaint rate 0.12% over the last 1000 deliveries (SES reviews at 0.1%).")
    found["sending_paused"] = _only_mail()

    # The service first started at 09:00 on a send day, with the policy to wait for an admin.
    tuesday = MONDAY + timedelta(days=1)
    nine = runs.send_cutoff(tuesday) + timedelta(hours=2)
    with override_settings(LATE_SEND_POLICY="skip"):
        schedule.check_send_schedule(now=nine)
    found["send_missed"] = _only_mail()

    # The daily reader is four questions from the end of the starter bank on a Monday.
    last = Question.objects.filter(category="backend").order_by("-position").first().position
    Subscription.objects.filter(subscriber__email="daily@example.org").update(next_position=last - 3)
    bank_wraps.check_bank_wraps(today=MONDAY)
    found["bank_wrap"] = _only_mail()
    return found


def digest_questions() -> list[tuple[str, int]]:
    """(title shown to the reader, question id) of each question in the weekly reader's digest, in order."""
    from mailer.selectors import question_text

    delivery = Delivery.objects.select_related("subscription__subscriber").get(
        subscription__subscriber__email="weekly@example.org", run__kind=SendRun.Kind.DAILY
    )
    found = Question.objects.in_bulk(delivery.question_ids)
    language = delivery.subscription.subscriber.language
    return [(question_text(found[i], language).title, i) for i in delivery.question_ids]


def answer_links(text: str) -> dict[str, tuple[int, int]]:
    """Each answer link in `text` (absolute URL) -> the (subscription id, question id) its token opens."""
    from subscriptions import tokens

    found = {}
    for url, token in re.findall(r"(https://dailyq\.example/answer/([A-Za-z0-9_\-:]+)/)", text):
        payload = tokens.read_token(tokens.Purpose.ANSWER, token)
        found[url] = (payload["u"], payload["q"])
    return found


def _only_mail() -> EmailMessage:
    [message] = mail.outbox
    mail.outbox.clear()
    return message

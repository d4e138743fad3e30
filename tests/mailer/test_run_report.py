"""The run report: every outcome counted, the reasons listed, and the operator's summary beside them."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail

from mailer import alerts, ses
from mailer.models import Delivery, SendRun, Suppression
from mailer.operator_summary import PeopleCounts, SesRate, operator_summary
from mailer.sending import reasons
from subscriptions.models import Subscriber, Subscription, Verification
from tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

DAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 09:30 in Seoul, after the morning's run
ADMIN = "ops@example.org"
TIMES = "\N{MULTIPLICATION SIGN}"  # as the report writes it: "3 <TIMES> reason"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.ADMINS = [("Ops", ADMIN)]
    settings.LANGUAGE_CODE = "en"
    settings.SITE_URL = "https://dailyq.example"
    mail.outbox.clear()


def finished_run(outcomes: list[tuple[str, str]]) -> SendRun:
    """A done run with one delivery per (status, reason), each for a reader of its own."""
    run = SendRun.objects.create(
        day=DAY, cutoff=NOW - timedelta(hours=2), status=SendRun.Status.DONE, total=len(outcomes),
        started_at=NOW - timedelta(hours=2), finished_at=NOW - timedelta(hours=1),
    )  # fmt: skip
    for n, (status, reason) in enumerate(outcomes):
        subscription = make_subscriber(f"r{n}@example.org").subscriptions.get()
        Delivery.objects.create(run=run, subscription=subscription, question_ids=[1], status=status, reason=reason)
    return run


EVERY_OUTCOME = [
    ("sent", ""),
    ("sent", ""),
    ("sent", ""),
    ("failed", "MessageRejected: Email address is not verified."),
    ("failed", reasons.UNKNOWN_REASON + "ReadTimeoutError"),
    ("deferred", reasons.QUOTA_REASON),
    ("deferred", reasons.QUOTA_REASON),
    ("skipped", "address suppressed"),
    ("skipped", "address suppressed"),
    ("skipped", "unsubscribed before the send"),
]


def test_the_subject_counts_every_outcome_and_the_body_lists_each_reason_with_its_count():
    run = finished_run(EVERY_OUTCOME)

    assert alerts.send_run_report(run_id=run.id, now=NOW) == 1

    [report] = mail.outbox
    assert report.to == [ADMIN]
    assert report.subject == "DailyQ send 2026-12-01: 3 sent, 1 failed, 1 fate unknown, 2 deferred, 3 skipped"
    body = report.body
    failed = body.split("Failed, by reason:")[1].split("\n\n")[0]
    assert sorted(failed.strip().splitlines()) == [  # equal counts: in the database's order of the reasons
        f"- 1 {TIMES} MessageRejected: Email address is not verified.",
        f"- 1 {TIMES} {reasons.UNKNOWN_REASON}ReadTimeoutError",
    ]
    deferred = body.split("Deferred, by reason:")[1].split("\n\n")[0]
    assert deferred.strip().splitlines() == [f"- 2 {TIMES} {reasons.QUOTA_REASON}"]
    skipped = body.split("Skipped, by reason:")[1].split("\n\n")[0]
    assert skipped.strip().splitlines() == [
        f"- 2 {TIMES} address suppressed",
        f"- 1 {TIMES} unsubscribed before the send",
    ]
    [(html, _mimetype)] = report.alternatives
    assert f"2 {TIMES} address suppressed" in html and f"2 {TIMES} {reasons.QUOTA_REASON}" in html


def test_a_run_without_unknowns_says_so_in_a_shorter_subject():
    run = finished_run([("sent", ""), ("deferred", reasons.QUOTA_REASON)])
    alerts.send_run_report(run_id=run.id, now=NOW)
    [report] = mail.outbox
    assert report.subject == "DailyQ send 2026-12-01: 1 sent, 0 failed, 1 deferred, 0 skipped"
    assert "Failed, by reason" not in report.body and "Skipped, by reason" not in report.body


def test_reasons_past_the_listed_ones_are_summed_in_one_line(settings):
    many = [("failed", f"error {n}") for n in range(alerts.REPORT_REASONS + 3)]
    run = finished_run(many)
    alerts.send_run_report(run_id=run.id, now=NOW)
    failed = mail.outbox[0].body.split("Failed, by reason:")[1].split("\n\n")[0].strip().splitlines()
    assert len(failed) == alerts.REPORT_REASONS + 1
    assert failed[-1] == f"- 3 {TIMES} 3 other reasons"


def asked_at(moment: datetime, subscriber: Subscriber) -> None:
    """Move a subscriber's sign-up requests to `moment` (created_at is set to the wall clock on create)."""
    Verification.objects.filter(subscriber=subscriber).update(created_at=moment)


def seed_people():
    """A day of readers: joins, a confirmation, leavers, a suppressed reader, and the SES feedback of a week."""
    since, until = NOW - timedelta(days=1), NOW
    inside, before = until - timedelta(hours=3), since - timedelta(days=3)
    # Long-standing readers: one in both categories (one person), one weekly, one suppressed, one bounced out.
    make_subscriber("both@example.org", categories=["backend", "frontend"])
    make_subscriber("weekly@example.org", frequency="weekly")
    make_subscriber("suppressed@example.org")
    Suppression.objects.create(email="suppressed@example.org", reason=Suppression.Reason.BOUNCE)
    # Confirmed inside the window, in both categories: new too (asked inside the window).
    newcomer = make_subscriber("new@example.org", categories=["backend", "frontend"], activated_at=inside)
    Verification.objects.create(
        subscriber=newcomer, categories=["backend", "frontend"], frequency="daily", language="ko"
    )
    asked_at(inside, newcomer)
    # Asked inside the window, not confirmed yet: new only.
    pending = Subscriber.objects.create(email="pending@example.org")
    Verification.objects.create(subscriber=pending, categories=["frontend"], frequency="weekly", language="ko")
    asked_at(inside, pending)
    # Asked before the window: not new today.
    old = Subscriber.objects.create(email="old@example.org")
    Verification.objects.create(subscriber=old, categories=["backend"], frequency="daily", language="ko")
    asked_at(before, old)
    # Left inside the window: one left a category, one left altogether; one left before it.
    make_subscriber("leaver@example.org", categories=["backend", "frontend"])
    Subscription.objects.filter(subscriber__email="leaver@example.org", category="frontend").update(
        is_active=False, deactivated_at=inside
    )
    gone = make_subscriber("gone@example.org", frequency="weekly")
    gone.subscriptions.update(is_active=False, deactivated_at=inside)
    Subscriber.objects.filter(id=gone.id).update(status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=inside)
    earlier = make_subscriber("earlier@example.org")
    earlier.subscriptions.update(is_active=False, deactivated_at=before)
    # A week of mail: 40 sent, 3 hard bounces (7.5%: review), 1 complaint (2.5%: at risk); and older mail that no
    # longer counts.
    run = SendRun.objects.create(day=DAY - timedelta(days=3), cutoff=before, status=SendRun.Status.DONE)
    old_run = SendRun.objects.create(day=DAY - timedelta(days=20), cutoff=before, status=SendRun.Status.DONE)
    feedback = ["bounced"] * 3 + ["complained"] + [""] * 36
    Delivery.objects.bulk_create(
        [Delivery(run=run, status="sent", sent_at=until - timedelta(days=6), feedback=f) for f in feedback]
        + [Delivery(run=old_run, status="sent", sent_at=until - timedelta(days=8), feedback="bounced")]
    )
    return since, until


def test_the_summary_counts_people_per_category_and_frequency_and_rates_of_the_last_seven_days():
    since, until = seed_people()

    summary = operator_summary(since=since, until=until)

    assert summary.rows[("backend", "daily")] == PeopleCounts(new=1, confirmed=1, unsubscribed=0, active=3)
    assert summary.rows[("frontend", "daily")] == PeopleCounts(new=1, confirmed=1, unsubscribed=1, active=2)
    assert summary.rows[("backend", "weekly")] == PeopleCounts(new=0, confirmed=0, unsubscribed=1, active=1)
    assert summary.rows[("frontend", "weekly")] == PeopleCounts(new=1, confirmed=0, unsubscribed=0, active=0)
    # People, not subscriptions: both@, new@ and leaver@ are counted once each.
    assert summary.total == PeopleCounts(new=2, confirmed=1, unsubscribed=2, active=4)

    assert (summary.bounces.count, summary.bounces.sample) == (3, 40)
    assert summary.bounces.state == "review"
    assert (summary.complaints.count, summary.complaints.sample) == (1, 40)
    assert summary.complaints.state == "at_risk"


def test_the_rates_are_judged_against_ses_thresholds():
    assert (ses.SES_REVIEW_BOUNCE_RATE, ses.SES_AT_RISK_BOUNCE_RATE) == (0.05, 0.10)
    assert (ses.SES_REVIEW_COMPLAINT_RATE, ses.SES_AT_RISK_COMPLAINT_RATE) == (0.001, 0.005)
    rate = SesRate
    assert rate(4, 100, 0.05, 0.10).state == "ok"
    assert rate(5, 100, 0.05, 0.10).state == "review"
    assert rate(10, 100, 0.05, 0.10).state == "at_risk"
    assert rate(0, 0, 0.05, 0.10).state == "ok"  # nothing sent: nothing to judge


def test_the_report_carries_the_summary_since_the_previous_report():
    since, until = seed_people()
    previous = SendRun.objects.get(day=DAY - timedelta(days=3))
    SendRun.objects.filter(id=previous.id).update(report_sent_at=since)
    run = finished_run([("sent", "")])

    alerts.send_run_report(run_id=run.id, now=until)

    body = mail.outbox[0].body
    assert "People from 2026-11-30 09:30 to 2026-12-01 09:30 KST" in body
    # finished_run added one more daily backend reader, active since long ago.
    assert "- Backend / daily: new 1, confirmed 1, unsubscribed 0, active 4\n" in body
    assert "- Everyone (each person once): new 2, confirmed 1, unsubscribed 2, active 5" in body
    assert re.search(
        r"- Bounces: 3 \(7\.50%\), SES reviews the account at this rate \(review at 5%, at risk at 10%\)", body
    )
    assert re.search(r"- Complaints: 1 \(2\.50%\), SES may pause sending at this rate", body)
    [(html, _mimetype)] = mail.outbox[0].alternatives
    assert 'id="summary-people"' in html and 'id="summary-rates"' in html

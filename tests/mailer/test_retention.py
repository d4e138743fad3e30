"""Retention (mailer/retention.py): purge_expired with passed-in times, its command, task and beat entry."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from mailer import retention
from mailer.models import Delivery, SendRun, SESEvent
from mailservice.celery import app
from subscriptions.models import Verification
from tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 12:00 in Seoul


def run_on(day: date) -> SendRun:
    return SendRun.objects.create(day=day, cutoff=datetime.combine(day, datetime.min.time(), UTC), status="done")


def delivery(run, subscription, **fields):
    return Delivery.objects.create(run=run, subscription=subscription, status="sent", **fields)


def event(sns_id: str, received_at: datetime, linked=None) -> SESEvent:
    row = SESEvent.objects.create(sns_message_id=sns_id, kind="delivery", payload={}, delivery=linked)
    SESEvent.objects.filter(id=row.id).update(received_at=received_at)  # auto_now_add: set it afterwards
    return row


def verification(subscriber, *, created, **dates) -> Verification:
    row = Verification.objects.create(subscriber=subscriber, categories=["backend"], frequency="daily", language="ko")
    Verification.objects.filter(id=row.id).update(created_at=created, **dates)
    return row


def test_purge_keeps_what_is_inside_each_retention_and_deletes_the_rest(settings):
    settings.DELIVERY_RETENTION_DAYS = 400
    settings.SES_EVENT_RETENTION_DAYS = 30
    settings.VERIFICATION_RETENTION_DAYS = 7
    reader = make_subscriber("reader@example.org")
    subscription = reader.subscriptions.get()
    today = timezone.localdate(NOW)
    old_run, edge_run = run_on(today - timedelta(days=401)), run_on(today - timedelta(days=400))
    old = delivery(old_run, subscription)
    edge = delivery(edge_run, subscription)
    old_event = event("old", NOW - timedelta(days=31), linked=edge)
    young_event = event("young", NOW - timedelta(days=29), linked=old)
    live = verification(reader, created=NOW - timedelta(minutes=5), expires_at=NOW + timedelta(minutes=5))
    confirmed_long_ago = verification(reader, created=NOW - timedelta(days=9), confirmed_at=NOW - timedelta(days=8))
    confirmed_lately = verification(reader, created=NOW - timedelta(days=9), confirmed_at=NOW - timedelta(days=6))
    expired = verification(reader, created=NOW - timedelta(days=8), expires_at=NOW - timedelta(days=8))
    never_issued = verification(reader, created=NOW - timedelta(days=8), expires_at=None)
    revoked = verification(reader, created=NOW - timedelta(days=10), revoked_at=NOW - timedelta(days=7, minutes=1))

    report = retention.purge_expired(now=NOW)

    assert (report.deliveries, report.events, report.verifications) == (1, 1, 4)
    assert list(Delivery.objects.values_list("id", flat=True)) == [edge.id]
    assert list(SESEvent.objects.values_list("id", flat=True)) == [young_event.id]
    assert SESEvent.objects.get().delivery_id is None  # its delivery went; the event stays
    assert not SESEvent.objects.filter(id=old_event.id).exists()
    assert set(Verification.objects.values_list("id", flat=True)) == {live.id, confirmed_lately.id}
    assert not Verification.objects.filter(id__in=[confirmed_long_ago.id, expired.id, never_issued.id, revoked.id])
    # Runs stay, with their totals: the statistics of old days keep their row.
    assert SendRun.objects.count() == 2
    assert retention.purge_expired(now=NOW) == retention.PurgeReport(0, 0, 0)


def test_purge_deletes_in_chunks(settings, monkeypatch):
    monkeypatch.setattr(retention, "CHUNK", 2)
    reader = make_subscriber("many@example.org")
    for days in range(5):
        delivery(run_on(date(2024, 1, 1) + timedelta(days=days)), reader.subscriptions.get())
    assert retention.purge_expired(now=NOW).deliveries == 5
    assert not Delivery.objects.exists()


def test_purge_expired_command_and_task(settings, capsys):
    settings.DELIVERY_RETENTION_DAYS = 1
    reader = make_subscriber("cmd@example.org")
    delivery(run_on(date(2020, 1, 1)), reader.subscriptions.get())

    call_command("purge_expired")

    assert "Deleted 1 deliveries older than 1 days" in capsys.readouterr().out
    assert not Delivery.objects.exists()
    assert app.conf.beat_schedule["purge-expired"]["task"] == "mailer.tasks.purge_expired"
    from mailer.tasks import purge_expired as purge_expired_task

    assert purge_expired_task.apply().get() == {"deliveries": 0, "events": 0, "verifications": 0}


def test_defaults_are_400_400_and_7_days():
    assert retention.retention() == retention.Retention(400, 400, 7)

"""Celery doors to the mailer services. Each takes ids or plain values."""

from dataclasses import asdict
from datetime import date

from celery import shared_task
from django.utils import timezone

from mailer import alerts, bank_wraps, retention, schedule
from mailer.sending import announcements, batch, recovery, runs


def _backoff(task) -> int:
    return min(30 * 2**task.request.retries, 900)


@shared_task(bind=True, max_retries=8)
def start_daily_send(self, *, day: str | None = None) -> int | None:
    """A day's start as a task: today's send (in TIME_ZONE) unless a day is given.

    Beat itself ticks `check_send_schedule`, which reads the admin's schedule.

    A failed start (the database or SES's quota call unreachable) is tried
    again for about two hours, always for the same day; starting twice is
    harmless (runs.start_daily_send). The sweeper starts it too.
    """
    send_day = date.fromisoformat(day) if day else timezone.localdate()
    try:
        run = runs.start_daily_send(day=send_day)
    except Exception as exc:
        raise self.retry(exc=exc, kwargs={"day": send_day.isoformat()}, countdown=_backoff(self)) from exc
    return run.id if run else None


@shared_task(bind=True, max_retries=8)
def start_announcement(self, *, announcement_id: int) -> int:
    """An announcement's start (the admin's "send now"); starting twice is harmless."""
    try:
        return announcements.start_announcement(announcement_id=announcement_id).id
    except Exception as exc:
        raise self.retry(exc=exc, countdown=_backoff(self)) from exc


@shared_task
def start_due_announcements() -> list[int]:
    """Beat's tick, every minute: scheduled announcements start at their time."""
    return announcements.start_due_announcements(now=timezone.now())


# No autoretry: a batch records every delivery's outcome itself, and a
# redelivered batch (worker lost) finds its rows already claimed.
@shared_task
def send_delivery_batch(*, ids: list[int]) -> dict:
    return vars(batch.send_delivery_batch(ids=ids))


# Mail to admins is retried for the addresses not reached yet: nobody gets it twice.
@shared_task(bind=True, max_retries=5)
def send_run_report(self, *, run_id: int, to: list[str] | None = None) -> int:
    try:
        return alerts.send_run_report(run_id=run_id, to=to)
    except alerts.AdminMailFailed as exc:
        raise self.retry(exc=exc, kwargs={"run_id": run_id, "to": exc.unsent}, countdown=_backoff(self)) from exc


@shared_task(bind=True, max_retries=5)
def send_pause_alert(self, *, reason: str, to: list[str] | None = None) -> int:
    try:
        return alerts.send_pause_alert(reason=reason, to=to)
    except alerts.AdminMailFailed as exc:
        raise self.retry(exc=exc, kwargs={"reason": reason, "to": exc.unsent}, countdown=_backoff(self)) from exc


@shared_task
def sweep_expired_claims() -> dict:
    return asdict(recovery.sweep_sends())


@shared_task
def check_send_schedule() -> dict:
    """Beat's tick, every minute: today's run starts at the schedule's time (mailer/schedule.py)."""
    tick = schedule.check_send_schedule(now=timezone.now())
    return {"day": tick.day.isoformat(), "outcome": tick.outcome}


@shared_task(bind=True, max_retries=5)
def send_missed_day_alert(self, *, day: str, to: list[str] | None = None) -> int:
    try:
        return schedule.send_missed_day_alert(day=date.fromisoformat(day), to=to)
    except alerts.AdminMailFailed as exc:
        raise self.retry(exc=exc, kwargs={"day": day, "to": exc.unsent}, countdown=_backoff(self)) from exc


@shared_task
def purge_expired() -> dict:
    return asdict(retention.purge_expired())


@shared_task
def check_bank_wraps() -> list[int]:
    """Beat's daily check after the send: tell ADMINS ahead of readers starting a category again."""
    return [notice.id for notice in bank_wraps.check_bank_wraps(today=timezone.localdate())]


@shared_task(bind=True, max_retries=5)
def send_bank_wrap_notice(self, *, notice_id: int, to: list[str] | None = None) -> int:
    try:
        return bank_wraps.send_bank_wrap_notice(notice_id=notice_id, to=to)
    except alerts.AdminMailFailed as exc:
        raise self.retry(exc=exc, kwargs={"notice_id": notice_id, "to": exc.unsent}, countdown=_backoff(self)) from exc

"""The send schedule at work: beat's tick that starts each send day's run at
its time, a missed day noticed once, and the admin's doors to both.

Which days are send days and when each starts is one rule,
`selectors.send_start`; this module acts on it and writes nothing else down.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from mailer import alerts, selectors
from mailer.emails import absolute_url
from mailer.models import MissedDay, SendRun, SendSchedule
from mailer.sending import runs

logger = logging.getLogger(__name__)


class ScheduleError(Exception):
    """A schedule action that cannot be done, with the reason to show the admin."""


@dataclass(frozen=True)
class Tick:
    """What one check of the schedule did (for the task's result and the logs)."""

    day: date
    outcome: str  # "no send", "not yet", "running", "started", "missed", "started late"


def ensure_send_schedule() -> SendSchedule:
    """The schedule's one row, made from DAILY_SEND_HOUR/MINUTE the first time an admin opens it."""
    default_time = selectors.send_schedule().send_time
    schedule, _created = SendSchedule.objects.get_or_create(id=1, defaults={"send_time": default_time})
    return schedule


def check_send_schedule(*, now: datetime) -> Tick:
    """Beat's tick (every minute): start today's run once its send time has come.

    Until the send time plus MISSED_SEND_GRACE_MINUTES a start is on time (beat
    restarted at 07:03 still sends). After it, the day is missed: ADMINS are
    told once, and LATE_SEND_POLICY says whether it starts late now ("send") or
    waits for an admin's "send today's questions now" ("skip"). Starting twice
    is harmless (runs.start_daily_send), so two beats or a cron
    `send_daily` beside beat send nothing twice.
    """
    today = timezone.localdate(now)
    start = selectors.send_start(today)
    if start is None:
        return Tick(today, "no send")
    if now < start:
        return Tick(today, "not yet")
    if SendRun.objects.filter(kind=SendRun.Kind.DAILY, day=today).exists():
        return Tick(today, "running")
    if now < start + timedelta(minutes=settings.MISSED_SEND_GRACE_MINUTES):
        runs.start_daily_send(day=today)
        return Tick(today, "started")
    record_missed_day(day=today, scheduled_at=start, now=now)
    if settings.LATE_SEND_POLICY == "send":
        send_missed_day(day=today, now=now)
        return Tick(today, "started late")
    return Tick(today, "missed")


def record_missed_day(*, day: date, scheduled_at: datetime, now: datetime) -> bool:
    """Write `day` down as missed and queue the alert to ADMINS; False if it was already."""
    try:
        with transaction.atomic():
            MissedDay.objects.create(day=day, scheduled_at=scheduled_at, detected_at=now)
    except IntegrityError:  # noticed before (another tick): told once
        return False
    logger.error("send day %s missed: no run by %s", day, now)
    from mailer.tasks import send_missed_day_alert as send_missed_day_alert_task

    transaction.on_commit(lambda: send_missed_day_alert_task.delay(day=day.isoformat()))
    return True


def send_missed_day(*, day: date, now: datetime) -> SendRun:
    """Start a missed day's run late (the late policy, or an admin's button).

    Only on that day itself: a later day has a run of its own, and two runs
    on one morning would mail readers twice.
    """
    if day != timezone.localdate(now):
        raise ScheduleError(f"{day:%Y-%m-%d} is over: only today's questions can be sent now.")
    run = runs.start_daily_send(day=day)
    if run is None:
        raise ScheduleError(f"{day:%Y-%m-%d} is no longer a send day (see the send schedule).")
    MissedDay.objects.filter(day=day, started_at__isnull=True).update(started_at=now)
    return run


def send_missed_day_alert(*, day: date, to: list[str] | None = None) -> int:
    """Tell ADMINS (or `to`, on a retry) that `day`'s send did not start in time, once."""
    return alerts.mail_admins_once(
        "send_missed",
        unclaimed=MissedDay.objects.filter(day=day, alerted_at__isnull=True),
        field="alerted_at",
        context=lambda: _missed_day_context(MissedDay.objects.get(day=day)),
        to=to,
    )


def _missed_day_context(missed: MissedDay) -> dict:
    return {
        "day": missed.day,
        "scheduled_at": timezone.localtime(missed.scheduled_at),
        "detected_at": timezone.localtime(missed.detected_at),
        "send_late": settings.LATE_SEND_POLICY == "send",
        "admin_url": absolute_url(reverse("admin:mailer_missedday_changelist")),
    }

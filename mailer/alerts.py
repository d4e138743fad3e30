"""Mails to the admins: a finished run's report (with the operator's summary) and the pause alert."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy

from mailer import selectors
from mailer.emails import absolute_url
from mailer.gate import send_email
from mailer.models import Delivery, SendRun
from mailer.operator_summary import OperatorSummary, operator_summary
from mailer.sending.reasons import UNKNOWN_REASON
from subscriptions import tracks
from subscriptions.models import Frequency


class AdminMailFailed(Exception):
    """A mail to admins stopped at an address; `unsent` are the ones still to mail, that one first."""

    def __init__(self, unsent: list[str]):
        super().__init__(f"mail to {len(unsent)} admin address(es) not sent")
        self.unsent = unsent


def mail_admins(template: str, context: dict, to: list[str]) -> int:
    """Mail each of `to` in turn (an operator's mail, in the site's language)."""
    language = settings.LANGUAGE_CODE
    sent = 0
    for index, address in enumerate(to):
        try:
            sent += send_email(kind=template, to=address, language=language, context=context).sent
        except Exception as exc:
            raise AdminMailFailed(to[index:]) from exc
    return sent


def mail_admins_once(
    template: str, *, unclaimed: QuerySet, field: str, context: Callable[[], dict], to: list[str] | None, now=None
) -> int:
    """Mail ADMINS about one event, once: the first call claims it by setting `field` on the row of
    `unclaimed` (which must not have it yet); `to` is for a retry, the admins a first try did not reach."""
    if to is None:
        if not settings.ADMINS:
            return 0
        if not unclaimed.update(**{field: now or timezone.now()}):
            return 0  # told before
        to = [address for _name, address in settings.ADMINS]
    try:
        built = context()
    except Exception as exc:  # claimed but not written: a retry must still send it
        raise AdminMailFailed(to) from exc
    return mail_admins(template, built, to)


def send_run_report(*, run_id: int, to: list[str] | None = None, now: datetime | None = None) -> int:
    """Mail ADMINS a report of a finished run, once, with the operator's summary; returns how many were mailed.

    `to` is for a retry: the admins a first try did not reach (AdminMailFailed).
    The summary covers the time since the report before this one (a day
    before `now` for the first), so no day is counted twice or missed.
    """
    now = now or timezone.now()
    return mail_admins_once(
        "run_report",
        unclaimed=SendRun.objects.filter(id=run_id, report_sent_at__isnull=True),
        field="report_sent_at",
        context=lambda: _run_report_context(SendRun.objects.get(id=run_id)),
        to=to,
        now=now,
    )


# How many distinct reasons of one outcome a report lists; the rest are summed up in one line.
REPORT_REASONS = 8


def _run_report_context(run: SendRun) -> dict:
    progress = selectors.run_progress(run=run)
    unknown = run.deliveries.filter(status=Delivery.Status.FAILED, reason__startswith=UNKNOWN_REASON).count()
    # Every outcome once, so that the numbers add up to the run's deliveries.
    counts = {
        "sent": progress[Delivery.Status.SENT],
        "failed": progress[Delivery.Status.FAILED] - unknown,
        "unknown": unknown,
        "deferred": progress[Delivery.Status.DEFERRED],
        "skipped": progress[Delivery.Status.SKIPPED],
        "unsettled": progress[Delivery.Status.PENDING] + progress[Delivery.Status.SENDING],
    }
    reported_at = run.report_sent_at or timezone.now()
    previous = (
        SendRun.objects.filter(report_sent_at__lt=reported_at).exclude(id=run.id).order_by("-report_sent_at").first()
    )
    return {
        "run": run,
        "counts": counts,
        "reasons": [_reasons(run, status, label) for status, label in REASON_SECTIONS if progress[status]],
        **_summary_context(
            operator_summary(
                since=previous.report_sent_at if previous else reported_at - timedelta(days=1), until=reported_at
            )
        ),
        "admin_url": absolute_url(reverse("admin:mailer_sendrun_change", args=[run.id])),
        # To the second: microseconds are noise in a report.
        "duration": timedelta(seconds=round(run.duration.total_seconds())) if run.duration is not None else "",
    }


REASON_SECTIONS = [
    (Delivery.Status.FAILED, gettext_lazy("Failed, by reason")),
    (Delivery.Status.DEFERRED, gettext_lazy("Deferred, by reason")),
    (Delivery.Status.SKIPPED, gettext_lazy("Skipped, by reason")),
]


def _reasons(run: SendRun, status: str, label) -> dict:
    """The run's deliveries of `status` by reason, the most common first; past REPORT_REASONS, summed up."""
    rows = list(
        run.deliveries.filter(status=status).values_list("reason").annotate(n=Count("id")).order_by("-n", "reason")
    )
    rest = rows[REPORT_REASONS:]
    return {
        "label": label,
        "rows": [(reason or "—", n) for reason, n in rows[:REPORT_REASONS]],
        "other_kinds": len(rest),
        "other_count": sum(n for _reason, n in rest),
    }


FREQUENCY_SHORT = {Frequency.DAILY: gettext_lazy("daily"), Frequency.WEEKLY: gettext_lazy("weekly")}
RATE_STATES = {
    "ok": gettext_lazy("below SES's review threshold"),
    "review": gettext_lazy("SES reviews the account at this rate"),
    "at_risk": gettext_lazy("SES may pause sending at this rate"),
}


def _summary_context(summary: OperatorSummary) -> dict:
    return {
        "summary": summary,
        "summary_rows": [
            (tracks.label(category), FREQUENCY_SHORT.get(frequency, frequency), row)
            for (category, frequency), row in summary.rows.items()
        ],
        "summary_rates": [
            {
                "label": label,
                "count": rate.count,
                "percent": 100 * rate.rate,
                "review": 100 * rate.review,
                "at_risk": 100 * rate.at_risk,
                "state": rate.state,
                "state_label": RATE_STATES[rate.state],
            }
            for label, rate in (
                (gettext_lazy("Bounces"), summary.bounces),
                (gettext_lazy("Complaints"), summary.complaints),
            )
        ],
    }


def send_pause_alert(*, reason: str, to: list[str] | None = None) -> int:
    """Tell ADMINS (or `to`, on a retry) that the daily send is paused; returns how many were mailed."""
    to = [address for _name, address in settings.ADMINS] if to is None else to
    context = {"reason": reason, "admin_url": absolute_url(reverse("admin:mailer_sendingstate_changelist"))}
    return mail_admins("sending_paused", context, to)

"""Mails to the admins: a finished run's report and the pause alert."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from mailer import selectors
from mailer.emails import absolute_url
from mailer.gate import send_email
from mailer.models import Delivery, SendRun
from mailer.sending.reasons import UNKNOWN_REASON


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


def send_run_report(*, run_id: int, to: list[str] | None = None) -> int:
    """Mail ADMINS a short report of a finished run, once; returns how many were mailed.

    `to` is for a retry: the admins a first try did not reach (AdminMailFailed).
    """
    if to is None:
        if not settings.ADMINS:
            return 0
        if not SendRun.objects.filter(id=run_id, report_sent_at__isnull=True).update(report_sent_at=timezone.now()):
            return 0  # reported before
        to = [address for _name, address in settings.ADMINS]
    try:
        run = SendRun.objects.get(id=run_id)
        context = {
            "run": run,
            "progress": selectors.run_progress(run=run),
            "unknown": run.deliveries.filter(status=Delivery.Status.FAILED, reason__startswith=UNKNOWN_REASON).count(),
            "failures": list(
                run.deliveries.filter(status=Delivery.Status.FAILED)
                .values_list("reason")
                .annotate(n=Count("id"))
                .order_by("-n")[:5]
            ),
            "admin_url": absolute_url(reverse("admin:mailer_sendrun_change", args=[run.id])),
            # To the second: microseconds are noise in a report.
            "duration": timedelta(seconds=round(run.duration.total_seconds())) if run.duration is not None else "",
        }
    except Exception as exc:  # claimed but not written: a retry must still send it
        raise AdminMailFailed(to) from exc
    return mail_admins("run_report", context, to)


def send_pause_alert(*, reason: str, to: list[str] | None = None) -> int:
    """Tell ADMINS (or `to`, on a retry) that the daily send is paused; returns how many were mailed."""
    to = [address for _name, address in settings.ADMINS] if to is None else to
    context = {"reason": reason, "admin_url": absolute_url(reverse("admin:mailer_sendingstate_changelist"))}
    return mail_admins("sending_paused", context, to)

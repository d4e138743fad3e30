"""Recovery: leases, the sweep of lost workers' claims, unknown deliveries, stalled runs."""

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from mailer import selectors
from mailer.journal import Outcome, discard_journal, prune_journals, read_journal
from mailer.models import Delivery, Question, SendRun
from mailer.sending.batch import record_delivered_reviews, record_outcomes
from mailer.sending.bulk_sql import bulk_set
from mailer.sending.reasons import CONFIRMED_REASON, RESEND_REASON, UNKNOWN_REASON
from mailer.sending.runs import enqueue_pending_deliveries, finish_run_if_complete, start_daily_send
from subscriptions.models import Subscription

logger = logging.getLogger(__name__)


def claim_lease() -> timedelta:
    """How long a claimed (sending) row may stay so: past the hard time limit
    of the task that claimed it, that task is certainly gone."""
    return timedelta(seconds=settings.DELIVERY_CLAIM_LEASE_SECONDS or settings.CELERY_TASK_TIME_LIMIT + 60)


@dataclass
class SweepReport:
    """What one sweep did (sweep_sends)."""

    recovered: int = 0  # outcomes of lost workers' mails, written from their journals
    unknown: int = 0  # listed as fate unknown: being sent when their worker stopped, or no journal
    returned: int = 0  # never started by their lost worker: back on the queue
    confirmed: int = 0  # of unknown fate, shown sent by SES's Send event
    resent: int = 0  # of unknown fate, no Send event within the grace period: queued again
    runs_requeued: int = 0

    @property
    def swept(self) -> int:
        """Rows taken back from lost workers."""
        return self.recovered + self.unknown + self.returned


def sweep_sends() -> SweepReport:
    """What beat runs every five minutes (and `manage.py sweep_sends` by hand or
    from cron): settle lost workers' claims, confirm or resend what is of
    unknown fate (with Send events), then queue stalled runs again."""
    report = sweep_expired_claims()
    report.confirmed = confirm_sent_deliveries()
    report.resent = resend_unknown_deliveries()
    report.runs_requeued = requeue_stalled_runs()
    return report


def sweep_expired_claims() -> SweepReport:
    """Settle the deliveries whose worker died between claiming and recording.

    What the claim's journal holds (mailer/journal.py) is written as the
    batch would have written it, cursor moves included. A batch sends its
    rows in id order and journals each outcome before the next send, so of
    the rows it did not journal the first was being sent when it died: fate
    unknown (SES may or may not have it; confirm_sent_deliveries and
    resend_unknown_deliveries take it from there), and the ones after it
    were never started: they go back to the queue. Without a journal (Redis
    lost it) every row is of unknown fate. Beat runs this every few minutes.
    """
    report = SweepReport()
    expired = (
        Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=timezone.now() - claim_lease())
        .order_by("claim", "id")
        .values_list("claim", "id", "run_id", "subscription_id", "attempts")
    )
    claims: dict[str, list[tuple[int, int, int, int]]] = {}
    for claim, *row in expired:
        claims.setdefault(claim, []).append(tuple(row))
    run_ids = set()
    for claim, rows in claims.items():
        outcomes = _settle_lost_claim(
            claim, [(delivery_id, subscription_id, attempts) for delivery_id, _run, subscription_id, attempts in rows]
        )
        still_ours = record_outcomes(outcomes, claim=claim)
        discard_journal(claim)
        settled = [o for o in outcomes if o.id in still_ours]
        unknown = sum(1 for o in settled if o.reason.startswith(UNKNOWN_REASON))
        returned = [o.id for o in settled if o.status == Delivery.Status.PENDING]
        report.unknown += unknown
        report.returned += len(returned)
        report.recovered += len(settled) - unknown - len(returned)
        if returned:
            from mailer.tasks import send_delivery_batch as send_delivery_batch_task

            transaction.on_commit(lambda ids=returned: send_delivery_batch_task.delay(ids=ids))
        run_ids.update(run_id for _id, run_id, _s, _a in rows)
    for run_id in run_ids:
        finish_run_if_complete(run_id=run_id)
    prune_journals()
    if report.swept:
        logger.warning(
            "claims of lost workers: %d outcomes recovered from their journals, %d listed as fate unknown, "
            "%d never started and queued again",
            report.recovered, report.unknown, report.returned,
        )  # fmt: skip
    return report


def _settle_lost_claim(claim: str, rows: list[tuple[int, int, int]]) -> list[Outcome]:
    """The outcomes of a lost claim's rows (delivery, subscription, attempts; in id order)."""
    journal = read_journal(claim)
    if journal is None:
        reason = UNKNOWN_REASON + "the worker that claimed it stopped before recording"
        return [Outcome(i, s, Delivery.Status.FAILED, reason, attempts=a) for i, s, a in rows]
    last = max((i for i, _s, _a in rows if i in journal), default=0)
    outcomes, in_flight_seen = [], False
    for delivery_id, subscription_id, attempts in rows:
        if delivery_id in journal:
            outcomes.append(journal[delivery_id])
        elif delivery_id < last or not in_flight_seen:
            in_flight_seen = in_flight_seen or delivery_id > last
            reason = UNKNOWN_REASON + "the worker stopped while sending it"
            outcomes.append(Outcome(delivery_id, subscription_id, Delivery.Status.FAILED, reason, attempts=attempts))
        else:
            outcomes.append(Outcome(delivery_id, subscription_id, Delivery.Status.PENDING, attempts=attempts))
    return outcomes


# Deliveries whose fate is unknown: listed so, or queued again for want of a Send event.
_UNRESOLVED = Q(status=Delivery.Status.FAILED, reason__startswith=UNKNOWN_REASON) | Q(
    status=Delivery.Status.PENDING, reason__startswith=RESEND_REASON
)


LAST_SEND_EVENT_KEY = "ses:last-send-event"


def _recent_runs():
    """The runs whose unknown deliveries a Send event may still settle."""
    since = timezone.now() - max(timedelta(days=2), 2 * timedelta(seconds=settings.SEND_EVENT_GRACE_SECONDS))
    return SendRun.objects.filter(started_at__gte=since).values("id")


def confirm_sent_deliveries(*, ids: list[int] | None = None) -> int:
    """Mark sent the deliveries of unknown fate that SES's Send event showed it accepted.

    The delivery takes the Send event's message id and time, and the cursor
    moves as for any sent mail, unless a later run already has a delivery for
    the subscription (it carries the same question, and its outcome moves
    the cursor). Only rows still unresolved are written, so a repeat changes
    nothing. `ids`: those deliveries only; else the recent runs'. Returns how
    many were confirmed.
    """
    rows = Delivery.objects.filter(_UNRESOLVED).exclude(accepted_message_id="")
    rows = rows.filter(id__in=ids) if ids is not None else rows.filter(run__in=_recent_runs())
    found = list(
        rows.values_list(
            "id", "run_id", "run__day", "subscription_id", "question_ids", "accepted_message_id", "accepted_at"
        )
    )
    if not found:
        return 0
    positions = dict(Question.objects.filter(id__in={q for row in found for q in row[4]}).values_list("id", "position"))
    confirmed, run_ids = 0, set()
    for delivery_id, run_id, day, subscription_id, question_ids, message_id, accepted_at in found:
        with transaction.atomic():
            written = Delivery.objects.filter(_UNRESOLVED, id=delivery_id).update(
                status=Delivery.Status.SENT, reason=CONFIRMED_REASON, ses_message_id=message_id,
                sent_at=accepted_at, claim="",
            )  # fmt: skip
            if not written:
                continue
            confirmed += 1
            run_ids.add(run_id)
            record_delivered_reviews({delivery_id: subscription_id})
            picked = [positions[q] for q in question_ids if q in positions]
            later = Delivery.objects.filter(
                subscription_id=subscription_id, run__kind=SendRun.Kind.DAILY, run__day__gt=day
            ).exists()
            if picked and not later:
                bulk_set(
                    Subscription, {subscription_id: (picked[-1] + 1, accepted_at)}, ["next_position", "last_sent_at"]
                )
    for run_id in run_ids:
        finish_run_if_complete(run_id=run_id)
    if confirmed:
        logger.info("%d deliveries of unknown fate confirmed sent by SES's Send event", confirmed)
    return confirmed


def resend_unknown_deliveries() -> int:
    """Queue again the deliveries of unknown fate whose Send event never came.

    Only with SES_SEND_EVENTS (the configuration set publishes Send events to
    the webhook), SEND_EVENT_GRACE_SECONDS after the claim, and only while
    Send events arrive: one came after the claim's lease ended, when its
    worker was certainly gone. Otherwise the silence may be the event
    pipeline's, and the delivery waits for an admin. A
    subscription a later run already mails is left out (that mail carries
    the same question). A Send event arriving before the new claim still
    settles it as sent; one arriving after is a second mail. Returns how many
    were queued again.
    """
    if not settings.SES_SEND_EVENTS:
        return 0
    last_event = cache.get(LAST_SEND_EVENT_KEY)
    if last_event is None:
        return 0
    claimed_before = min(
        timezone.now() - timedelta(seconds=settings.SEND_EVENT_GRACE_SECONDS),
        datetime.fromtimestamp(last_event, UTC) - claim_lease(),
    )
    later = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"), run__kind=SendRun.Kind.DAILY, run__day__gt=OuterRef("run__day")
    )
    unknown = Delivery.objects.filter(
        status=Delivery.Status.FAILED, reason__startswith=UNKNOWN_REASON, accepted_message_id=""
    )
    found = list(
        unknown.filter(run__in=_recent_runs(), claimed_at__lt=claimed_before)
        .exclude(Q(run__kind=SendRun.Kind.DAILY) & Exists(later))
        .values_list("id", "run_id")
    )
    if not found:
        return 0
    from mailer.tasks import send_delivery_batch as send_delivery_batch_task

    with transaction.atomic():
        resent = unknown.filter(id__in=[i for i, _run in found]).update(
            status=Delivery.Status.PENDING, reason=RESEND_REASON + f"{settings.SEND_EVENT_GRACE_SECONDS} s", claim=""
        )
        runs: dict[int, list[int]] = {}
        for delivery_id, run_id in found:
            runs.setdefault(run_id, []).append(delivery_id)
        SendRun.objects.filter(id__in=runs, status=SendRun.Status.DONE).update(
            status=SendRun.Status.SENDING, finished_at=None
        )
        for ids in runs.values():
            transaction.on_commit(lambda ids=ids: send_delivery_batch_task.delay(ids=ids))
    if resent:
        logger.warning("%d deliveries of unknown fate had no Send event in time: sent again", resent)
    return resent


def requeue_stalled_runs(*, quiet_for: timedelta | None = None, today: date | None = None) -> int:
    """Queue again the pending deliveries of runs that stopped moving, and start
    today's run again if its start failed.

    Their batch tasks can be lost with the broker's memory (a Redis restart
    without persistence). Queueing a pending row twice is harmless: only one
    claim can take it. Beat runs this with the sweeper.
    """
    quiet_for = claim_lease() if quiet_for is None else quiet_for
    since = timezone.now() - quiet_for
    requeued = 0
    # Today's run whose start failed (its deliveries were rolled back, it stays
    # created): start it again. Earlier days' are left to the admin.
    today = today or timezone.localdate()
    for run in SendRun.objects.filter(
        kind=SendRun.Kind.DAILY, status=SendRun.Status.CREATED, day=today, created_at__lt=since
    ):
        logger.warning("send run %s did not start: starting it again", run.day)
        try:
            start_daily_send(day=run.day)
        except Exception:
            logger.exception("send run %s: the start failed again", run.day)
            continue
        requeued += 1
    for run in SendRun.objects.filter(status=SendRun.Status.SENDING, started_at__lt=since):
        deliveries = run.deliveries
        if not deliveries.filter(status=Delivery.Status.PENDING).exists():
            finish_run_if_complete(run_id=run.id)  # a safety net: settled runs end
            continue
        if deliveries.filter(claimed_at__gte=since).exists():
            continue  # still moving
        if selectors.sending_paused():
            continue
        logger.warning("send run %s stalled with pending deliveries: queueing them again", run.day)
        enqueue_pending_deliveries(run_id=run.id)
        requeued += 1
    return requeued

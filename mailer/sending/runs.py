"""A day's send run: plan, start, fan out to the workers, finish, defer, retry, pause and resume."""

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from mailer import pacing, selectors
from mailer.models import Delivery, SendingState, SendRun
from mailer.sending.bulk_sql import insert_deliveries, refresh_delivery_statistics
from mailer.sending.reasons import QUOTA_REASON, SUPERSEDED_REASON
from mailer.ses import account_status
from subscriptions.models import Frequency
from subscriptions.selectors import due_reviews

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendPlan:
    """What a send day holds, without writing anything (`send_daily --dry-run`)."""

    day: date
    send_day: bool
    due: dict[str, int]  # "daily/backend" -> count
    without_questions: list[str]

    @property
    def total(self) -> int:
        return sum(self.due.values())


def send_cutoff(day: date) -> datetime:
    return selectors.scheduled_start(day)


def plan_daily_send(*, day: date) -> SendPlan:
    due = selectors.due_subscriptions(day=day, cutoff=send_cutoff(day))
    counts = {
        f"{frequency}/{category}": n
        for frequency, category, n in due.values_list("subscriber__frequency", "category")
        .annotate(n=Count("id"))
        .order_by("subscriber__frequency", "category")
    }
    sequences = selectors.question_sequences()
    missing = sorted({key.split("/")[1] for key in counts} - {c for c, s in sequences.items() if s.ids})
    return SendPlan(day=day, send_day=selectors.is_send_day(day), due=counts, without_questions=missing)


def start_daily_send(*, day: date) -> SendRun | None:
    """Create `day`'s run and its deliveries, then fan them out to the workers.

    Safe to call any number of times, at once or in turn (beat and cron both
    firing, an operator retrying): the run is unique per day, a delivery is
    unique per run and subscription, and only the call that moves the run
    from created to sending enqueues anything. Returns None on a day with no
    send (Saturday, Sunday).
    """
    if not selectors.is_send_day(day):
        return None
    try:
        with transaction.atomic():
            run, _created = SendRun.objects.get_or_create(
                kind=SendRun.Kind.DAILY, day=day, defaults={"cutoff": send_cutoff(day)}
            )
    except IntegrityError:  # a concurrent trigger created it first
        run = SendRun.objects.get(kind=SendRun.Kind.DAILY, day=day)

    with transaction.atomic():
        # One trigger at a time past this line; the others wait, then find it sending.
        run = SendRun.objects.select_for_update().get(id=run.id)
        if run.status != SendRun.Status.CREATED:
            return run
        total = _create_deliveries(run)
        superseded_runs = _supersede_older_deliveries(run)
        open_run(run, total=total)
    logger.info("send run %s: %d deliveries", run.day, total)
    # A run whose deliveries were all settled at creation (skipped) is done now,
    # and so may be the older runs this one took the unsent rows of.
    for run_id in [run.id, *superseded_runs]:
        finish_run_if_complete(run_id=run_id)
    return run


def open_run(run: SendRun, *, total: int) -> None:
    """Move a run (locked, its deliveries created) to sending: cap at the quota, queue its batches on commit.

    Every kind of run (a day's questions, an announcement) opens here.
    """
    _cap_at_quota(run)
    refresh_delivery_statistics()
    run.status = SendRun.Status.SENDING
    run.started_at = timezone.now()
    run.total = total
    run.save(update_fields=["status", "started_at", "total"])
    transaction.on_commit(lambda: enqueue_pending_deliveries(run_id=run.id))


def _create_deliveries(run: SendRun) -> int:
    """One delivery row per due subscription, with the question(s) it will carry and the reviews below them."""
    sequences = selectors.question_sequences()
    due = (
        selectors.due_subscriptions(day=run.day, cutoff=run.cutoff)
        .values_list("id", "category", "next_position", "subscriber__frequency")
        .order_by("id")
    )
    chunk: list[tuple[int, list[int], bool]] = []  # subscription, new questions, weekly
    for subscription_id, category, next_position, frequency in due.iterator(chunk_size=5000):
        weekly = frequency == Frequency.WEEKLY
        count = settings.WEEKLY_DIGEST_SIZE if weekly else 1
        picked = [question_id for _position, question_id in sequences[category].next_after(next_position, count)]
        chunk.append((subscription_id, picked, weekly))
        if len(chunk) >= 5000:
            insert_deliveries(run, _delivery_rows(run, chunk))
            chunk = []
    if chunk:
        insert_deliveries(run, _delivery_rows(run, chunk))
    return Delivery.objects.filter(run=run).count()


def _delivery_rows(run: SendRun, chunk: list[tuple[int, list[int], bool]]) -> list[tuple]:
    """The rows of a chunk of subscriptions: a daily mail carries the oldest due review, a weekly digest all.

    The reviews are read in one query per chunk, leaving out each mail's new questions.
    """
    reviews = due_reviews(
        subscription_ids=[subscription_id for subscription_id, picked, _w in chunk if picked],
        day=run.day,
        excluding={subscription_id: picked for subscription_id, picked, _w in chunk if picked},
    )
    rows = []
    for subscription_id, picked, weekly in chunk:
        if not picked:
            rows.append((subscription_id, [], [], Delivery.Status.SKIPPED, "no published questions in this category"))
            continue
        due = reviews.get(subscription_id, [])
        rows.append((subscription_id, picked, due if weekly else due[:1], Delivery.Status.PENDING, ""))
    return rows


def _supersede_older_deliveries(run: SendRun) -> list[int]:
    """Skip the unsent (pending, deferred) rows of earlier runs for the subscriptions `run` mails.

    A subscription's cursor moves only when a mail is sent, so an earlier
    run's unsent row (left by a pause, a quota stop, a backlog) carries the
    same question as `run`'s row: sending both would mail it twice. The
    newer row is the one sent. Returns the ids of the runs touched.
    """
    older = Delivery.objects.filter(
        run__kind=SendRun.Kind.DAILY,
        run__day__lt=run.day,
        status__in=[Delivery.Status.PENDING, Delivery.Status.DEFERRED],
        subscription_id__in=Delivery.objects.filter(run=run).values("subscription_id"),
    )
    run_ids = list(older.order_by().values_list("run_id", flat=True).distinct())
    if run_ids:
        count = older.update(status=Delivery.Status.SKIPPED, reason=f"{SUPERSEDED_REASON}{run.day.isoformat()}")
        logger.info("send run %s: %d unsent deliveries of earlier runs superseded", run.day, count)
    return run_ids


def _cap_at_quota(run: SendRun) -> int:
    """Defer the deliveries beyond what is left of SES's 24-hour quota.

    They are never pushed into SES to fail; the admin's retry (or the next
    day's run, which picks up the same questions) sends them later.
    """
    if not settings.SES_QUOTA_CAP:
        return 0
    remaining = account_status(refresh=True).remaining_24_hours
    pending = Delivery.objects.filter(run=run, status=Delivery.Status.PENDING).order_by("id")
    over = list(pending.values_list("id", flat=True)[remaining:])
    if over:
        logger.warning("send run %s: %d deliveries deferred, quota left %d", run.day, len(over), remaining)
        for start in range(0, len(over), 5000):
            Delivery.objects.filter(id__in=over[start : start + 5000]).update(
                status=Delivery.Status.DEFERRED, reason=QUOTA_REASON
            )
    return len(over)


def batch_size() -> int:
    """SEND_BATCH_SIZE, or fewer when the send rate is low (the sandbox sends
    about one mail a second): a batch must finish well within a task's soft
    time limit."""
    try:
        rate = pacing.send_rate()
    except Exception:  # SES unreachable: the batches will find out and record it
        return settings.SEND_BATCH_SIZE
    fits = int(rate * settings.CELERY_TASK_SOFT_TIME_LIMIT / 3)
    return max(1, min(settings.SEND_BATCH_SIZE, fits))


def enqueue_pending_deliveries(*, run_id: int) -> int:
    """Send the run's pending deliveries to the workers in batches of ids.

    Batches are full-sized until the end of the run, then shrink (to a
    quarter of the size at least) so that the last ones spread over all of
    SEND_PARALLELISM's slots instead of a few slots finishing the run alone.
    """
    from mailer.tasks import send_delivery_batch as send_delivery_batch_task

    ids = Delivery.objects.filter(run_id=run_id, status=Delivery.Status.PENDING).order_by("id")
    remaining = ids.count()
    largest = batch_size()
    smallest = max(1, largest // 4)
    batches = 0
    chunk: list[int] = []
    size = _next_batch_size(remaining, largest, smallest)
    for delivery_id in ids.values_list("id", flat=True).iterator(chunk_size=10_000):
        chunk.append(delivery_id)
        if len(chunk) >= size:
            send_delivery_batch_task.delay(ids=chunk)
            batches += 1
            remaining -= len(chunk)
            chunk = []
            size = _next_batch_size(remaining, largest, smallest)
    if chunk:
        send_delivery_batch_task.delay(ids=chunk)
        batches += 1
    return batches


def _next_batch_size(remaining: int, largest: int, smallest: int) -> int:
    return max(smallest, min(largest, math.ceil(remaining / settings.SEND_PARALLELISM)))


def finish_run_if_complete(*, run_id: int) -> bool:
    """Mark the run done once no delivery is pending or sending; report once."""
    if Delivery.objects.filter(run_id=run_id, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]).exists():
        return False
    finished = SendRun.objects.filter(id=run_id, status=SendRun.Status.SENDING).update(
        status=SendRun.Status.DONE, finished_at=timezone.now()
    )
    if finished:
        from mailer.tasks import send_run_report as send_run_report_task

        transaction.on_commit(lambda: send_run_report_task.delay(run_id=run_id))
    return bool(finished)


def defer_pending_deliveries(*, run_id: int, reason: str) -> int:
    return Delivery.objects.filter(run_id=run_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.DEFERRED, reason=reason
    )


def retry_failed_deliveries(*, run: SendRun) -> int:
    """Give a run's failed and deferred deliveries another go (an admin's action).

    A delivery whose fate is unknown (SES may have accepted it) is among the
    failed ones; the admin decides, knowing that. A subscription that a later
    run already has a row for is left out: that row carries the question
    this one did (the cursor had not moved), so a retry would mail it twice.
    Like a run's start, a retry is capped at what is left of SES's 24-hour
    quota: the rest stays deferred, with its reason. Returns how many go out again.
    """
    later = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"), run__kind=SendRun.Kind.DAILY, run__day__gt=run.day
    )
    with transaction.atomic():
        count = (
            Delivery.objects.filter(
                run=run, status__in=[Delivery.Status.FAILED, Delivery.Status.DEFERRED], subscription__isnull=False
            )
            .exclude(Q(run__kind=SendRun.Kind.DAILY) & Exists(later))
            .update(status=Delivery.Status.PENDING, reason="", claim="", attempts=0)
        )
        count = max(0, count - _cap_at_quota(run))
        if count:
            SendRun.objects.filter(id=run.id).update(status=SendRun.Status.SENDING, finished_at=None)
            transaction.on_commit(lambda: enqueue_pending_deliveries(run_id=run.id))
    return count


def pause_sending(*, reason: str) -> bool:
    """Stop the daily send (batches claim nothing) and tell ADMINS, once per pause."""
    SendingState.objects.get_or_create(id=1)
    paused = SendingState.objects.filter(id=1, paused=False).update(
        paused=True, reason=reason[:2000], paused_at=timezone.now()
    )
    if paused:
        logger.error("sending paused: %s", reason)
        from mailer.tasks import send_pause_alert as send_pause_alert_task

        transaction.on_commit(lambda: send_pause_alert_task.delay(reason=reason))
    return bool(paused)


def resume_sending() -> int:
    """Resume the daily send (an admin's action): re-enqueue what is pending."""
    SendingState.objects.update_or_create(id=1, defaults={"paused": False, "resumed_at": timezone.now()})
    runs = list(SendRun.objects.filter(status=SendRun.Status.SENDING).values_list("id", flat=True))
    for run_id in runs:
        transaction.on_commit(lambda run_id=run_id: enqueue_pending_deliveries(run_id=run_id))
    return len(runs)

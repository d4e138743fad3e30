import json
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mailer import pacing, selectors
from mailer.emails import absolute_url, email_message, personalise, plain_text, render_shared_email
from mailer.gate import MailResult, send_built_email, send_email
from mailer.journal import Outcome, discard_journal, open_journal, prune_journals, read_journal
from mailer.markdown import render_markdown
from mailer.models import Delivery, Question, SendingState, SendRun, SESEvent, Suppression
from mailer.ses import (
    SendFailed,
    SendOutcome,
    account_status,
    allowed_recipients,
    reusable_connection,
    send_message,
)
from mailer.suppressions import suppress_address
from subscriptions.addresses import canonical_email, redact_addresses
from subscriptions.links import ReaderLinks
from subscriptions.models import Category, Frequency, Subscriber, Subscription

logger = logging.getLogger(__name__)


# --- The daily send ------------------------------------------------------------------


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
    return timezone.make_aware(datetime.combine(day, time(settings.DAILY_SEND_HOUR, settings.DAILY_SEND_MINUTE)))


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
            run, _created = SendRun.objects.get_or_create(day=day, defaults={"cutoff": send_cutoff(day)})
    except IntegrityError:  # a concurrent trigger created it first
        run = SendRun.objects.get(day=day)

    with transaction.atomic():
        # One trigger at a time past this line; the others wait, then find it sending.
        run = SendRun.objects.select_for_update().get(id=run.id)
        if run.status != SendRun.Status.CREATED:
            return run
        total = _create_deliveries(run)
        superseded_runs = _supersede_older_deliveries(run)
        _cap_at_quota(run)
        _refresh_delivery_statistics()
        run.status = SendRun.Status.SENDING
        run.started_at = timezone.now()
        run.total = total
        run.save(update_fields=["status", "started_at", "total"])
        transaction.on_commit(lambda: enqueue_pending_deliveries(run_id=run.id))
    logger.info("send run %s: %d deliveries", run.day, total)
    # A run whose deliveries were all settled at creation (skipped) is done now,
    # and so may be the older runs this one took the unsent rows of.
    for run_id in [run.id, *superseded_runs]:
        finish_run_if_complete(run_id=run_id)
    return run


def _create_deliveries(run: SendRun) -> int:
    """One delivery row per due subscription, with the question(s) it will carry."""
    sequences = selectors.question_sequences()
    due = (
        selectors.due_subscriptions(day=run.day, cutoff=run.cutoff)
        .values_list("id", "category", "next_position", "subscriber__frequency")
        .order_by("id")
    )
    rows: list[tuple[int, list[int], str, str]] = []  # subscription, questions, status, reason
    for subscription_id, category, next_position, frequency in due.iterator(chunk_size=5000):
        count = settings.WEEKLY_DIGEST_SIZE if frequency == Frequency.WEEKLY else 1
        picked = [question_id for _position, question_id in sequences[category].next_after(next_position, count)]
        if picked:
            rows.append((subscription_id, picked, Delivery.Status.PENDING, ""))
        else:
            rows.append((subscription_id, picked, Delivery.Status.SKIPPED, "no published questions in this category"))
        if len(rows) >= 5000:
            _insert_deliveries(run, rows)
            rows = []
    if rows:
        _insert_deliveries(run, rows)
    return Delivery.objects.filter(run=run).count()


def _supersede_older_deliveries(run: SendRun) -> list[int]:
    """Skip the unsent (pending, deferred) rows of earlier runs for the subscriptions `run` mails.

    A subscription's cursor moves only when a mail is sent, so an earlier
    run's unsent row (left by a pause, a quota stop, a backlog) carries the
    same question as `run`'s row: sending both would mail it twice. The
    newer row is the one sent. Returns the ids of the runs touched.
    """
    older = Delivery.objects.filter(
        run__day__lt=run.day,
        status__in=[Delivery.Status.PENDING, Delivery.Status.DEFERRED],
        subscription_id__in=Delivery.objects.filter(run=run).values("subscription_id"),
    )
    run_ids = list(older.order_by().values_list("run_id", flat=True).distinct())
    if run_ids:
        count = older.update(status=Delivery.Status.SKIPPED, reason=f"{SUPERSEDED_REASON}{run.day.isoformat()}")
        logger.info("send run %s: %d unsent deliveries of earlier runs superseded", run.day, count)
    return run_ids


def _refresh_delivery_statistics() -> None:
    """ANALYZE the deliveries now that the day's rows are there, before any batch runs.

    The statistics PostgreSQL last took saw every row sent: it then believes
    no row is pending and reads a batch's rows through an index on status,
    that is every pending row of the run for each batch of 100 (a run's
    work grew with the square of its size: bench/README.md). Sampling costs a
    fraction of a second once a day. ANALYZE counts this transaction's own
    new rows, and its lock keeps out only VACUUM and other ANALYZEs.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(Delivery._meta.db_table)}")


def _insert_deliveries(run: SendRun, rows: list[tuple[int, list[int], str, str]]) -> None:
    """INSERT the run's rows (subscription, question ids, status, reason); rows already there are kept.

    On PostgreSQL the varying columns travel as one array each and every
    other column takes its model default: bulk_create preparing each value
    of 100,000 model instances took two thirds of a run's start (bench/README.md).
    """
    if connection.vendor != "postgresql":
        deliveries = [
            Delivery(run=run, subscription_id=subscription, question_ids=questions, status=status, reason=reason)
            for subscription, questions, status, reason in rows
        ]
        Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        return
    defaults = Delivery(run=run)
    varying = {"subscription": 0, "question_ids": 1, "status": 2, "reason": 3}
    quote = connection.ops.quote_name
    columns, values, constants = [], [], []
    for column in Delivery._meta.concrete_fields:
        if column.primary_key:
            continue
        columns.append(quote(column.column))
        if column.name in varying:
            values.append(f"v.c{varying[column.name]}")
        else:
            values.append(f"%s::{column.db_type(connection)}")
            constants.append(column.get_db_prep_save(getattr(defaults, column.attname), connection))
    arrays = [
        [subscription for subscription, _q, _s, _r in rows],
        [json.dumps(questions) for _s, questions, _st, _r in rows],
        [status for _s, _q, status, _r in rows],
        [reason for _s, _q, _st, reason in rows],
    ]
    types = ["bigint", "jsonb", Delivery._meta.get_field("status").db_type(connection), "text"]
    unnest = ", ".join(f"%s::{kind}[]" for kind in types)
    # Only the model's own (quoted) table and column names are formatted in; values are parameters.
    sql = (
        f"INSERT INTO {quote(Delivery._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM unnest({unnest}) AS v(c0, c1, c2, c3) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants, *arrays])


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


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(slots=True)
class OutgoingMail:
    """A claimed delivery with what its mail needs, and how its send ended.

    A batch reads these as plain values, not as Delivery, Subscription and
    Subscriber models: building four model instances a row cost a worker
    more than reading the row did (bench/README.md).
    """

    id: int
    run_id: int
    day: date
    question_ids: list[int]
    attempts: int
    subscription_id: int
    category: str
    subscription_active: bool
    subscriber_id: int
    email: str
    language: str
    subscriber_status: str
    link_generation: int
    status: str = Delivery.Status.SENDING
    reason: str = ""
    ses_message_id: str = ""
    sent_at: datetime | None = None
    next_position: int | None = None  # where the reader's sequence goes on, once this one was sent

    def outcome(self) -> Outcome:
        return Outcome(
            self.id, self.subscription_id, self.status, self.reason, self.ses_message_id, self.sent_at,
            self.attempts, self.next_position,
        )  # fmt: skip


# In OutgoingMail's order, as Delivery lookups.
_OUTGOING_FIELDS = (
    "id",
    "run_id",
    "run__day",
    "question_ids",
    "attempts",
    "subscription_id",
    "subscription__category",
    "subscription__is_active",
    "subscription__subscriber_id",
    "subscription__subscriber__email",
    "subscription__subscriber__language",
    "subscription__subscriber__status",
    "subscription__subscriber__link_generation",
)
_OUTCOME_FIELDS = ["status", "reason", "ses_message_id", "sent_at", "attempts"]


def send_delivery_batch(*, ids: list[int]) -> BatchResult:
    """Claim, render and send a batch of deliveries; record how each ended.

    Runs on a worker. A row is claimed by a conditional UPDATE (pending ->
    sending, tagged with this call's claim), so two workers given the same
    ids, or a redelivered task, never send a row twice. Each mail is a fresh
    message sent over the worker process's one SES client, paced by the
    shared limiter as it leaves. Each outcome is journaled before the next
    send starts (mailer/journal.py), and all of them, with the cursor moves,
    are written with one statement each at the end. A batch starts no send
    after SEND_BATCH_SECONDS; the rows it did not reach go back to the queue.
    While sending is paused nothing is claimed: the rows wait for a resume.
    """
    if selectors.sending_paused():
        return BatchResult()
    claim = uuid.uuid4().hex
    # Begun before the claim, so that no claim is ever without its journal.
    journal = open_journal(claim)
    journal.begin()
    claimed = Delivery.objects.filter(id__in=ids, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.SENDING, claim=claim, claimed_at=timezone.now()
    )
    result = BatchResult(claimed=claimed)
    if not claimed:
        journal.discard()
        return result
    # The rows of this claim, found by their ids (no index on claim needed).
    mails = [
        OutgoingMail(*row)
        for row in Delivery.objects.filter(id__in=ids, claim=claim, status=Delivery.Status.SENDING)
        .order_by("id")
        .values_list(*_OUTGOING_FIELDS)
    ]
    # What a mail shows of its questions; the answers stay on the site.
    questions = Question.objects.only("id", "category", "position", "title", "question_md").in_bulk(
        {qid for mail in mails for qid in mail.question_ids}
    )
    emails = sorted({mail.email for mail in mails})
    suppressed = {email.lower() for email in selectors.suppressed_addresses(emails=emails)}
    stop: SendOutcome | None = None
    in_flight: OutgoingMail | None = None
    written: set[int] = set()  # rows whose outcome is already in the database
    still_ours: set[int] = set()
    # A batch stops starting sends in time on its own: the thread pool has no
    # time limits to stop it (under prefork this comes before the soft one).
    deadline = monotonic() + settings.SEND_BATCH_SECONDS
    started = 0  # every batch starts at least one send: it always makes progress
    try:
        allowed = allowed_recipients(emails)
        # One SES client per worker process (creating one cost a third of a
        # batch's CPU: bench/README.md), reused by every batch it runs; the
        # send rate (SES's, cached in Redis) is read once per batch too.
        connection = reusable_connection()
        rate = pacing.send_rate()
        reader_links = ReaderLinks.routed()
        for mail in mails:
            if stop is SendOutcome.QUOTA:
                mail.status, mail.reason = Delivery.Status.DEFERRED, QUOTA_REASON
            elif stop is SendOutcome.PAUSED:
                mail.status = Delivery.Status.PENDING
            else:
                if started and monotonic() > deadline:
                    break  # the rest go back to the queue, below
                in_flight, started = mail, started + 1
                stop = _send_one(
                    mail,
                    questions=questions,
                    suppressed=suppressed,
                    allowed=allowed,
                    connection=connection,
                    rate=rate,
                    reader_links=reader_links,
                )
                in_flight = None
            if not journal.append(mail.outcome()):
                # No journal (Redis lost it, or is down): what is known goes to the database now.
                done = [m.outcome() for m in mails if m.status != Delivery.Status.SENDING and m.id not in written]
                still_ours |= _record_outcomes(done, claim=claim)
                written.update(outcome.id for outcome in done)
                journal.begin()
    except Exception:
        # Interrupted (the soft time limit, a lost connection): the row being
        # sent may have reached SES, so it is listed as unknown, never resent.
        if in_flight is not None and in_flight.status == Delivery.Status.SENDING:
            in_flight.status, in_flight.reason = Delivery.Status.FAILED, UNKNOWN_REASON + "interrupted while sending"
        raise
    finally:
        # The rows not reached go back to pending and, once written, to the queue.
        untouched = [mail for mail in mails if mail.status == Delivery.Status.SENDING]
        for mail in untouched:
            mail.status = Delivery.Status.PENDING
        still_ours |= _record_outcomes([m.outcome() for m in mails if m.id not in written], claim=claim)
        journal.discard()  # written down: what the journal kept is no longer needed
        if requeue := [mail.id for mail in untouched if mail.id in still_ours]:
            from mailer.tasks import send_delivery_batch as send_delivery_batch_task

            send_delivery_batch_task.delay(ids=requeue)
        # Also when interrupted: this batch may have settled the run's last rows.
        finish_run_if_complete(run_id=mails[0].run_id)
    again = [mail for mail in mails if mail.status == Delivery.Status.PENDING and mail.attempts and stop is None]
    if again:
        # Throttled or hit by passing errors through every retry: give SES a
        # moment, then a later batch tries these again.
        from mailer.tasks import send_delivery_batch as send_delivery_batch_task

        pause = 5 * max(mail.attempts for mail in again)
        send_delivery_batch_task.apply_async(kwargs={"ids": [mail.id for mail in again]}, countdown=pause)
    for mail in mails:
        if mail.status in {"sent", "failed", "skipped"}:
            setattr(result, mail.status, getattr(result, mail.status) + 1)
    run_id = mails[0].run_id
    if stop is SendOutcome.QUOTA:
        defer_pending_deliveries(run_id=run_id, reason=QUOTA_REASON)
        finish_run_if_complete(run_id=run_id)
    elif stop is SendOutcome.PAUSED:
        pause_sending(reason="SES paused sending for this account")
    return result


def _record_outcomes(outcomes: list[Outcome], *, claim: str) -> set[int]:
    """Write how each mail ended and move the cursors of those sent; returns the ids still claimed.

    Rows the sweeper took back (the batch outlived its lease) are its to
    report now, not ours: neither they nor their cursors are written.
    """
    with transaction.atomic():
        still_ours = _bulk_set(
            Delivery,
            {o.id: (o.status, o.reason, o.ses_message_id, o.sent_at, o.attempts) for o in outcomes},
            _OUTCOME_FIELDS,
            claim=claim,
        )
        moved = {
            o.subscription_id: (o.next_position, o.sent_at)
            for o in outcomes
            if o.next_position is not None and o.id in still_ours
        }
        _bulk_set(Subscription, moved, ["next_position", "last_sent_at"])
    return still_ours


def _bulk_set(model, values: dict[int, tuple], fields: list[str], *, claim: str | None = None) -> set[int]:
    """Write `fields` of `model`'s rows in one statement; returns the ids written.

    `values` maps a row's id to its values, in the order of `fields`. With
    `claim`, only rows still holding that claim are written. Django's
    bulk_update builds a CASE expression per row and field, which cost a
    fifth of a sending worker's CPU (bench/README.md); on PostgreSQL the
    values travel as one array per field instead.
    """
    if not values:
        return set()
    if connection.vendor != "postgresql":
        rows = model.objects.filter(id__in=list(values))
        ours = set((rows.filter(claim=claim) if claim is not None else rows).values_list("id", flat=True))
        objects = [model(id=pk, **dict(zip(fields, values[pk], strict=True))) for pk in ours]
        model.objects.bulk_update(objects, fields)
        return ours
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
    arrays = ", ".join(["%s::bigint[]", *(f"%s::{f.db_type(connection)}[]" for f in columns)])
    names = ", ".join(["id", *(quote(f.column) for f in columns)])
    # Only the model's own (quoted) table and column names are formatted in; values are parameters.
    sql = f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE t.id = v.id"  # noqa: S608
    params = [list(values)]
    params += [[f.get_db_prep_value(row[n], connection) for row in values.values()] for n, f in enumerate(columns)]
    if claim is not None:
        sql += " AND t.claim = %s"
        params.append(claim)
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING t.id", params)
        return {row[0] for row in cursor.fetchall()}


QUOTA_REASON = "SES 24-hour quota reached"
SUPERSEDED_REASON = "superseded by the run of "
# A delivery whose sends kept meeting throttling or passing errors goes back
# to the queue this many times (after a growing pause) before it fails.
TRANSIENT_ROUNDS = 5
UNKNOWN_REASON = "fate unknown, not resent automatically: "
RESEND_REASON = "fate unknown, sent again: no SES Send event within "
CONFIRMED_REASON = "sent by a worker that stopped; SES's Send event confirmed it"
# The SES message tag naming a daily mail's delivery: SES's Send event for the
# mail carries it back (record_ses_event).
DELIVERY_TAG = "dailyq-delivery"


def _send_one(
    mail: OutgoingMail, *, questions, suppressed, allowed, connection, rate, reader_links
) -> SendOutcome | None:
    """Send one mail and set its outcome; returns QUOTA or PAUSED when the batch must stop."""
    if not mail.subscription_active or mail.subscriber_status != Subscriber.Status.ACTIVE:
        mail.status, mail.reason = Delivery.Status.SKIPPED, "unsubscribed before the send"
        return None
    if mail.email.lower() in suppressed:
        mail.status, mail.reason = Delivery.Status.SKIPPED, "address suppressed"
        return None
    if mail.email not in allowed:
        mail.status, mail.reason = Delivery.Status.SKIPPED, "sandbox: recipient not verified"
        return None
    picked = [questions[qid] for qid in mail.question_ids if qid in questions]
    if not picked:
        mail.status, mail.reason = Delivery.Status.SKIPPED, "questions were deleted"
        return None
    try:
        message = send_message(
            lambda: build_daily_email(
                subscriber_id=mail.subscriber_id,
                email=mail.email,
                language=mail.language,
                category=mail.category,
                day=mail.day,
                questions=picked,
                connection=connection,
                reader_links=reader_links,
                link_generation=mail.link_generation,
            ),
            priority=pacing.BULK,
            rate=rate,
            tags={DELIVERY_TAG: str(mail.id)},
        )
    except SendFailed as exc:
        logger.warning("delivery %s not sent (%s): %s", mail.id, exc.outcome, exc.reason)
        if exc.outcome is SendOutcome.QUOTA:
            mail.status, mail.reason = Delivery.Status.DEFERRED, QUOTA_REASON
            return SendOutcome.QUOTA
        if exc.outcome is SendOutcome.PAUSED:
            mail.status = Delivery.Status.PENDING
            return SendOutcome.PAUSED
        mail.attempts += 1
        if exc.outcome is SendOutcome.TRANSIENT and mail.attempts < TRANSIENT_ROUNDS:
            mail.status, mail.reason = Delivery.Status.PENDING, exc.reason  # for a later batch
            return None
        mail.status, mail.reason = Delivery.Status.FAILED, exc.reason
        if exc.outcome is SendOutcome.UNKNOWN:
            mail.reason = (UNKNOWN_REASON + exc.reason)[:1000]
        return None
    except SoftTimeLimitExceeded:
        raise  # the batch's time is up: send_delivery_batch settles the rows
    except Exception as exc:  # rendering or a bug: recorded on the row; the batch goes on
        logger.exception("delivery %s failed", mail.id)
        mail.status, mail.reason = Delivery.Status.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
        return None
    mail.status = Delivery.Status.SENT
    mail.reason = ""
    mail.ses_message_id = str(message.extra_headers.get("message_id", ""))
    mail.sent_at = timezone.now()
    mail.next_position = picked[-1].position + 1
    return None


def defer_pending_deliveries(*, run_id: int, reason: str) -> int:
    return Delivery.objects.filter(run_id=run_id, status=Delivery.Status.PENDING).update(
        status=Delivery.Status.DEFERRED, reason=reason
    )


def build_daily_email(
    *,
    subscriber_id: int,
    email: str,
    language: str,
    category: str,
    day: date,
    questions: list[Question],
    connection=None,
    test: bool = False,
    reader_links=None,
    link_generation: int | None = None,
):
    """A reader's mail of `day`: its question(s), links and unsubscribe headers.

    Everything but the reader's own links is rendered once per day, category,
    language and question set (render_shared_email), then personalised. A
    `test` mail (an admin's test send, which goes to another address) carries
    no link that acts on the reader: both go to the landing page, and it has
    no List-Unsubscribe headers. `reader_links` (subscriptions.links.ReaderLinks):
    the links' routes, when a batch has them already; `link_generation`: the
    reader's Subscriber.link_generation, when the batch read it (else it is read).
    """
    shared = render_shared_email(
        "daily_question",
        lambda: daily_email_context(category=category, day=day, questions=questions),
        language=language,
        personal=("manage_url", "unsubscribe_url"),
        key=(category, day, tuple((q.id, q.title, q.question_md) for q in questions)),
    )
    if test:
        landing = absolute_url(reverse("subscriptions:landing"))
        links, headers = {"manage_url": landing, "unsubscribe_url": landing}, {}
    else:
        routed = reader_links or ReaderLinks.routed()
        unsubscribe_link = routed.unsubscribe_url(subscriber_id, category, generation=link_generation)
        links = {
            "manage_url": routed.manage_url(subscriber_id, generation=link_generation),
            "unsubscribe_url": unsubscribe_link,
        }
        headers = {"List-Unsubscribe": f"<{unsubscribe_link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return email_message(personalise(shared, links), to=email, connection=connection, headers=headers)


def daily_email_context(*, category: str, day: date, questions: list[Question]) -> dict:
    """What the daily_question templates get, but the reader's links (manage_url, unsubscribe_url)."""
    return {
        "category": Category(category).label,
        "weekly": len(questions) > 1,
        "day": day,
        "questions": [_mailed_question(q) for q in questions],
    }


def _mailed_question(question: Question) -> dict:
    question_html = render_markdown(question.question_md) if question.question_md else ""
    return {
        "title": question.title,
        "question_html": question_html,
        "question_md": question.question_md,
        "prompt": plain_text(question_html),  # for the inbox preview line
        "url": absolute_url(reverse("mailer:question", args=[question.id])),
    }


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


def retry_failed_deliveries(*, run: SendRun) -> int:
    """Give a run's failed and deferred deliveries another go (an admin's action).

    A delivery whose fate is unknown (SES may have accepted it) is among the
    failed ones; the admin decides, knowing that. A subscription that a later
    run already has a row for is left out: that row carries the question
    this one did (the cursor had not moved), so a retry would mail it twice.
    """
    later = Delivery.objects.filter(subscription_id=OuterRef("subscription_id"), run__day__gt=run.day)
    with transaction.atomic():
        count = (
            Delivery.objects.filter(
                run=run, status__in=[Delivery.Status.FAILED, Delivery.Status.DEFERRED], subscription__isnull=False
            )
            .exclude(Exists(later))
            .update(status=Delivery.Status.PENDING, reason="", claim="", attempts=0)
        )
        if count:
            SendRun.objects.filter(id=run.id).update(status=SendRun.Status.SENDING, finished_at=None)
            transaction.on_commit(lambda: enqueue_pending_deliveries(run_id=run.id))
    return count


class AdminMailFailed(Exception):
    """A mail to admins stopped at an address; `unsent` are the ones still to mail, that one first."""

    def __init__(self, unsent: list[str]):
        super().__init__(f"mail to {len(unsent)} admin address(es) not sent")
        self.unsent = unsent


def _mail_admins(template: str, context: dict, to: list[str]) -> int:
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
    return _mail_admins("run_report", context, to)


def preview_daily_email(*, subscription: Subscription, day: date, test: bool = False):
    """The mail `subscription` would get on `day` (unsent), or None without questions.

    `test`: the form of it a test send carries (see build_daily_email).
    """
    delivery = preview_delivery(subscription=subscription, day=day)
    found = Question.objects.in_bulk(delivery.question_ids)
    questions = [found[i] for i in delivery.question_ids if i in found]
    if not questions:
        return None
    subscriber = subscription.subscriber
    return build_daily_email(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        language=subscriber.language,
        category=subscription.category,
        day=day,
        questions=questions,
        test=test,
    )


def send_test_mail(*, subscription: Subscription, to: str, day: date) -> MailResult:
    """Send `subscription`'s mail of `day` to `to` (an admin's test send), if the gate lets it through.

    The reader's own links (manage, unsubscribe) are not in it: whoever gets
    the test mail must not be able to act on the reader's subscription.
    """

    def build():
        message = preview_daily_email(subscription=subscription, day=day, test=True)
        if message is None:
            raise ValueError("This category has no published questions.")
        message.to = [to]
        message.subject = f"[TEST] {message.subject}"
        return message

    return send_built_email(kind="daily_question", to=to, build=build)


def preview_delivery(*, subscription: Subscription, day: date) -> Delivery:
    """An unsaved delivery holding what `subscription` would get on `day`."""
    count = settings.WEEKLY_DIGEST_SIZE if subscription.subscriber.frequency == Frequency.WEEKLY else 1
    picked = selectors.question_sequences()[subscription.category].next_after(subscription.next_position, count)
    return Delivery(
        run=SendRun(day=day, cutoff=send_cutoff(day)),
        subscription=subscription,
        question_ids=[i for _p, i in picked],
    )


# --- Pausing ----------------------------------------------------------------------------


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


def send_pause_alert(*, reason: str, to: list[str] | None = None) -> int:
    """Tell ADMINS (or `to`, on a retry) that the daily send is paused; returns how many were mailed."""
    to = [address for _name, address in settings.ADMINS] if to is None else to
    context = {"reason": reason, "admin_url": absolute_url(reverse("admin:mailer_sendingstate_changelist"))}
    return _mail_admins("sending_paused", context, to)


# --- Feedback from SES ------------------------------------------------------------------

TRANSIENT_BOUNCES_TO_SUPPRESS = 3  # ...among an address's last 5 deliveries
TRANSIENT_BOUNCE_WINDOW = 5


def record_ses_event(*, notification: dict, message: dict) -> SESEvent | None:
    """Store one SES event from SNS and act on it.

    Permanent bounce: suppress the address. Transient bounce: suppress after
    3 among the address's last 5 deliveries. Complaint: unsubscribe from
    everything and suppress. Delivery: mark the delivery delivered. SNS
    delivers at least once, so an event seen before is ignored. Send: noted
    on the delivery it is tagged with, not stored (record_send_event).
    """
    if not isinstance(message, dict):
        return None
    kind = message.get("eventType") or message.get("notificationType") or ""
    kind = kind.lower() if isinstance(kind, str) else ""
    if kind == "send":
        record_send_event(message=message)
        return None
    if kind not in SESEvent.Kind.values:
        return None
    # The addresses are read as SES sent them: one with a character PostgreSQL
    # cannot store (NUL) is no address DailyQ mailed, not the one without it.
    recipients = _named_recipients(kind, _mapping(message.get(kind)))
    # An erased reader's address is not stored again (subscriptions.erasure).
    erased = selectors.erased_addresses(emails=recipients)
    message = redact_addresses(_storable(message), erased)
    mail = _mapping(message.get("mail"))
    ses_message_id = str(mail.get("messageId", ""))[:200]
    detail = _mapping(message.get(kind))
    bounce_type = str(detail.get("bounceType", ""))[:32] if kind == SESEvent.Kind.BOUNCE else ""
    delivery = Delivery.objects.filter(ses_message_id=ses_message_id).first() if ses_message_id else None

    with transaction.atomic():
        try:
            with transaction.atomic():
                event = SESEvent.objects.create(
                    sns_message_id=str(notification.get("MessageId", ""))[:100] or uuid.uuid4().hex,
                    kind=kind,
                    bounce_type=bounce_type,
                    email=(recipients[0] if recipients and recipients[0] not in erased else "")[:254],
                    ses_message_id=ses_message_id,
                    delivery=delivery,
                    payload=message,
                )
        except IntegrityError:
            return None  # seen before
        if kind == SESEvent.Kind.DELIVERY:
            if delivery and not delivery.feedback:
                _set_feedback(delivery, Delivery.Feedback.DELIVERED)
            return event
        if kind == SESEvent.Kind.BOUNCE:
            permanent = bounce_type == "Permanent"
            if delivery:
                _set_feedback(delivery, Delivery.Feedback.BOUNCED if permanent else Delivery.Feedback.SOFT_BOUNCED)
            for email in recipients:
                if permanent:
                    suppress_address(email=email, reason=Suppression.Reason.BOUNCE, detail=json_detail(detail))
                elif _transient_bounces(email) >= TRANSIENT_BOUNCES_TO_SUPPRESS:
                    suppress_address(
                        email=email,
                        reason=Suppression.Reason.BOUNCE,
                        detail=f"{TRANSIENT_BOUNCES_TO_SUPPRESS} transient bounces among the last "
                        f"{TRANSIENT_BOUNCE_WINDOW} deliveries",
                    )
        if kind == SESEvent.Kind.COMPLAINT:
            from subscriptions.services import unsubscribe

            if delivery:
                _set_feedback(delivery, Delivery.Feedback.COMPLAINED)
            for email in recipients:
                for subscriber in Subscriber.objects.filter(email=email):
                    unsubscribe(subscriber=subscriber)
                suppress_address(email=email, reason=Suppression.Reason.COMPLAINT, detail=json_detail(detail))
    check_reputation()
    return event


def record_send_event(*, message: dict) -> bool:
    """SES accepted a daily mail (its Send event): note it on the delivery its tag names.

    Every mail of a batch is written down by the batch; this is what tells
    whether one whose worker died mid-send reached SES. The message id and
    time are kept on the delivery (a batch writing its outcomes never
    overwrites them), and a delivery of unknown fate becomes sent now
    (confirm_sent_deliveries). A tag naming a delivery of another reader
    (another deployment's mail on the same configuration set) is ignored.
    Returns whether the event was noted.
    """
    mail = _mapping(message.get("mail"))
    message_id = str(mail.get("messageId", ""))[:200]
    tagged = _sequence(_mapping(mail.get("tags")).get(DELIVERY_TAG))
    if not message_id or len(tagged) != 1 or not str(tagged[0]).isdigit() or len(str(tagged[0])) > 18:
        return False
    # Send events arrive: past its grace period, an unknown delivery without one may be sent again.
    cache.set(LAST_SEND_EVENT_KEY, timezone.now().timestamp(), None)
    delivery_id = int(tagged[0])
    row = (
        Delivery.objects.filter(id=delivery_id)
        .values_list("status", "accepted_message_id", "subscription__subscriber__email")
        .first()
    )
    if row is None or row[0] == Delivery.Status.SENT or row[1] or row[2] is None:
        return False  # written down by its batch already, noted before, or its reader erased
    recipients = {
        address.lower() for address in (_valid_address(a) for a in _sequence(mail.get("destination"))[:50]) if address
    }
    if row[2].lower() not in recipients:
        logger.warning("SES Send event tagged with delivery %s names another recipient: ignored", delivery_id)
        return False
    accepted_at = _event_time(mail.get("timestamp"))
    Delivery.objects.filter(id=delivery_id, accepted_message_id="").exclude(status=Delivery.Status.SENT).update(
        accepted_message_id=message_id, accepted_at=accepted_at
    )
    confirm_sent_deliveries(ids=[delivery_id])
    return True


def _event_time(value) -> datetime:
    """An SES event's time (ISO 8601, UTC), or now when it has none that reads."""
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        return timezone.now()
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def _named_recipients(kind: str, detail: dict) -> list[str]:
    if kind == SESEvent.Kind.BOUNCE:
        named = [_mapping(r).get("emailAddress") for r in _sequence(detail.get("bouncedRecipients"))]
    elif kind == SESEvent.Kind.COMPLAINT:
        named = [_mapping(r).get("emailAddress") for r in _sequence(detail.get("complainedRecipients"))]
    else:
        named = _sequence(detail.get("recipients"))
    return [r for r in (_valid_address(r) for r in named[:50]) if r]


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _sequence(value) -> list:
    return value if isinstance(value, list) else []


def _valid_address(value) -> str | None:
    """An address SES named, in its canonical form, if it is one DailyQ could have mailed."""
    if not isinstance(value, str):
        return None
    try:
        return canonical_email(value)
    except ValidationError:
        return None


def _storable(message: dict) -> dict:
    """The message with what PostgreSQL cannot store (NUL, lone surrogates) removed."""
    text = json.dumps(message, ensure_ascii=False).replace("\\u0000", "")
    return json.loads(text.encode("utf-8", "replace").decode("utf-8"))


def json_detail(detail: dict) -> str:
    return json.dumps(detail, ensure_ascii=False)[:2000]


def _set_feedback(delivery: Delivery, feedback: str) -> None:
    Delivery.objects.filter(id=delivery.id).update(feedback=feedback, feedback_at=timezone.now())


def _transient_bounces(email: str) -> int:
    recent = (
        Delivery.objects.filter(subscription__subscriber__email=email, status=Delivery.Status.SENT)
        .order_by("-sent_at")
        .values_list("feedback", flat=True)[:TRANSIENT_BOUNCE_WINDOW]
    )
    return sum(1 for feedback in recent if feedback == Delivery.Feedback.SOFT_BOUNCED)


def check_reputation() -> bool:
    """Pause the daily send when bounces or complaints near SES's review thresholds."""
    health = selectors.reputation()
    if not health.enough_data:
        return False
    problems = []
    if health.bounce_rate >= settings.REPUTATION_MAX_BOUNCE_RATE:
        problems.append(f"bounce rate {health.bounce_rate:.2%} (limit {settings.REPUTATION_MAX_BOUNCE_RATE:.2%})")
    if health.complaint_rate >= settings.REPUTATION_MAX_COMPLAINT_RATE:
        problems.append(
            f"complaint rate {health.complaint_rate:.2%} (limit {settings.REPUTATION_MAX_COMPLAINT_RATE:.2%})"
        )
    if not problems:
        return False
    return pause_sending(reason=f"Reputation guard over the last {health.sample} deliveries: " + "; ".join(problems))


# --- Leases ------------------------------------------------------------------------------


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
        still_ours = _record_outcomes(outcomes, claim=claim)
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
            picked = [positions[q] for q in question_ids if q in positions]
            later = Delivery.objects.filter(subscription_id=subscription_id, run__day__gt=day).exists()
            if picked and not later:
                _bulk_set(
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
    later = Delivery.objects.filter(subscription_id=OuterRef("subscription_id"), run__day__gt=OuterRef("run__day"))
    unknown = Delivery.objects.filter(
        status=Delivery.Status.FAILED, reason__startswith=UNKNOWN_REASON, accepted_message_id=""
    )
    found = list(
        unknown.filter(run__in=_recent_runs(), claimed_at__lt=claimed_before)
        .exclude(Exists(later))
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


def sweep_sends() -> SweepReport:
    """What beat runs every five minutes (and `manage.py sweep_sends` by hand or
    from cron): settle lost workers' claims, confirm or resend what is of
    unknown fate (with Send events), then queue stalled runs again."""
    report = sweep_expired_claims()
    report.confirmed = confirm_sent_deliveries()
    report.resent = resend_unknown_deliveries()
    report.runs_requeued = requeue_stalled_runs()
    return report


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
    for run in SendRun.objects.filter(status=SendRun.Status.CREATED, day=today, created_at__lt=since):
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

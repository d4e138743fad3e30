"""One batch of deliveries on a worker: claim, gate, send each, record the outcomes."""

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from time import monotonic

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mailer import pacing, selectors
from mailer.journal import Outcome, open_journal
from mailer.models import Delivery, Question
from mailer.sending.bulk_sql import bulk_set
from mailer.sending.daily_email import build_daily_email
from mailer.sending.reasons import QUOTA_REASON, UNKNOWN_REASON
from mailer.sending.runs import defer_pending_deliveries, finish_run_if_complete, pause_sending
from mailer.ses import SendFailed, SendOutcome, allowed_recipients, reusable_connection, send_message
from subscriptions.links import ReaderLinks
from subscriptions.models import Subscriber, Subscription

logger = logging.getLogger(__name__)


# A delivery whose sends kept meeting throttling or passing errors goes back
# to the queue this many times (after a growing pause) before it fails.
TRANSIENT_ROUNDS = 5


# The SES message tag naming a daily mail's delivery: SES's Send event for the
# mail carries it back (record_ses_event).
DELIVERY_TAG = "dailyq-delivery"


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
                still_ours |= record_outcomes(done, claim=claim)
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
        still_ours |= record_outcomes([m.outcome() for m in mails if m.id not in written], claim=claim)
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


def record_outcomes(outcomes: list[Outcome], *, claim: str) -> set[int]:
    """Write how each mail ended and move the cursors of those sent; returns the ids still claimed.

    Rows the sweeper took back (the batch outlived its lease) are its to
    report now, not ours: neither they nor their cursors are written.
    """
    with transaction.atomic():
        still_ours = bulk_set(
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
        bulk_set(Subscription, moved, ["next_position", "last_sent_at"])
    return still_ours

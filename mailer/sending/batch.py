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
from mailer.gate import Gate, send_built_email
from mailer.journal import Outcome, open_journal
from mailer.models import Announcement, Delivery, Question
from mailer.sending.announcements import build_announcement_email
from mailer.sending.bulk_sql import bulk_set
from mailer.sending.daily_email import build_daily_email
from mailer.sending.reasons import QUOTA_REASON, UNKNOWN_REASON
from mailer.sending.runs import defer_pending_deliveries, finish_run_if_complete, pause_sending
from mailer.ses import SendFailed, SendOutcome, reusable_connection
from subscriptions.answers import record_reviews_sent
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
    more than reading the row did.
    """

    id: int
    run_id: int
    day: date
    announcement_id: int | None  # what the row says to build: this announcement, else the daily mail
    question_ids: list[int]
    review_question_ids: list[int]
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
    "run__announcement_id",
    "question_ids",
    "review_question_ids",
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


_TEXT_FIELDS = [name for language in selectors.TEXT_LANGUAGES for name in selectors.text_fields(language)]


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
    batch = Batch.claim(ids)
    if batch is None:
        return BatchResult()
    batch.send()
    return batch.finish()


@dataclass(frozen=True, slots=True)
class _Sending:
    """What every mail of a batch is sent with, asked for once per batch."""

    gate: Gate
    questions: dict[int, Question]
    announcements: dict[int, Announcement]
    connection: object
    rate: float
    reader_links: ReaderLinks


class Batch:
    """One claim's mails on a worker, from the claim to their recorded outcomes."""

    def __init__(self, claim: str, journal, mails: list[OutgoingMail], *, claimed: int):
        self.claim, self.journal, self.mails, self.claimed = claim, journal, mails, claimed
        self.run_id = mails[0].run_id
        self.stop: SendOutcome | None = None  # QUOTA or PAUSED: the batch starts no more sends
        self.in_flight: OutgoingMail | None = None
        self.written: set[int] = set()  # rows whose outcome is already in the database
        self.still_ours: set[int] = set()
        self.reviews = {mail.id: (mail.day, mail.review_question_ids) for mail in mails if mail.review_question_ids}

    @classmethod
    def claim(cls, ids: list[int]) -> "Batch | None":
        """Claim the pending rows among `ids`; None when another worker has them all."""
        claim = uuid.uuid4().hex
        # Begun before the claim, so that no claim is ever without its journal.
        journal = open_journal(claim)
        journal.begin()
        claimed = Delivery.objects.filter(id__in=ids, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.SENDING, claim=claim, claimed_at=timezone.now()
        )
        if not claimed:
            journal.discard()
            return None
        # The rows of this claim, found by their ids (no index on claim needed).
        mails = [
            OutgoingMail(*row)
            for row in Delivery.objects.filter(id__in=ids, claim=claim, status=Delivery.Status.SENDING)
            .order_by("id")
            .values_list(*_OUTGOING_FIELDS)
        ]
        return cls(claim, journal, mails, claimed=claimed)

    def send(self) -> None:
        """Send the mails in id order; whatever happens, write down how each ended."""
        # What a mail shows of its questions and reviews, in both languages (question_text reads the
        # answers' fields too, to tell which languages a question has).
        questions = Question.objects.only("id", "category", "position", *_TEXT_FIELDS).in_bulk(
            {qid for mail in self.mails for qid in (*mail.question_ids, *mail.review_question_ids)}
        )
        announcements = Announcement.objects.in_bulk({m.announcement_id for m in self.mails if m.announcement_id})
        try:
            self._send_all(questions, announcements)
        except Exception:
            # Interrupted (the soft time limit, a lost connection): the row being
            # sent may have reached SES, so it is listed as unknown, never resent.
            mail = self.in_flight
            if mail is not None and mail.status == Delivery.Status.SENDING:
                mail.status, mail.reason = Delivery.Status.FAILED, UNKNOWN_REASON + "interrupted while sending"
            raise
        finally:
            self._record()

    def _send_all(self, questions: dict[int, Question], announcements: dict[int, Announcement]) -> None:
        # One SES client per worker process, reused by every batch it runs; the
        # gate and the send rate (SES's, cached in Redis) are asked once per batch.
        sending = _Sending(
            gate=Gate.check(mail.email for mail in self.mails),
            questions=questions,
            announcements=announcements,
            connection=reusable_connection(),
            rate=pacing.send_rate(),
            reader_links=ReaderLinks.routed(),
        )
        # A batch stops starting sends in time on its own: the thread pool has no
        # time limits to stop it (under prefork this comes before the soft one).
        deadline = monotonic() + settings.SEND_BATCH_SECONDS
        started = 0  # every batch starts at least one send: it always makes progress
        for mail in self.mails:
            if self.stop is not None:
                _hold_back(mail, self.stop)
            elif started and monotonic() > deadline:
                break  # the rest go back to the queue (_record)
            else:
                self.in_flight, started = mail, started + 1
                self.stop = _send_one(mail, sending)
                self.in_flight = None
            self._journal(mail)

    def _journal(self, mail: OutgoingMail) -> None:
        if self.journal.append(mail.outcome()):
            return
        # No journal (Redis lost it, or is down): what is known goes to the database now.
        done = [m.outcome() for m in self.mails if m.status != Delivery.Status.SENDING and m.id not in self.written]
        self.still_ours |= record_outcomes(done, claim=self.claim, reviews=self.reviews)
        self.written.update(outcome.id for outcome in done)
        self.journal.begin()

    def _record(self) -> None:
        """Write every outcome not written yet; the rows not reached go back to the queue."""
        untouched = [mail for mail in self.mails if mail.status == Delivery.Status.SENDING]
        for mail in untouched:
            mail.status = Delivery.Status.PENDING
        outcomes = [mail.outcome() for mail in self.mails if mail.id not in self.written]
        self.still_ours |= record_outcomes(outcomes, claim=self.claim, reviews=self.reviews)
        self.journal.discard()  # written down: what the journal kept is no longer needed
        if requeue := [mail.id for mail in untouched if mail.id in self.still_ours]:
            _enqueue(requeue)
        # Also when interrupted: this batch may have settled the run's last rows.
        finish_run_if_complete(run_id=self.run_id)

    def finish(self) -> BatchResult:
        """Queue what waits for a retry, act on a stop (quota, pause), and count the outcomes."""
        again = [mail for mail in self.mails if mail.status == Delivery.Status.PENDING and mail.attempts]
        if again and self.stop is None:
            # Throttled or hit by passing errors through every retry: give SES a
            # moment, then a later batch tries these again.
            _enqueue([mail.id for mail in again], countdown=5 * max(mail.attempts for mail in again))
        if self.stop is SendOutcome.QUOTA:
            defer_pending_deliveries(run_id=self.run_id, reason=QUOTA_REASON)
            finish_run_if_complete(run_id=self.run_id)
        elif self.stop is SendOutcome.PAUSED:
            pause_sending(reason="SES paused sending for this account")
        result = BatchResult(claimed=self.claimed)
        for mail in self.mails:
            if mail.status in {"sent", "failed", "skipped"}:
                setattr(result, mail.status, getattr(result, mail.status) + 1)
        return result


def _enqueue(ids: list[int], *, countdown: float = 0) -> None:
    from mailer.tasks import send_delivery_batch as send_delivery_batch_task

    if countdown:
        send_delivery_batch_task.apply_async(kwargs={"ids": ids}, countdown=countdown)
    else:
        send_delivery_batch_task.delay(ids=ids)


def _hold_back(mail: OutgoingMail, stop: SendOutcome) -> None:
    """A mail after the batch stopped: deferred past the quota, or kept pending through a pause."""
    if stop is SendOutcome.QUOTA:
        mail.status, mail.reason = Delivery.Status.DEFERRED, QUOTA_REASON
    else:
        mail.status = Delivery.Status.PENDING


def _send_one(mail: OutgoingMail, sending: _Sending) -> SendOutcome | None:
    """Send one mail through the gate and set its outcome; returns QUOTA or PAUSED when the batch must stop."""
    # An announcement is to the person: one of their subscriptions ending does not stop it.
    subscribed = mail.announcement_id is not None or mail.subscription_active
    if not subscribed or mail.subscriber_status != Subscriber.Status.ACTIVE:
        mail.status, mail.reason = Delivery.Status.SKIPPED, "unsubscribed before the send"
        return None
    if mail.announcement_id is not None:
        kind, build, picked = "announcement", _announcement_builder(mail, sending), []
    else:
        picked = [sending.questions[qid] for qid in mail.question_ids if qid in sending.questions]
        if not picked:
            mail.status, mail.reason = Delivery.Status.SKIPPED, "questions were deleted"
            return None
        kind, build = "daily_question", _daily_builder(mail, sending, picked)
    try:
        result = send_built_email(
            kind=kind,
            to=mail.email,
            build=build,
            priority=pacing.BULK,
            gate=sending.gate,
            rate=sending.rate,
            tags={DELIVERY_TAG: str(mail.id)},
        )
    except SendFailed as exc:
        return _not_sent(mail, exc)
    except SoftTimeLimitExceeded:
        raise  # the batch's time is up: Batch.send settles the rows
    except Exception as exc:  # rendering or a bug: recorded on the row; the batch goes on
        logger.exception("delivery %s failed", mail.id)
        mail.status, mail.reason = Delivery.Status.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
        return None
    if result.refused:
        mail.status, mail.reason = Delivery.Status.SKIPPED, result.refused
        return None
    mail.status = Delivery.Status.SENT
    mail.reason = ""
    mail.ses_message_id = result.message_id
    mail.sent_at = timezone.now()
    if picked:  # an announcement moves no cursor
        mail.next_position = picked[-1].position + 1
    return None


def _daily_builder(mail: OutgoingMail, sending: _Sending, picked: list[Question]):
    return lambda: build_daily_email(
        subscriber_id=mail.subscriber_id,
        email=mail.email,
        language=mail.language,
        category=mail.category,
        day=mail.day,
        questions=picked,
        reviews=[sending.questions[qid] for qid in mail.review_question_ids if qid in sending.questions],
        subscription_id=mail.subscription_id,
        connection=sending.connection,
        reader_links=sending.reader_links,
        link_generation=mail.link_generation,
    )


def _announcement_builder(mail: OutgoingMail, sending: _Sending):
    return lambda: build_announcement_email(
        announcement=sending.announcements[mail.announcement_id],
        subscriber_id=mail.subscriber_id,
        email=mail.email,
        language=mail.language,
        connection=sending.connection,
        reader_links=sending.reader_links,
        link_generation=mail.link_generation,
    )


def _not_sent(mail: OutgoingMail, exc: SendFailed) -> SendOutcome | None:
    """Set the outcome of a mail SES did not take; returns QUOTA or PAUSED when the batch must stop."""
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


def record_outcomes(
    outcomes: list[Outcome], *, claim: str, reviews: dict[int, tuple[date, list[int]]] | None = None
) -> set[int]:
    """Write how each mail ended, move the cursors of those sent and record their reviews sent;
    returns the ids still claimed.

    Rows the sweeper took back (the batch outlived its lease) are its to
    report now, not ours: neither they nor their cursors nor their reviews
    are written. `reviews`: each delivery's send day and review question ids,
    when the caller has them (a batch); else they are read, in one query.
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
        sent = {o.id: o.subscription_id for o in outcomes if o.status == Delivery.Status.SENT and o.id in still_ours}
        record_delivered_reviews(sent, reviews=reviews)
    return still_ours


def record_delivered_reviews(sent: dict[int, int], *, reviews: dict[int, tuple[date, list[int]]] | None = None) -> int:
    """Record the reviews carried by the deliveries just settled as sent (delivery id -> subscription id).

    Every path that settles a delivery as sent comes here (a batch, the
    sweeper, a confirmation by SES's Send event), so its reviews move on
    exactly once: record_reviews_sent counts a review once per send day.
    """
    if not sent:
        return 0
    if reviews is None:
        reviews = {
            delivery_id: (day, review_ids)
            for delivery_id, day, review_ids in Delivery.objects.filter(id__in=list(sent)).values_list(
                "id", "run__day", "review_question_ids"
            )
        }
    by_day: dict[date, list[tuple[int, int]]] = {}
    for delivery_id, subscription_id in sent.items():
        day, review_ids = reviews.get(delivery_id, (None, ()))
        for question_id in review_ids:
            by_day.setdefault(day, []).append((subscription_id, question_id))
    return sum(record_reviews_sent(pairs=pairs, day=day) for day, pairs in by_day.items())

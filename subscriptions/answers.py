"""The reader's loop: following a question's link, answering, rating, and reviews sent.

The answer page and the send path call these; the schedule itself is
subscriptions/reviews.py. An answer is the reader's own: it is reached only
through their signed link and goes with their subscription.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailservice import ratelimit
from mailservice.ratelimit import Rate
from subscriptions import reviews
from subscriptions.models import ANSWER_MAX_LENGTH, Answer, Rating, UnsubscribeReason
from subscriptions.selectors import AnswerTarget

UNSUBSCRIBE_REASON_DETAIL_MAX_LENGTH = 500
# A reason is counted once per unsubscribe; the marker outlives any second thought.
_REASON_ONCE_FOR = timedelta(days=90)


def limit_reader_page(*, client_ip: str | None) -> None:
    """Raise RateLimited past READER_PAGE_REQUESTS_PER_CLIENT_PER_MINUTE (tokens are not guessable, but
    each request reads the database)."""
    rate = Rate(settings.READER_PAGE_REQUESTS_PER_CLIENT_PER_MINUTE, 60)
    ratelimit.hit("reader-page", ratelimit.client_identity(client_ip), rate)


def open_from_mail(*, target: AnswerTarget) -> Answer:
    """The reader followed the question's link: their answer row, made (and counted as opened) the first time."""
    answer = Answer.objects.filter(subscription_id=target.subscription_id, question_id=target.question.id).first()
    if answer is not None:
        return answer
    try:
        with transaction.atomic():
            return Answer.objects.create(
                subscription_id=target.subscription_id, question=target.question, opened_from_mail_at=timezone.now()
            )
    except IntegrityError:  # the same link opened twice at once
        return Answer.objects.get(subscription_id=target.subscription_id, question_id=target.question.id)


def clean_answer_text(text: object) -> str:
    if not isinstance(text, str):
        text = ""
    text = text.replace("\r\n", "\n").strip()
    if len(text) > ANSWER_MAX_LENGTH:
        raise ValidationError(
            _("Your answer is %(length)d characters long; at most %(max)d fit. Shorten it and try again."),
            code="too_long",
            params={"length": len(text), "max": ANSWER_MAX_LENGTH},
        )
    return text


def reveal_answer(*, target: AnswerTarget, text: object = None) -> Answer:
    """Show the model answer; keep the reader's own `text` when they wrote one (None: just show it).

    Raises ValidationError (nothing saved) for an answer that is too long.
    """
    cleaned = None if text is None else clean_answer_text(text)
    answer = open_from_mail(target=target)
    fields = {"revealed_at": timezone.now(), "updated_at": timezone.now()}
    if cleaned:
        fields["text"] = cleaned
    Answer.objects.filter(id=answer.id).update(**fields)
    answer.refresh_from_db()
    return answer


def rate_answer(*, target: AnswerTarget, rating: object, today: date | None = None) -> Answer:
    """Record the reader's rating (a new one replaces the old) and schedule the review it asks for.

    Raises ValidationError (nothing saved) for a rating that is not knew, partly or again.
    """
    if rating not in Rating.values:
        raise ValidationError(_("Choose one of the three answers."), code="rating")
    today = today or timezone.localdate()
    now = timezone.now()
    answer = open_from_mail(target=target)
    with transaction.atomic():
        answer = Answer.objects.select_for_update().get(id=answer.id)
        schedule = reviews.after_rating(rating=rating, rated_on=today, review_step=answer.review_step)
        answer.rating = rating
        answer.rated_at = now
        answer.revealed_at = answer.revealed_at or now
        answer.review_step = schedule.review_step
        answer.next_review_on = schedule.next_review_on
        answer.save(update_fields=["rating", "rated_at", "revealed_at", "review_step", "next_review_on", "updated_at"])
    return answer


def record_reviews_sent(*, pairs: Iterable[tuple[int, int]], day: date) -> int:
    """Mark the reviews of (subscription id, question id) `pairs` as sent on `day`; returns how many were new.

    Idempotent: a review already recorded on `day` (a retried batch, a second
    trigger) counts once and moves nothing. Each recorded review is due again
    one interval later (reviews.after_review_sent) and starts a new round on
    the answer page, with the model answer hidden until the reader asks.
    Only reviews still scheduled are touched: one rated "knew" meanwhile stays retired.
    """
    pairs = set(pairs)
    if not pairs:
        return 0
    recorded = 0
    with transaction.atomic():
        # A superset by the two id lists (an OR of one clause per pair plans slowly), narrowed here.
        candidates = (
            Answer.objects.select_for_update()
            .filter(
                subscription_id__in={subscription_id for subscription_id, _q in pairs},
                question_id__in={question_id for _s, question_id in pairs},
                next_review_on__isnull=False,
            )
            .filter(Q(last_review_on__isnull=True) | ~Q(last_review_on=day))
            .values_list("id", "subscription_id", "question_id", "review_step")
        )
        rows = [(answer_id, step) for answer_id, s_id, q_id, step in candidates if (s_id, q_id) in pairs]
        by_step = defaultdict(list)
        for answer_id, step in rows:
            by_step[step].append(answer_id)
        now = timezone.now()
        for step, ids in by_step.items():
            schedule = reviews.after_review_sent(sent_on=day, review_step=step)
            recorded += Answer.objects.filter(id__in=ids).update(
                review_step=schedule.review_step,
                next_review_on=schedule.next_review_on,
                last_review_on=day,
                reviews_sent=F("reviews_sent") + 1,
                revealed_at=None,
                updated_at=now,
            )
    return recorded


def record_unsubscribe_reason(*, subscriber_id: int, unsubscribed_at, reason: object, detail: object = "") -> bool:
    """Count why someone left, once per unsubscribe; stored without any link to them.

    Returns False when this unsubscribe already gave its reason. Raises
    ValidationError for a reason not on the list or a detail that is too long.
    """
    if reason not in UnsubscribeReason.Reason.values:
        raise ValidationError(_("Choose one of the reasons."), code="reason")
    detail = detail.strip() if isinstance(detail, str) and reason == UnsubscribeReason.Reason.OTHER else ""
    if len(detail) > UNSUBSCRIBE_REASON_DETAIL_MAX_LENGTH:
        raise ValidationError(
            _("Please keep it under %(max)d characters."),
            code="too_long",
            params={"max": UNSUBSCRIBE_REASON_DETAIL_MAX_LENGTH},
        )
    marker = f"{subscriber_id}:{unsubscribed_at.isoformat() if unsubscribed_at else ''}"
    try:
        ratelimit.hit("unsubscribe-reason", marker, Rate(1, int(_REASON_ONCE_FOR.total_seconds())))
    except ratelimit.RateLimited:
        return False
    UnsubscribeReason.objects.create(reason=reason, detail=detail)
    return True

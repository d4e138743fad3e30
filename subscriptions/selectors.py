import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from email.utils import parseaddr

from botocore.loaders import create_loader
from django.conf import settings
from django.db.models import Case, Exists, OuterRef, Q, QuerySet, TextChoices, Value, When
from django.utils.translation import gettext_lazy as _

from mailer.models import Delivery, Question, SESEvent, Suppression
from mailer.retention import retention
from subscriptions import tokens, tracks
from subscriptions.models import Answer, Subscriber, Subscription


@dataclass(frozen=True)
class TokenTarget:
    subscriber: Subscriber
    category: str | None


def subscriber_for_token(*, purpose: tokens.Purpose, token: str) -> TokenTarget | None:
    """Who a manage or unsubscribe link belongs to; None for a bad or stale link.

    A link of an earlier link generation (the subscription it was mailed for
    has ended and a new one begun) is stale, but an unsubscribe link stays
    good for OLD_UNSUBSCRIBE_LINKS_WORK_FOR after it was made.
    """
    try:
        payload = tokens.read_token(purpose, token)
    except tokens.BadToken:
        return None
    subscriber = Subscriber.objects.filter(id=payload.get("s")).first()
    if subscriber is None:
        return None
    if payload.get("g", 0) != subscriber.link_generation and not _recent_unsubscribe_link(purpose, token):
        return None
    category = payload.get("c")
    return TokenTarget(subscriber=subscriber, category=category if isinstance(category, str) else None)


def _recent_unsubscribe_link(purpose: tokens.Purpose, token: str) -> bool:
    if purpose != tokens.Purpose.UNSUBSCRIBE:
        return False
    try:
        tokens.read_token(purpose, token, max_age=tokens.OLD_UNSUBSCRIBE_LINKS_WORK_FOR)
    except tokens.BadToken:
        return False
    return True


@dataclass(frozen=True)
class AnswerTarget:
    subscription_id: int
    subscriber: Subscriber
    question: Question


def answer_target_for_token(*, token: str) -> AnswerTarget | None:
    """Whose question an answer link opens; None for a bad or stale link, or a question since deleted.

    Stale as a manage link is: of an earlier link generation.
    """
    try:
        payload = tokens.read_token(tokens.Purpose.ANSWER, token)
    except tokens.BadToken:
        return None
    subscription_id, question_id = payload.get("u"), payload.get("q")
    if not isinstance(subscription_id, int) or not isinstance(question_id, int):
        return None
    subscription = Subscription.objects.select_related("subscriber").filter(id=subscription_id).first()
    question = Question.objects.filter(id=question_id).first()
    if subscription is None or question is None or question.category != subscription.category:
        return None
    if payload.get("g", 0) != subscription.subscriber.link_generation:
        return None
    return AnswerTarget(subscription_id=subscription.id, subscriber=subscription.subscriber, question=question)


def answer_for(*, target: AnswerTarget) -> Answer | None:
    return Answer.objects.filter(subscription_id=target.subscription_id, question_id=target.question.id).first()


def due_reviews(
    *, subscription_ids: Iterable[int], day: date, excluding: Mapping[int, Iterable[int]] | Iterable[int] = ()
) -> dict[int, list[int]]:
    """Per subscription, the ids of the questions due for review on `day`, the longest due first.

    Due: rated partly or again, its review day reached, and no review of it
    sent on `day` already. `excluding` leaves out what the day's mail carries
    as new: question ids per subscription id, or ids for every subscription.
    The send path puts the first in a daily mail and all of them in a weekly
    digest. One query.
    """
    ids = list(subscription_ids)
    found: dict[int, list[int]] = {}
    if not ids:
        return found
    per_subscription = (
        {subscription_id: set(question_ids) for subscription_id, question_ids in excluding.items()}
        if isinstance(excluding, Mapping)
        else {}
    )
    rows = Answer.objects.filter(subscription_id__in=ids, next_review_on__lte=day).exclude(last_review_on=day)
    if not isinstance(excluding, Mapping):
        rows = rows.exclude(question_id__in=list(excluding))
    rows = rows.order_by("subscription_id", "next_review_on", "rated_at", "id").values_list(
        "subscription_id", "question_id"
    )
    for subscription_id, question_id in rows:
        if question_id not in per_subscription.get(subscription_id, ()):
            found.setdefault(subscription_id, []).append(question_id)
    return found


@dataclass(frozen=True)
class ReaderQuestion:
    question: Question
    subscription_id: int
    answer: Answer | None

    @property
    def due(self) -> bool:
        return bool(self.answer and self.answer.next_review_on)


def reader_questions(*, subscriber: Subscriber, today: date, due_only: bool = False, limit: int = 200):
    """The questions mailed to `subscriber`, newest first, each with their answer, rating and next review.

    With `due_only`, only those whose review day has come.
    """
    subscriptions = dict(subscriber.subscriptions.values_list("category", "id"))
    question_ids: list[int] = []
    deliveries = (
        Delivery.objects.filter(subscription__subscriber=subscriber, status=Delivery.Status.SENT)
        .order_by("-sent_at")
        .values_list("question_ids", flat=True)[:limit]
    )
    for delivered in deliveries:
        question_ids.extend(reversed(delivered))
    questions = Question.objects.in_bulk(question_ids)
    answers = {
        answer.question_id: answer
        for answer in Answer.objects.filter(subscription_id__in=subscriptions.values(), question_id__in=question_ids)
    }
    listed = []
    for question_id in dict.fromkeys(question_ids):
        question = questions.get(question_id)
        if question is None or question.category not in subscriptions:
            continue
        answer = answers.get(question_id)
        if due_only and not (answer and answer.next_review_on and answer.next_review_on <= today):
            continue
        listed.append(
            ReaderQuestion(question=question, subscription_id=subscriptions[question.category], answer=answer)
        )
    return listed


def unsubscribe_scope(*, category: object) -> str | None:
    """The category an unsubscribe ends, or None for all of them.

    A category DailyQ does not have (a forged form, a mangled link) ends
    everything: in doubt, mail stops. A retired track is still one it has.
    """
    track = tracks.get(category)
    return track.slug if track else None


def active_categories(*, subscriber: Subscriber) -> list[str]:
    """The tracks the subscriber is mailed, in the operator's order."""
    mailed = set(subscriber.subscriptions.mailed().values_list("category", flat=True))
    return [track.slug for track in tracks.offered() if track.slug in mailed]


@dataclass(frozen=True)
class PrivacyPolicy:
    operator: str
    officer: str
    contact_email: str
    ses_region: str
    ses_region_name: str
    code_minutes: int
    delivery_days: int
    event_days: int
    verification_days: int


def privacy_policy() -> PrivacyPolicy:
    """What /privacy/ names, from settings: unset, the operator is DailyQ and the contact the sender."""
    operator = settings.OPERATOR_NAME or "DailyQ"
    kept = retention()
    return PrivacyPolicy(
        operator=operator,
        officer=settings.PRIVACY_OFFICER_NAME or operator,
        contact_email=settings.PRIVACY_CONTACT_EMAIL or parseaddr(settings.DEFAULT_FROM_EMAIL)[1],
        ses_region=settings.AWS_SES_REGION_NAME,
        ses_region_name=aws_region_name(settings.AWS_SES_REGION_NAME),
        code_minutes=max(1, settings.VERIFICATION_CODE_TTL_SECONDS // 60),
        delivery_days=kept.deliveries_days,
        event_days=kept.events_days,
        verification_days=kept.verifications_days,
    )


@functools.cache
def aws_region_name(region: str) -> str:
    """AWS's own name for a region ("Asia Pacific (Seoul)"), from botocore's endpoint data; "" if unknown."""
    for partition in create_loader().load_data("endpoints")["partitions"]:
        if region in partition["regions"]:
            return partition["regions"][region]["description"]
    return ""


class MailState(TextChoices):
    """Whether a subscriber gets mail from the next send, and if not, why (the admin's list says it)."""

    GETS_MAIL = "gets_mail", _("Gets mail")
    SUPPRESSED = "suppressed", _("Suppressed: no mail")
    PENDING = "pending", _("Pending: no mail until confirmed")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed: no mail")
    NO_CATEGORY = "no_category", _("No active category: no mail")  # none, or only retired tracks


def with_mail_state(queryset: QuerySet) -> QuerySet:
    """Subscribers annotated with `mail_state` (MailState): a suppression outranks the status.

    A bounce or complaint suppresses the address, so a hard-bounced reader
    shows as suppressed however their status reads.
    """
    suppressed = Exists(Suppression.objects.filter(email=OuterRef("email"), lifted_at__isnull=True))
    reading = Exists(Subscription.objects.mailed().filter(subscriber=OuterRef("pk")))
    return queryset.annotate(
        mail_state=Case(
            When(suppressed, then=Value(MailState.SUPPRESSED)),
            When(status=Subscriber.Status.PENDING, then=Value(MailState.PENDING)),
            When(status=Subscriber.Status.UNSUBSCRIBED, then=Value(MailState.UNSUBSCRIBED)),
            When(~reading, then=Value(MailState.NO_CATEGORY)),
            default=Value(MailState.GETS_MAIL),
        )
    )


def subscriber_deliveries(*, subscriber: Subscriber, limit: int = 50):
    """The subscriber's deliveries, newest run first, with their run and subscription."""
    return (
        Delivery.objects.filter(subscription__subscriber=subscriber)
        .select_related("run", "subscription")
        .order_by("-run__day", "id")[:limit]
    )


def subscriber_events(*, subscriber: Subscriber, limit: int = 50):
    """SES events about the subscriber's address or their deliveries, newest first."""
    return SESEvent.objects.filter(
        Q(email=subscriber.email) | Q(delivery__subscription__subscriber=subscriber)
    ).order_by("-received_at")[:limit]

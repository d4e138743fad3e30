import functools
from dataclasses import dataclass
from email.utils import parseaddr

from botocore.loaders import create_loader
from django.conf import settings

from mailer.retention import retention
from subscriptions import tokens
from subscriptions.models import Category, Subscriber


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


def unsubscribe_scope(*, category: object) -> str | None:
    """The category an unsubscribe ends, or None for all of them.

    A category DailyQ does not have (a retired one in an old link, a forged
    form) ends everything: in doubt, mail stops.
    """
    return category if isinstance(category, str) and category in Category.values else None


def active_categories(*, subscriber: Subscriber) -> list[str]:
    return list(subscriber.subscriptions.filter(is_active=True).order_by("category").values_list("category", flat=True))


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

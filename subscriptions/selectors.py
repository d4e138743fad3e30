from dataclasses import dataclass

from subscriptions import tokens
from subscriptions.models import Subscriber


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


def active_categories(*, subscriber: Subscriber) -> list[str]:
    return list(subscriber.subscriptions.filter(is_active=True).order_by("category").values_list("category", flat=True))

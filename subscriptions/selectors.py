from dataclasses import dataclass

from subscriptions import tokens
from subscriptions.models import Subscriber


@dataclass(frozen=True)
class TokenTarget:
    subscriber: Subscriber
    category: str | None


def subscriber_for_token(*, purpose: tokens.Purpose, token: str) -> TokenTarget | None:
    """Who a manage or unsubscribe link belongs to; None for a bad or stale link."""
    try:
        payload = tokens.read_token(purpose, token)
    except tokens.BadToken:
        return None
    subscriber = Subscriber.objects.filter(id=payload.get("s")).first()
    if subscriber is None:
        return None
    category = payload.get("c")
    return TokenTarget(subscriber=subscriber, category=category if isinstance(category, str) else None)


def active_categories(*, subscriber: Subscriber) -> list[str]:
    return list(subscriber.subscriptions.filter(is_active=True).order_by("category").values_list("category", flat=True))

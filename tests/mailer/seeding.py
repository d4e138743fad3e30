"""Fast test data for the fault suite: thousands of active subscriptions in a few queries."""

from subscriptions.models import Subscriber, Subscription
from tests.factories import LONG_AGO


def seed_subscribers(count: int, *, prefix: str = "reader") -> int:
    since = LONG_AGO
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(
            email=f"{prefix}{n}@example.org",
            status=Subscriber.Status.ACTIVE,
            frequency="daily",
            consented_at=since,
            confirmed_at=since,
        )
        for n in range(count)
    )
    Subscription.objects.bulk_create(
        Subscription(subscriber=s, category="backend" if n % 2 else "frontend", activated_at=since)
        for n, s in enumerate(subscribers)
    )
    return count

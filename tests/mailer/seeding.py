"""Fast test data for the fault suite: thousands of active subscriptions in a few queries."""

from datetime import timedelta

from django.utils import timezone

from subscriptions.models import Subscriber, Subscription


def seed_subscribers(count: int, *, prefix: str = "reader") -> int:
    since = timezone.now() - timedelta(days=7)
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

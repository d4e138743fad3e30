"""A subscriber's own changes once confirmed: their categories and frequency (the
manage page), and unsubscribing from one category or all of them (the manage
page, the mail's link and its one-click header, the admin, an SES complaint).

A category switched on starts as confirming starts it (services.activate_subscription).
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from subscriptions.models import Subscriber
from subscriptions.selectors import unsubscribe_scope
from subscriptions.services import activate_subscription, clean_choices


def update_preferences(*, subscriber: Subscriber, categories: list[str], frequency: str) -> Subscriber:
    """Set an active subscriber's categories and frequency (from the manage page)."""
    categories, frequency = clean_choices(categories=categories, frequency=frequency)
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(id=subscriber.id)
        if subscriber.status != Subscriber.Status.ACTIVE:
            raise ValidationError(_("This subscription has ended; subscribe again on the front page."))
        subscriber.frequency = frequency
        subscriber.save(update_fields=["frequency", "updated_at"])
        for category in categories:
            activate_subscription(subscriber=subscriber, category=category, now=now)
        subscriber.subscriptions.filter(is_active=True).exclude(category__in=categories).update(
            is_active=False, deactivated_at=now
        )
    return subscriber


def unsubscribe(*, subscriber: Subscriber, category: str | None = None) -> Subscriber:
    """End the subscription to `category`, or to all of them (selectors.unsubscribe_scope). Repeating it is harmless."""
    category = unsubscribe_scope(category=category)
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(id=subscriber.id)
        subscriptions = subscriber.subscriptions.filter(is_active=True)
        if category is not None:
            subscriptions = subscriptions.filter(category=category)
        subscriptions.update(is_active=False, deactivated_at=now)
        if not subscriber.subscriptions.filter(is_active=True).exists() and (
            subscriber.status == Subscriber.Status.ACTIVE
        ):
            subscriber.status = Subscriber.Status.UNSUBSCRIBED
            subscriber.unsubscribed_at = now
            subscriber.save(update_fields=["status", "unsubscribed_at", "updated_at"])
    return subscriber

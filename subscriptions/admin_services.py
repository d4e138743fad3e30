"""The admin's writes to subscribers and subscriptions: a fresh verification mail
(an action on the list), and subscribers and subscriptions added or edited by hand.

They follow the rules every door does, through the services that hold them
(services.open_verification, services.activate_subscription), as the CSV
import (importing.py) does.
"""

from django.db import transaction
from django.utils import timezone

from mailer.selectors import start_position
from subscriptions import tracks
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import activate_subscription, open_verification

# --- Actions ----------------------------------------------------------------------------


def send_new_verification(*, subscriber: Subscriber) -> bool:
    """Mail a pending or unsubscribed subscriber a fresh code (an admin's action).

    Uses the choices of their newest request, or their saved settings.
    Returns False for an active subscriber, who needs no code.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(id=subscriber.id)
        if subscriber.status == Subscriber.Status.ACTIVE:
            return False
        previous = subscriber.verifications.order_by("-created_at").first()
        categories = previous.categories if previous else tracks.offered_slugs()[:1]
        frequency = previous.frequency if previous else subscriber.frequency
        open_verification(
            subscriber=subscriber, categories=categories, frequency=frequency, language=subscriber.language
        )
    return True


# --- Edits ------------------------------------------------------------------------------


def add_subscriber(*, subscriber: Subscriber) -> Subscriber:
    """Save a subscriber an admin added by hand, as pending or as active.

    Added as active, they count as consenting and confirmed now, on the
    admin's word that they agreed to receive DailyQ (as the CSV import with
    stated consent): no verification mail. A pending one gets mail only
    after confirming a verification mail the admin sends them.
    """
    if subscriber.status not in (Subscriber.Status.PENDING, Subscriber.Status.ACTIVE):
        raise ValueError(f"a new subscriber is pending or active, not {subscriber.status}")
    if subscriber.status == Subscriber.Status.ACTIVE:
        subscriber.consented_at = subscriber.confirmed_at = timezone.now()
    subscriber.save()
    return subscriber


def save_subscription(*, subscription: Subscription) -> Subscription:
    """Save a subscription as an admin added or edited it.

    Switching one on, a new one included, starts it as confirming does
    (activate_subscription): a new subscription begins at its category's start position
    and counts as active from now, so the daily send picks it up while its
    subscriber is active; one switched back on goes on where it stopped.
    Switching one off records when.
    """
    now = timezone.now()
    with transaction.atomic():
        was_active = (
            subscription.pk is not None
            and Subscription.objects.select_for_update().filter(pk=subscription.pk, is_active=True).exists()
        )
        if subscription.pk is None:
            subscription.next_position = start_position(category=subscription.category)
            subscription.activated_at = subscription.deactivated_at = None
        if subscription.is_active and not was_active:
            # Saved as it was edited but off, then switched on by activate_subscription, the
            # one place that starts subscriptions.
            subscription.is_active = False
            subscription.save()
            activate_subscription(subscriber=subscription.subscriber, category=subscription.category, now=now)
            subscription.refresh_from_db()
        else:
            if was_active and not subscription.is_active:
                subscription.deactivated_at = now
            subscription.save()
    return subscription

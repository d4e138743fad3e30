"""Changing and ending a subscription: preferences.update_preferences and preferences.unsubscribe."""

import pytest
from django.core.exceptions import ValidationError

from subscriptions import preferences
from subscriptions.models import Subscriber, Subscription


def test_unsubscribe_from_one_category_then_all(confirmed):
    subscriber = confirmed("reader@example.org", categories=["backend", "frontend"])

    preferences.unsubscribe(subscriber=subscriber, category="frontend")
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert list(Subscription.objects.filter(is_active=True).values_list("category", flat=True)) == ["backend"]

    preferences.unsubscribe(subscriber=subscriber)
    preferences.unsubscribe(subscriber=subscriber)  # harmless twice
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert subscriber.unsubscribed_at is not None
    assert not Subscription.objects.filter(is_active=True).exists()


def test_update_preferences_switches_categories_and_frequency(confirmed):
    subscriber = confirmed("reader@example.org", categories=["backend"])
    preferences.update_preferences(subscriber=subscriber, categories=["frontend"], frequency="weekly")
    subscriber.refresh_from_db()
    assert subscriber.frequency == "weekly"
    assert sorted(subscriber.subscriptions.values_list("category", "is_active")) == [
        ("backend", False),
        ("frontend", True),
    ]
    with pytest.raises(ValidationError):
        preferences.update_preferences(subscriber=subscriber, categories=[], frequency="weekly")
    with pytest.raises(ValidationError):
        preferences.update_preferences(subscriber=subscriber, categories=["cooking"], frequency="weekly")

"""Retention: what DailyQ records about mail is kept for a set time, then purged.

The settings (DELIVERY_RETENTION_DAYS, SES_EVENT_RETENTION_DAYS,
VERIFICATION_RETENTION_DAYS) are stated on the privacy page; beat purges
daily and `manage.py purge_expired` does the same on demand.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from mailer.models import Delivery, SendRun, SESEvent
from subscriptions.models import Verification

# Rows deleted per statement: a purge after a long pause does not hold one huge transaction.
CHUNK = 5000


@dataclass(frozen=True)
class Retention:
    deliveries_days: int
    events_days: int
    verifications_days: int


def retention() -> Retention:
    return Retention(
        deliveries_days=settings.DELIVERY_RETENTION_DAYS,
        events_days=settings.SES_EVENT_RETENTION_DAYS,
        verifications_days=settings.VERIFICATION_RETENTION_DAYS,
    )


@dataclass(frozen=True)
class PurgeReport:
    deliveries: int
    events: int
    verifications: int


def purge_expired(*, now: datetime | None = None) -> PurgeReport:
    """Delete deliveries and SES events older than their retention, and verifications dead for longer than theirs.

    A delivery's age is its run's day; an SES event's, when it arrived; a
    verification is dead once confirmed, revoked or expired (one never
    issued counts from when it was made). A run keeps its row and total.
    """
    now = now or timezone.now()
    kept = retention()
    day = timezone.localdate(now - timedelta(days=kept.deliveries_days))
    deliveries = _delete_in_chunks(Delivery.objects.filter(run__in=SendRun.objects.filter(day__lt=day)))
    events = _delete_in_chunks(SESEvent.objects.filter(received_at__lt=now - timedelta(days=kept.events_days)))
    before = now - timedelta(days=kept.verifications_days)
    dead = (
        Q(confirmed_at__lt=before)
        | Q(revoked_at__lt=before)
        | Q(expires_at__lt=before)
        | Q(expires_at__isnull=True, confirmed_at__isnull=True, revoked_at__isnull=True, created_at__lt=before)
    )
    verifications = _delete_in_chunks(Verification.objects.filter(dead))
    return PurgeReport(deliveries=deliveries, events=events, verifications=verifications)


def _delete_in_chunks(queryset) -> int:
    deleted = 0
    while ids := list(queryset.order_by().values_list("id", flat=True)[:CHUNK]):
        deleted += queryset.model.objects.filter(id__in=ids).delete()[0]
    return deleted

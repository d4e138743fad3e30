"""Suppressions: the addresses DailyQ must not mail (mailer.selectors.is_suppressed reads them)."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from mailer import selectors
from mailer.models import Suppression
from subscriptions.addresses import canonical_email


def suppress_address(*, email: str, reason: str, detail: str = "") -> Suppression:
    """Stop all mail to `email`, in any spelling; a second call keeps the first suppression.

    Raises ValidationError for what is not an address DailyQ could mail.
    """
    email = canonical_email(email)
    try:
        with transaction.atomic():
            return Suppression.objects.create(email=email, reason=reason, detail=detail[:2000])
    except IntegrityError:
        return Suppression.objects.get(email=email, lifted_at__isnull=True)


def lift_suppression(*, email: str) -> int:
    """Allow mail to `email` again; returns how many suppressions were lifted."""
    return Suppression.objects.filter(email=selectors.address_key(email), lifted_at__isnull=True).update(
        lifted_at=timezone.now()
    )

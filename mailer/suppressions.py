"""Suppressions: the addresses DailyQ must not mail (mailer.selectors.is_suppressed reads them)."""

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from mailer import selectors
from mailer.models import Suppression
from subscriptions.addresses import address_hash, canonical_email


def suppress_address(*, email: str, reason: str, detail: str = "") -> Suppression:
    """Stop all mail to `email`, in any spelling; a second call keeps the first suppression.

    The address of an erased reader (a bounce arriving after the erasure) is
    suppressed by its hash alone, so DailyQ does not store it again.
    Raises ValidationError for what is not an address DailyQ could mail.
    """
    email = canonical_email(email)
    hashed = address_hash(email)
    if selectors.erased_addresses(emails=[email]):
        email, detail = "", ""
    try:
        with transaction.atomic():
            return Suppression.objects.create(email=email, email_hash=hashed, reason=reason, detail=detail[:2000])
    except IntegrityError:
        return Suppression.objects.get(email_hash=hashed, lifted_at__isnull=True)


def lift_suppression(*, email: str) -> int:
    """Allow mail to `email` again; returns how many suppressions were lifted."""
    return Suppression.objects.filter(email_hash=address_hash(email), lifted_at__isnull=True).update(
        lifted_at=timezone.now()
    )


def lift_suppressions(*, ids: Iterable[int]) -> int:
    """Lift these suppressions (an admin's choice, erased addresses' too); returns how many were in force."""
    return Suppression.objects.filter(id__in=list(ids), lifted_at__isnull=True).update(lifted_at=timezone.now())

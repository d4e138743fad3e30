from django.db import IntegrityError, transaction
from django.utils import timezone

from mailer.models import Suppression


def suppress_address(*, email: str, reason: str, detail: str = "") -> Suppression:
    """Stop all mail to `email`; a second call keeps the first suppression."""
    try:
        with transaction.atomic():
            return Suppression.objects.create(email=email, reason=reason, detail=detail[:2000])
    except IntegrityError:
        return Suppression.objects.get(email__iexact=email, lifted_at__isnull=True)


def lift_suppression(*, email: str) -> int:
    """Allow mail to `email` again; returns how many suppressions were lifted."""
    return Suppression.objects.filter(email__iexact=email, lifted_at__isnull=True).update(lifted_at=timezone.now())

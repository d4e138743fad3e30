"""Erasing a person on request: their data goes, what the operator needs without them stays.

Gone: the subscriber, their subscriptions, verifications and addresses set
aside for them, and their address wherever it was kept (SES events,
suppressions, the reasons on deliveries). Kept without the person: their
deliveries as anonymous rows (so a run's counts and the statistics stay
right), their SES events without the address, and a suppression as the keyed
hash of the address (mailer.selectors.suppressed_addresses checks it), so a
suppressed address stays suppressed. The hash of the address is remembered
(ErasedAddress) so that an SES event arriving later does not store it again.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mailer.models import Delivery, ErasedAddress, SESEvent, Suppression
from subscriptions.addresses import ERASED, address_hash, canonical_email, redact_addresses
from subscriptions.models import SetAsideAddress, Subscriber

_UNSENT = [Delivery.Status.PENDING, Delivery.Status.SENDING, Delivery.Status.DEFERRED]


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure removed (subscribers) and kept without the person."""

    subscribers: int = 0
    deliveries: int = 0  # kept, anonymous
    events: int = 0  # kept, without the address
    suppressions: int = 0  # kept as the hash of the address

    @property
    def found(self) -> bool:
        return bool(self.subscribers or self.deliveries or self.events or self.suppressions)


def erase_address(*, email: str) -> ErasureReport:
    """Erase everything DailyQ keeps about `email`, in any spelling. Erasing again is harmless.

    Raises ValidationError for what is not an address DailyQ could have kept.
    """
    email = canonical_email(email)
    with transaction.atomic():
        subscriber_ids = list(Subscriber.objects.select_for_update().filter(email=email).values_list("id", flat=True))
        return _erase(email=email, subscriber_ids=subscriber_ids)


def erase_subscribers(*, subscriber_ids: Iterable[int]) -> list[ErasureReport]:
    """Erase these subscribers (an admin's choice), each with everything kept about their address."""
    reports = []
    for subscriber_id in subscriber_ids:
        with transaction.atomic():
            subscriber = Subscriber.objects.select_for_update().filter(id=subscriber_id).first()
            if subscriber is not None:
                reports.append(_erase(email=subscriber.email, subscriber_ids=[subscriber.id]))
    return reports


def _erase(*, email: str, subscriber_ids: list[int]) -> ErasureReport:
    # Other spellings of the address set aside when addresses became canonical
    # (subscriptions migration 0002) belong to the same person.
    set_aside = SetAsideAddress.objects.filter(Q(kept_by_id__in=subscriber_ids) | Q(email__iexact=email))
    spellings = {email, *(spelling.lower() for spelling in set_aside.values_list("email", flat=True))}
    subscriber_ids = sorted({*subscriber_ids, *set_aside.values_list("subscriber_id", flat=True)})

    deliveries = Delivery.objects.filter(subscription__subscriber_id__in=subscriber_ids)
    delivery_ids = list(deliveries.values_list("id", flat=True))
    kept = Delivery.objects.filter(id__in=delivery_ids)
    # Never sent now: a worker holding one finds its claim gone and writes nothing over it.
    kept.filter(status__in=_UNSENT).update(status=Delivery.Status.SKIPPED, reason=ERASED, claim="")
    naming = Q()
    for spelling in spellings:
        naming |= Q(reason__icontains=spelling)
    kept.filter(naming).update(reason=ERASED)
    kept.update(subscription=None)

    events = list(SESEvent.objects.filter(Q(delivery_id__in=delivery_ids) | Q(email__in=spellings)))
    for event in events:
        event.email = ""
        event.payload = redact_addresses(event.payload, spellings)
    SESEvent.objects.bulk_update(events, ["email", "payload"], batch_size=500)

    # The hash is set on every suppression; only the address and the detail (SES's words, naming it) go.
    suppressions = Suppression.objects.filter(email__in=spellings).update(email="", detail="")

    subscribers = Subscriber.objects.filter(id__in=subscriber_ids).delete()[1].get(Subscriber._meta.label, 0)
    report = ErasureReport(
        subscribers=subscribers, deliveries=len(delivery_ids), events=len(events), suppressions=suppressions
    )
    if report.found:
        ErasedAddress.objects.update_or_create(email_hash=address_hash(email), defaults={"erased_at": timezone.now()})
    return report

"""Feedback from SES: bounces, complaints, deliveries and Send events, and the reputation guard."""

import json
import logging
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mailer import selectors
from mailer.models import Delivery, SESEvent, Suppression
from mailer.sending.batch import DELIVERY_TAG
from mailer.sending.recovery import LAST_SEND_EVENT_KEY, confirm_sent_deliveries
from mailer.sending.runs import pause_sending
from mailer.suppressions import suppress_address
from subscriptions.addresses import canonical_email, redact_addresses
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)


TRANSIENT_BOUNCES_TO_SUPPRESS = 3  # ...among an address's last 5 deliveries
TRANSIENT_BOUNCE_WINDOW = 5


def record_ses_event(*, notification: dict, message: dict) -> SESEvent | None:
    """Store one SES event from SNS and act on it.

    Permanent bounce: suppress the address. Transient bounce: suppress after
    3 among the address's last 5 deliveries. Complaint: unsubscribe from
    everything and suppress. Delivery: mark the delivery delivered. SNS
    delivers at least once, so an event seen before is ignored. Send: noted
    on the delivery it is tagged with, not stored (record_send_event).
    """
    kind = _event_kind(message)
    if kind == "send":
        record_send_event(message=message)
        return None
    if kind not in SESEvent.Kind.values:
        return None
    with transaction.atomic():
        event = _store_event(kind, notification=notification, message=message)
        if event is None:
            return None  # seen before
        if kind == SESEvent.Kind.DELIVERY:
            if event.delivery and not event.delivery.feedback:
                _set_feedback(event.delivery, Delivery.Feedback.DELIVERED)
            return event
        if kind == SESEvent.Kind.BOUNCE:
            _on_bounce(event, _named_recipients(kind, _mapping(message.get(kind))))
        if kind == SESEvent.Kind.COMPLAINT:
            _on_complaint(event, _named_recipients(kind, _mapping(message.get(kind))))
    check_reputation()
    return event


def _event_kind(message) -> str:
    """The event's kind, lower case ("bounce", "send", ...), or "" when it names none."""
    if not isinstance(message, dict):
        return ""
    kind = message.get("eventType") or message.get("notificationType") or ""
    return kind.lower() if isinstance(kind, str) else ""


def _store_event(kind: str, *, notification: dict, message: dict) -> SESEvent | None:
    """Save the event, tied to the delivery it is about; None when SNS delivered it before."""
    # The addresses are read as SES sent them: one with a character PostgreSQL
    # cannot store (NUL) is no address DailyQ mailed, not the one without it.
    recipients = _named_recipients(kind, _mapping(message.get(kind)))
    # An erased reader's address is not stored again (subscriptions.erasure).
    erased = selectors.erased_addresses(emails=recipients)
    message = redact_addresses(_storable(message), erased)
    ses_message_id = str(_mapping(message.get("mail")).get("messageId", ""))[:200]
    detail = _mapping(message.get(kind))
    try:
        with transaction.atomic():
            return SESEvent.objects.create(
                sns_message_id=str(notification.get("MessageId", ""))[:100] or uuid.uuid4().hex,
                kind=kind,
                bounce_type=str(detail.get("bounceType", ""))[:32] if kind == SESEvent.Kind.BOUNCE else "",
                email=(recipients[0] if recipients and recipients[0] not in erased else "")[:254],
                ses_message_id=ses_message_id,
                delivery=Delivery.objects.filter(ses_message_id=ses_message_id).first() if ses_message_id else None,
                payload=message,
            )
    except IntegrityError:
        return None


def _on_bounce(event: SESEvent, recipients: list[str]) -> None:
    permanent = event.bounce_type == "Permanent"
    if event.delivery:
        _set_feedback(event.delivery, Delivery.Feedback.BOUNCED if permanent else Delivery.Feedback.SOFT_BOUNCED)
    for email in recipients:
        if permanent:
            detail = json_detail(_mapping(event.payload.get("bounce")))
            suppress_address(email=email, reason=Suppression.Reason.BOUNCE, detail=detail)
        elif _transient_bounces(email) >= TRANSIENT_BOUNCES_TO_SUPPRESS:
            suppress_address(
                email=email,
                reason=Suppression.Reason.BOUNCE,
                detail=f"{TRANSIENT_BOUNCES_TO_SUPPRESS} transient bounces among the last "
                f"{TRANSIENT_BOUNCE_WINDOW} deliveries",
            )


def _on_complaint(event: SESEvent, recipients: list[str]) -> None:
    from subscriptions.preferences import unsubscribe

    if event.delivery:
        _set_feedback(event.delivery, Delivery.Feedback.COMPLAINED)
    for email in recipients:
        for subscriber in Subscriber.objects.filter(email=email):
            unsubscribe(subscriber=subscriber)
        detail = json_detail(_mapping(event.payload.get("complaint")))
        suppress_address(email=email, reason=Suppression.Reason.COMPLAINT, detail=detail)


def record_send_event(*, message: dict) -> bool:
    """SES accepted a daily mail (its Send event): note it on the delivery its tag names.

    Every mail of a batch is written down by the batch; this is what tells
    whether one whose worker died mid-send reached SES. The message id and
    time are kept on the delivery (a batch writing its outcomes never
    overwrites them), and a delivery of unknown fate becomes sent now
    (confirm_sent_deliveries). A tag naming a delivery of another reader
    (another deployment's mail on the same configuration set) is ignored.
    Returns whether the event was noted.
    """
    mail = _mapping(message.get("mail"))
    message_id = str(mail.get("messageId", ""))[:200]
    tagged = _sequence(_mapping(mail.get("tags")).get(DELIVERY_TAG))
    if not message_id or len(tagged) != 1 or not str(tagged[0]).isdigit() or len(str(tagged[0])) > 18:
        return False
    # Send events arrive: past its grace period, an unknown delivery without one may be sent again.
    cache.set(LAST_SEND_EVENT_KEY, timezone.now().timestamp(), None)
    delivery_id = int(tagged[0])
    row = (
        Delivery.objects.filter(id=delivery_id)
        .values_list("status", "accepted_message_id", "subscription__subscriber__email")
        .first()
    )
    if row is None or row[0] == Delivery.Status.SENT or row[1] or row[2] is None:
        return False  # written down by its batch already, noted before, or its reader erased
    recipients = {
        address.lower() for address in (_valid_address(a) for a in _sequence(mail.get("destination"))[:50]) if address
    }
    if row[2].lower() not in recipients:
        logger.warning("SES Send event tagged with delivery %s names another recipient: ignored", delivery_id)
        return False
    accepted_at = _event_time(mail.get("timestamp"))
    Delivery.objects.filter(id=delivery_id, accepted_message_id="").exclude(status=Delivery.Status.SENT).update(
        accepted_message_id=message_id, accepted_at=accepted_at
    )
    confirm_sent_deliveries(ids=[delivery_id])
    return True


def _event_time(value) -> datetime:
    """An SES event's time (ISO 8601, UTC), or now when it has none that reads."""
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        return timezone.now()
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def _named_recipients(kind: str, detail: dict) -> list[str]:
    if kind == SESEvent.Kind.BOUNCE:
        named = [_mapping(r).get("emailAddress") for r in _sequence(detail.get("bouncedRecipients"))]
    elif kind == SESEvent.Kind.COMPLAINT:
        named = [_mapping(r).get("emailAddress") for r in _sequence(detail.get("complainedRecipients"))]
    else:
        named = _sequence(detail.get("recipients"))
    return [r for r in (_valid_address(r) for r in named[:50]) if r]


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _sequence(value) -> list:
    return value if isinstance(value, list) else []


def _valid_address(value) -> str | None:
    """An address SES named, in its canonical form, if it is one DailyQ could have mailed."""
    if not isinstance(value, str):
        return None
    try:
        return canonical_email(value)
    except ValidationError:
        return None


def _storable(message: dict) -> dict:
    """The message with what PostgreSQL cannot store (NUL, lone surrogates) removed."""
    text = json.dumps(message, ensure_ascii=False).replace("\\u0000", "")
    return json.loads(text.encode("utf-8", "replace").decode("utf-8"))


def json_detail(detail: dict) -> str:
    return json.dumps(detail, ensure_ascii=False)[:2000]


def _set_feedback(delivery: Delivery, feedback: str) -> None:
    Delivery.objects.filter(id=delivery.id).update(feedback=feedback, feedback_at=timezone.now())


def _transient_bounces(email: str) -> int:
    recent = (
        Delivery.objects.filter(subscription__subscriber__email=email, status=Delivery.Status.SENT)
        .order_by("-sent_at")
        .values_list("feedback", flat=True)[:TRANSIENT_BOUNCE_WINDOW]
    )
    return sum(1 for feedback in recent if feedback == Delivery.Feedback.SOFT_BOUNCED)


def check_reputation() -> bool:
    """Pause the daily send when bounces or complaints near SES's review thresholds."""
    health = selectors.reputation()
    if not health.enough_data:
        return False
    problems = []
    if health.bounce_rate >= settings.REPUTATION_MAX_BOUNCE_RATE:
        problems.append(f"bounce rate {health.bounce_rate:.2%} (limit {settings.REPUTATION_MAX_BOUNCE_RATE:.2%})")
    if health.complaint_rate >= settings.REPUTATION_MAX_COMPLAINT_RATE:
        problems.append(
            f"complaint rate {health.complaint_rate:.2%} (limit {settings.REPUTATION_MAX_COMPLAINT_RATE:.2%})"
        )
    if not problems:
        return False
    return pause_sending(reason=f"Reputation guard over the last {health.sample} deliveries: " + "; ".join(problems))

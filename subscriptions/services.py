"""Subscribing and confirming, and the mails an active subscriber asks for.

Changing and ending subscriptions is preferences.py, the admin's edits
admin_services.py. Every door (web pages, admin actions, the CSV import,
Celery tasks) calls these functions. Two rules shape them:

- No enumeration: what a visitor sees never depends on whether an address is
  new, pending, active or unsubscribed. Only the mail, which reaches the
  address's owner, differs.
- Codes are secrets: a verification code is created by the worker that mails
  it, stored only as an HMAC, and never passes through the broker.
"""

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailer.gate import send_email
from mailer.schedule_text import schedule_text
from mailer.selectors import start_position
from mailer.ses import recipient_allowed
from mailservice import ratelimit
from mailservice.ratelimit import Limit, Rate
from subscriptions import tokens, tracks
from subscriptions.addresses import canonical_email
from subscriptions.links import confirm_url, manage_url, unsubscribe_url
from subscriptions.models import Frequency, Subscriber, Subscription, Verification
from subscriptions.selectors import active_categories

logger = logging.getLogger(__name__)


class InvalidCode(Exception):
    """The code is wrong, expired or used up (one answer for all, on purpose)."""


class InvalidLink(Exception):
    """A confirm link that is forged, expired, used or replaced by a newer one."""


class SandboxRecipientRefused(Exception):
    """SES is in its sandbox and may only mail verified identities."""


class MailServiceUnavailable(Exception):
    """SES did not answer whether it may mail the address: nothing was saved or sent."""


# --- Input --------------------------------------------------------------------


def clean_choices(*, categories, frequency) -> tuple[list[str], str]:
    """The chosen categories (sorted, no repeats) and frequency, or ValidationError."""
    chosen = sorted(set(categories or ()))
    offered = tracks.offered_slugs()
    if not chosen or any(c not in offered for c in chosen):
        raise ValidationError(_("Choose at least one category."), code="categories")
    if frequency not in Frequency.values:
        raise ValidationError(_("Choose daily or weekly mail."), code="frequency")
    return chosen, frequency


def _clean_language(language: str) -> str:
    codes = [code for code, _name in settings.LANGUAGES]
    return language if language in codes else settings.LANGUAGE_CODE


# --- Limits -------------------------------------------------------------------


def _limit_code_requests(*, email: str, client_ip: str | None) -> None:
    """Raise RateLimited when another code may not be mailed yet.

    Counted in the shared cache, identically for known and unknown addresses,
    and all together (a refused request spends nothing):

    - per client (mailservice.ratelimit.client_identity), whatever the
      addresses: VERIFICATION_CODES_PER_IP_PER_HOUR;
    - per address and client: one per VERIFICATION_RESEND_COOLDOWN_SECONDS and
      VERIFICATION_CODES_PER_ADDRESS_AND_CLIENT_PER_HOUR;
    - per address, from all clients: VERIFICATION_CODES_PER_ADDRESS_PER_HOUR,
      the most code mail a mailbox gets.

    Counting per address and client lets the owner of an address that
    strangers keep asking for still get a code: it takes several clients
    (IPv4 addresses or IPv6 /64s) to spend the address's own cap.
    """
    client = ratelimit.client_identity(client_ip)
    pair = f"{email} {client}"
    limits = [
        Limit("codes-address", email, Rate(settings.VERIFICATION_CODES_PER_ADDRESS_PER_HOUR, 3600)),
        Limit("code-cooldown", pair, Rate(1, settings.VERIFICATION_RESEND_COOLDOWN_SECONDS)),
        Limit("codes-address-client", pair, Rate(settings.VERIFICATION_CODES_PER_ADDRESS_AND_CLIENT_PER_HOUR, 3600)),
    ]
    if client:
        limits.append(Limit("codes-ip", client, Rate(settings.VERIFICATION_CODES_PER_IP_PER_HOUR, 3600)))
    ratelimit.take(*limits)


def _give_back_cooldown(*, email: str, client_ip: str | None) -> None:
    """No code went out: the visitor may try again at once (the hourly counts stay)."""
    ratelimit.reset("code-cooldown", f"{email} {ratelimit.client_identity(client_ip)}")


# --- Subscribing ----------------------------------------------------------------


def request_subscription(
    *, email: str, categories: list[str], frequency: str, language: str, client_ip: str | None = None
) -> None:
    """Handle the subscribe form: mail a code, or a manage link to an active subscriber.

    Raises ValidationError for bad input, ratelimit.RateLimited when too
    many codes were asked for, SandboxRecipientRefused when SES's sandbox may
    not mail the address and MailServiceUnavailable when SES does not answer;
    otherwise returns nothing, whatever the address.
    """
    email = canonical_email(email)
    categories, frequency = clean_choices(categories=categories, frequency=frequency)
    language = _clean_language(language)
    # Limits first: the sandbox question below goes to SES, which allows a
    # handful of such calls a second for the whole account.
    _limit_code_requests(email=email, client_ip=client_ip)
    try:
        # Asked afresh: a verdict cached by the daily send or a confirmation
        # would answer for subscribers only, so the answer (or its speed, or
        # an outage's error) would tell subscribers from strangers.
        allowed = recipient_allowed(email, fresh=True)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("subscribe: SES did not answer the sandbox question: %r", exc)
        _give_back_cooldown(email=email, client_ip=client_ip)
        raise MailServiceUnavailable from exc
    if not allowed:
        # Said plainly: this is about SES's test mode, not about the address's
        # standing with DailyQ, so it reveals nothing about subscribers.
        _give_back_cooldown(email=email, client_ip=client_ip)
        raise SandboxRecipientRefused

    with transaction.atomic():
        subscriber, _created = Subscriber.objects.get_or_create(
            email=email, defaults={"language": language, "frequency": frequency}
        )
        if subscriber.status == Subscriber.Status.ACTIVE:
            # A second subscription would be a surprise; the owner gets a way in instead.
            _tasks().send_manage_link.delay_on_commit(subscriber_id=subscriber.id)
            return
        open_verification(subscriber=subscriber, categories=categories, frequency=frequency, language=language)


def resend_verification(*, email: str, client_ip: str | None = None) -> None:
    """Mail a fresh code for the newest pending request of `email`, if there is one.

    Same limits and same silence as request_subscription.
    """
    email = canonical_email(email)
    _limit_code_requests(email=email, client_ip=client_ip)
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(email=email).first()
        if subscriber is None:
            return
        if subscriber.status == Subscriber.Status.ACTIVE:
            _tasks().send_manage_link.delay_on_commit(subscriber_id=subscriber.id)
            return
        previous = subscriber.verifications.filter(confirmed_at__isnull=True).order_by("-created_at").first()
        if previous is None:
            return
        open_verification(
            subscriber=subscriber,
            categories=previous.categories,
            frequency=previous.frequency,
            language=previous.language,
        )


def open_verification(*, subscriber: Subscriber, categories, frequency, language, send: bool = True) -> Verification:
    """Revoke the subscriber's open verifications and queue the mail of a new one.

    `send=False`: the request is kept but not mailed (the import, for an
    address the gate refuses); an admin's "new verification mail" sends it later.
    """
    subscriber.verifications.filter(confirmed_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    verification = Verification.objects.create(
        subscriber=subscriber, categories=categories, frequency=frequency, language=language
    )
    if send:
        _tasks().send_verification.delay_on_commit(verification_id=verification.id)
    return verification


def _tasks():
    # The tasks module wraps these services, so it is imported when needed.
    from subscriptions import tasks

    return tasks


# --- Codes ----------------------------------------------------------------------


def _hash_code(verification_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"dailyq.verification:{verification_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _open_verifications():
    return Verification.objects.filter(confirmed_at__isnull=True, revoked_at__isnull=True)


def send_verification(*, verification_id: int) -> bool:
    """Issue the code of one verification and mail it with a confirm link.

    Runs on a worker. Safe to run twice: only the first run issues a code
    (a conditional UPDATE); a later run finds it issued and sends nothing.
    Returns whether a mail was sent.
    """
    verification = Verification.objects.select_related("subscriber").filter(id=verification_id).first()
    if verification is None:
        return False
    code = f"{secrets.randbelow(1_000_000):06d}"
    ttl = settings.VERIFICATION_CODE_TTL_SECONDS
    issued = (
        _open_verifications()
        .filter(id=verification_id, code_hash="")
        .update(code_hash=_hash_code(verification_id, code), expires_at=timezone.now() + timedelta(seconds=ttl))
    )
    if not issued:
        return False

    context = {"code": code, "confirm_url": confirm_url(verification_id), "minutes": ttl // 60}
    try:
        result = send_email(
            kind="verification", to=verification.subscriber.email, language=verification.language, context=context
        )
    except Exception:
        # Not sent: take the code back; the visitor can ask for a new one.
        Verification.objects.filter(id=verification_id).update(code_hash="", expires_at=None)
        raise
    if not result.sent:
        # The gate refused the address: the request ends here, its code with it.
        Verification.objects.filter(id=verification_id).update(code_hash="", expires_at=None, revoked_at=timezone.now())
        return False
    return True


def confirm_with_code(*, email: str, code: str) -> Subscriber:
    """Confirm the newest pending request of `email` with its mailed code.

    Raises InvalidCode for a wrong, expired or exhausted code, and
    ratelimit.RateLimited after too many tries for the address, counted
    for every address alike.
    """
    try:
        email = canonical_email(email)
    except ValidationError:
        raise InvalidCode from None
    ratelimit.hit(
        "code-attempts",
        email,
        Rate(settings.VERIFICATION_MAX_ATTEMPTS, settings.VERIFICATION_CODE_TTL_SECONDS),
    )
    code = (code or "").strip()
    with transaction.atomic():
        verification = (
            _open_verifications()
            .select_for_update()
            .filter(subscriber__email=email, expires_at__gt=timezone.now())
            .exclude(code_hash="")
            .order_by("-created_at")
            .first()
        )
        if verification is not None and verification.attempts < settings.VERIFICATION_MAX_ATTEMPTS:
            if (
                code.isdigit()
                and len(code) == 6
                and hmac.compare_digest(_hash_code(verification.id, code), verification.code_hash)
            ):
                return _confirm(verification)
            # A wrong try counts, and the code dies at the limit; raised only
            # after this block so the count is committed.
            verification.attempts += 1
            verification.save(update_fields=["attempts"])
    raise InvalidCode


def check_confirm_link(*, token: str) -> Verification:
    """The open verification a confirm link stands for, or InvalidLink."""
    try:
        payload = tokens.read_token(tokens.Purpose.CONFIRM, token, max_age=settings.VERIFICATION_CODE_TTL_SECONDS)
    except tokens.BadToken:
        raise InvalidLink from None
    verification = (
        _open_verifications().select_related("subscriber").filter(id=payload.get("v")).exclude(code_hash="").first()
    )
    if verification is None:
        raise InvalidLink
    return verification


def confirm_with_link(*, token: str) -> Subscriber:
    """Confirm through the link in the verification mail (after a button press: POST)."""
    with transaction.atomic():
        verification = check_confirm_link(token=token)
        verification = _open_verifications().select_for_update().filter(id=verification.id).first()
        if verification is None:
            raise InvalidLink
        return _confirm(verification)


def _confirm(verification: Verification) -> Subscriber:
    now = timezone.now()
    subscriber = Subscriber.objects.select_for_update().get(id=verification.subscriber_id)
    returning = subscriber.confirmed_at is not None
    subscriber.status = Subscriber.Status.ACTIVE
    subscriber.frequency = verification.frequency
    subscriber.language = verification.language
    subscriber.consented_at = verification.created_at
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    subscriber.save()
    if returning:
        # A subscription begun anew: links in the mails of the one before (perhaps
        # forwarded or kept by someone else) must not manage this one.
        rotate_reader_links(subscriber=subscriber)
    for category in verification.categories:
        activate_subscription(subscriber=subscriber, category=category, now=now)
    verification.confirmed_at = now
    verification.save(update_fields=["confirmed_at"])
    _open_verifications().filter(subscriber=subscriber).update(revoked_at=now)
    _tasks().send_welcome.delay_on_commit(subscriber_id=subscriber.id)
    return subscriber


def activate_subscription(*, subscriber: Subscriber, category: str, now) -> Subscription:
    """Start `subscriber`'s subscription to `category`, new or switched back on."""
    subscription, created = Subscription.objects.get_or_create(
        subscriber=subscriber,
        category=category,
        defaults={"is_active": True, "activated_at": now, "next_position": start_position(category=category)},
    )
    if not created and not subscription.is_active:
        # Coming back continues the sequence where it stopped.
        subscription.is_active = True
        subscription.activated_at = now
        subscription.deactivated_at = None
        subscription.save(update_fields=["is_active", "activated_at", "deactivated_at"])
    return subscription


def rotate_reader_links(*, subscriber: Subscriber) -> Subscriber:
    """Void the manage links in the reader's mails so far; their unsubscribe links
    work on for tokens.OLD_UNSUBSCRIBE_LINKS_WORK_FOR (selectors.subscriber_for_token)."""
    Subscriber.objects.filter(id=subscriber.id).update(link_generation=F("link_generation") + 1)
    subscriber.refresh_from_db(fields=["link_generation"])
    return subscriber


# --- Mails to subscribers ---------------------------------------------------------


def _mail_subscriber(subscriber_id: int, template: str) -> bool:
    subscriber = Subscriber.objects.filter(id=subscriber_id).first()
    if subscriber is None or subscriber.status != Subscriber.Status.ACTIVE:
        return False
    categories = active_categories(subscriber=subscriber)
    unsubscribe_link = unsubscribe_url(subscriber.id, generation=subscriber.link_generation)
    send_schedule = schedule_text()
    context = {
        "subscriber": subscriber,
        "categories": [tracks.label(c) for c in categories],
        "frequency": Frequency(subscriber.frequency).label,
        # Said in the reader's language when the mail is rendered.
        "send_schedule": send_schedule,
        "frequency_mail": send_schedule.mail(subscriber.frequency),
        "first_mail": send_schedule.first_mail(subscriber.frequency),
        "manage_url": manage_url(subscriber.id, generation=subscriber.link_generation),
        "unsubscribe_url": unsubscribe_link,
    }
    headers = {"List-Unsubscribe": f"<{unsubscribe_link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    result = send_email(
        kind=template, to=subscriber.email, language=subscriber.language, context=context, headers=headers
    )
    return result.sent


def send_welcome(*, subscriber_id: int) -> bool:
    return _mail_subscriber(subscriber_id, "welcome")


def send_manage_link(*, subscriber_id: int) -> bool:
    return _mail_subscriber(subscriber_id, "manage_link")

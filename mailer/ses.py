"""SES clients built from the same settings django-ses sends with.

Every call DailyQ makes to SES besides sending (quota, identities, health)
goes through here, so credentials, region and endpoint have one source.
"""

import hashlib
import logging
import os
import random
import sys
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from enum import StrEnum

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.core.mail import get_connection
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_ses import SESBackend

from mailer import pacing

logger = logging.getLogger(__name__)


def ses_client(*, v2: bool = False, connect_timeout: float = 5, read_timeout: float = 15):
    """A boto3 client for SES (v1) or SESv2, without retries of its own.

    Made from django-ses's credentials and the region and endpoint it sends to.
    """
    return (
        SESBackend()
        .create_session()
        .client(
            "sesv2" if v2 else "ses",
            region_name=settings.AWS_SES_REGION_NAME,
            endpoint_url=settings.AWS_SES_REGION_ENDPOINT_URL,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"total_max_attempts": 1, "mode": "standard"},
            ),
        )
    )


# --- The account: sandbox, quota, rate ------------------------------------------------

SANDBOX_DAILY_QUOTA = 200  # what SES gives every new (sandboxed) account
ACCOUNT_CACHE_SECONDS = 60
IDENTITY_CACHE_SECONDS = 300
# What remains of an unlimited quota: more than any run holds, so a cap at the
# quota (a slice of the pending deliveries) defers nothing. An int, as callers
# count and slice with it; sys.maxsize still fits a SQL OFFSET (bigint).
UNLIMITED_REMAINING = sys.maxsize
# The rates of hard bounces and complaints at which SES reviews an account, and
# those at which it may pause the account's sending. settings.REPUTATION_MAX_* are
# DailyQ's own guard, which pauses the daily send; by default at the review rates.
SES_REVIEW_BOUNCE_RATE = 0.05
SES_REVIEW_COMPLAINT_RATE = 0.001
SES_AT_RISK_BOUNCE_RATE = 0.10
SES_AT_RISK_COMPLAINT_RATE = 0.005


@dataclass(frozen=True)
class AccountStatus:
    sandbox: bool
    decided_by: str
    max_24_hour_send: float  # -1 (any negative) when SES sets no 24-hour limit
    sent_last_24_hours: float
    max_send_rate: float

    @property
    def unlimited(self) -> bool:
        return self.max_24_hour_send < 0

    @property
    def remaining_24_hours(self) -> int:
        if self.unlimited:
            return UNLIMITED_REMAINING
        return max(0, int(self.max_24_hour_send - self.sent_last_24_hours))

    def as_dict(self) -> dict:
        return {**asdict(self), "unlimited": self.unlimited, "remaining_24_hours": self.remaining_24_hours}


def account_status(*, refresh: bool = False, timeout: float | None = None) -> AccountStatus:
    """Sandbox or not (and how that was decided), quota and rate, cached briefly.

    `timeout` bounds each SES call's connect and read (ses_client's defaults otherwise).
    """
    if not refresh:
        cached = cache.get("ses:account")
        if cached:
            return AccountStatus(**cached)
    timeouts = {} if timeout is None else {"connect_timeout": timeout, "read_timeout": timeout}
    quota = ses_client(**timeouts).get_send_quota()
    sandbox, decided_by = _sandbox_mode(quota, timeouts)
    status = AccountStatus(
        sandbox=sandbox,
        decided_by=decided_by,
        max_24_hour_send=float(quota["Max24HourSend"]),
        sent_last_24_hours=float(quota["SentLast24Hours"]),
        max_send_rate=float(quota["MaxSendRate"]),
    )
    cache.set("ses:account", asdict(status), ACCOUNT_CACHE_SECONDS)
    return status


def _sandbox_mode(quota: dict, timeouts: dict) -> tuple[bool, str]:
    if settings.SES_SANDBOX in {"true", "false"}:
        return settings.SES_SANDBOX == "true", f"SES_SANDBOX={settings.SES_SANDBOX}"
    try:
        account = ses_client(v2=True, **timeouts).get_account()
    except (ClientError, BotoCoreError) as exc:
        # The emulator (and older endpoints) lack SESv2 GetAccount: a new
        # account's quota of 200 per 24 hours is the sandbox's signature. A
        # negative quota (-1) is SES's "unlimited", which no sandbox has.
        sandbox = 0 <= float(quota["Max24HourSend"]) <= SANDBOX_DAILY_QUOTA
        decided_by = f"send quota ({quota['Max24HourSend']:g} per 24 h), as SESv2 GetAccount failed ({_code(exc)})"
        logger.info("SES sandbox=%s decided by %s", sandbox, decided_by)
        return sandbox, decided_by
    sandbox = not account.get("ProductionAccessEnabled", False)
    logger.info("SES sandbox=%s decided by SESv2 GetAccount", sandbox)
    return sandbox, "SESv2 GetAccount.ProductionAccessEnabled"


def verified_identities() -> list[str]:
    client = ses_client()
    identities = []
    for page in client.get_paginator("list_identities").paginate():
        identities.extend(page["Identities"])
    if not identities:
        return []
    verified = []
    for start in range(0, len(identities), 100):
        chunk = identities[start : start + 100]
        attributes = client.get_identity_verification_attributes(Identities=chunk)["VerificationAttributes"]
        verified.extend(i for i in chunk if attributes.get(i, {}).get("VerificationStatus") == "Success")
    return sorted(verified)


def sandbox_enabled() -> bool:
    if settings.SES_SANDBOX in {"true", "false"}:
        return settings.SES_SANDBOX == "true"
    return account_status().sandbox


def allowed_recipients(emails: list[str], *, fresh: bool = False) -> set[str]:
    """Those of `emails` SES will deliver to: all outside the sandbox; in it,
    only addresses verified as identities themselves or through their domain.

    Verdicts are cached a few minutes; `fresh` asks SES about every identity
    anyway (and caches the answers). Raises ClientError or BotoCoreError when
    SES does not answer.
    """
    if not emails or not sandbox_enabled():
        return set(emails)
    verdicts: dict[str, bool] = {}
    unknown: set[str] = set()
    for email in emails:
        for identity in _identities_of(email):
            cached = None if fresh else cache.get(_identity_key(identity))
            if cached is None:
                unknown.add(identity)
            else:
                verdicts[identity] = cached
    unknown_list = sorted(unknown)
    for start in range(0, len(unknown_list), 100):
        chunk = unknown_list[start : start + 100]
        attributes = ses_client().get_identity_verification_attributes(Identities=chunk)["VerificationAttributes"]
        for identity in chunk:
            verdict = attributes.get(identity, {}).get("VerificationStatus") == "Success"
            verdicts[identity] = verdict
            cache.set(_identity_key(identity), verdict, IDENTITY_CACHE_SECONDS)
    return {email for email in emails if any(verdicts.get(i) for i in _identities_of(email))}


def recipient_allowed(email: str, *, fresh: bool = False) -> bool:
    return email in allowed_recipients([email], fresh=fresh)


def _identities_of(email: str) -> tuple[str, str]:
    local, _at, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}", domain.lower()


def _identity_key(identity: str) -> str:
    return "ses:identity:" + hashlib.sha256(identity.encode()).hexdigest()[:32]


# --- Sending: pace, retry what is worth retrying, classify the rest -------------------


class SendOutcome(StrEnum):
    PERMANENT = "permanent"  # this message will never go: fail it
    TRANSIENT = "transient"  # try again after a pause
    QUOTA = "quota"  # the 24-hour quota is used up: defer the rest
    PAUSED = "paused"  # the account may not send at all: stop everything
    UNKNOWN = "unknown"  # it may or may not have been sent: never resend blindly


class SendFailed(Exception):
    def __init__(self, outcome: SendOutcome, reason: str):
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def classify(exc: Exception) -> SendOutcome:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = error.get("Message", "").lower()
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if "daily message quota exceeded" in message:
            return SendOutcome.QUOTA
        if code in {"AccountSendingPausedException", "SendingPausedException"} or "sending paused" in message:
            return SendOutcome.PAUSED
        if (
            code in {"Throttling", "ThrottlingException", "TooManyRequestsException"}
            or "maximum sending rate" in message
        ):
            return SendOutcome.TRANSIENT
        if status >= 500 or code in {"ServiceUnavailable", "InternalFailure", "InternalError"}:
            return SendOutcome.TRANSIENT
        return SendOutcome.PERMANENT
    if isinstance(exc, ReadTimeoutError):
        return SendOutcome.UNKNOWN
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError)):
        return SendOutcome.TRANSIENT
    return SendOutcome.PERMANENT


def send_message(
    build,
    *,
    priority: str = pacing.TRANSACTIONAL,
    rate: float | None = None,
    attempts: int = 5,
    base_delay: float = 0.5,
    tags: dict[str, str] | None = None,
):
    """Send the message `build()` makes, paced, retrying throttling and passing errors.

    `build` is called for every attempt: django-ses marks a message it has
    handled, so a message object is never sent twice. Raises SendFailed with
    the outcome when the message cannot go. Returns the sent message. `rate`
    is pacing.send_rate() unless given (a batch reads it once for all its mails).
    `tags`: SES message tags (letters, digits, _ and -), which SES's events
    for the message carry back.
    """
    rate = rate or pacing.send_rate()
    for attempt in range(1, attempts + 1):
        message = build()
        if message.connection is None:
            message.connection = reusable_connection()
        try:
            if getattr(message.connection, "paced_on_the_wire", False):
                # The slot is taken as the request leaves (_pace_on_the_wire),
                # the tags added as it is built (_add_send_parameters).
                with _sending_as(SendContext(rate=rate, priority=priority, tags=tags)):
                    message.send()
            else:
                pacing.pacer.wait_for_slot(rate=rate, priority=priority)
                message.send()
            return message
        except (ClientError, BotoCoreError) as exc:
            cause = getattr(exc, "kwargs", {}).get("error")
            if isinstance(cause, SoftTimeLimitExceeded):
                # botocore wraps what interrupts its socket: the task's time
                # is up, which the batch, not this send, must handle.
                raise cause from exc
            outcome = classify(exc)
            reason = f"{type(exc).__name__}: {exc}"[:1000]
            if outcome is not SendOutcome.TRANSIENT or attempt == attempts:
                raise SendFailed(outcome, reason) from exc
            delay = min(30.0, base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311
            logger.info("SES send attempt %d failed (%s); retrying in %.1f s", attempt, reason, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class SendContext:
    """What the hooks on the shared client need of the send under way: its pace and its tags."""

    rate: float
    priority: str
    tags: dict[str, str] | None = None


# django-ses builds and makes the request, so botocore's hooks cannot be
# handed arguments: send_message sets this around message.send(). One per
# thread (each thread runs in its own context).
_send_context: ContextVar[SendContext | None] = ContextVar("dailyq_send_context", default=None)


@contextmanager
def _sending_as(context: SendContext):
    token = _send_context.set(context)
    try:
        yield
    finally:
        _send_context.reset(token)


# The SES operations that send mail, as botocore names their events.
_SEND_EVENTS = ("before-send.ses.SendRawEmail", "before-send.sesv2.SendEmail")
_PARAMETER_EVENTS = ("before-parameter-build.ses.SendRawEmail", "before-parameter-build.sesv2.SendEmail")


def _add_send_parameters(params: dict, model, **kwargs) -> None:
    """botocore's before-parameter-build hook on the shared client: the
    configuration set and the message tags of the send, as API parameters.

    django-ses names the configuration set only in an X-SES-CONFIGURATION-SET
    header, which AWS documents for SendRawEmail and SMTP, not for SESv2
    SendEmail; parameters work for both.
    """
    if isinstance(settings.AWS_SES_CONFIGURATION_SET, str):
        params.setdefault("ConfigurationSetName", settings.AWS_SES_CONFIGURATION_SET)
    context = _send_context.get()
    tags = context.tags if context else None
    if tags:
        name = "EmailTags" if model.name == "SendEmail" else "Tags"
        params[name] = [{"Name": key, "Value": value} for key, value in tags.items()]


def _pace_on_the_wire(**kwargs) -> None:
    """botocore's before-send hook on the shared client: wait for a send slot.

    It runs after the message was serialised and the request signed, right
    before the bytes go out, so SES sees the arrivals spaced as the schedule
    spaced the slots (pacing before serialising let a few milliseconds of
    varying work bunch them). A send not made through send_message is paced
    too, as transactional.
    """
    context = _send_context.get() or SendContext(rate=pacing.send_rate(), priority=pacing.TRANSACTIONAL)
    pacing.pacer.wait_for_slot(rate=context.rate, priority=context.priority)


_shared_lock = threading.Lock()
_process_connection: tuple = (None, None)  # (what it was made for, the backend)
_CONNECTION_SETTINGS = ("EMAIL_BACKEND", "AWS_SES_REGION_NAME", "AWS_SES_REGION_ENDPOINT_URL", "AWS_ACCESS_KEY_ID")


@receiver(setting_changed)
def _forget_connection(*, setting, **kwargs):
    global _process_connection
    if setting in _CONNECTION_SETTINGS:
        _process_connection = (None, None)


def reusable_connection():
    """The open SES email backend of this process, made once, shared by its threads.

    Creating a boto3 session and client costs about 100 ms of CPU and ~10 MB;
    botocore clients are thread-safe, and django-ses's
    backend keeps no per-send state. Keyed by process (a forked worker makes
    its own) and by the settings it was made from, and forgotten when one of
    them is changed (tests do: a new endpoint can get an old one's address).
    Sends through it are paced as they leave (`_pace_on_the_wire`) and name
    the configuration set and their tags (`_add_send_parameters`).
    """
    global _process_connection
    key = (os.getpid(), *(getattr(settings, name) for name in _CONNECTION_SETTINGS))
    made_for, connection = _process_connection
    if made_for != key:
        with _shared_lock:
            made_for, connection = _process_connection
            if made_for != key:
                connection = get_connection()
                connection.open()
                client = getattr(connection, "connection", None)
                if client is not None and hasattr(client, "meta"):
                    for event in _SEND_EVENTS:
                        client.meta.events.register_first(event, _pace_on_the_wire)
                    for event in _PARAMETER_EVENTS:
                        client.meta.events.register(event, _add_send_parameters)
                    connection.paced_on_the_wire = True
                _process_connection = (key, connection)
    return connection


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "error")
    return type(exc).__name__

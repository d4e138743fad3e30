"""The gate every mail passes, and the door one mail leaves by.

The rule lives here and only here: no mail to an address a suppression
holds, nor, while SES keeps the account in its sandbox, to one SES has not
verified (the address or its domain). A refused mail is no error: the door
says why and the caller records it. What passes is built afresh for each
attempt, paced and retried by mailer.ses.send_message.
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.mail import EmailMessage

from mailer import pacing
from mailer.emails import build_email
from mailer.selectors import suppressed_addresses
from mailer.ses import allowed_recipients, send_message

logger = logging.getLogger(__name__)

# Why the gate refused an address; the daily send records these on deliveries.
SUPPRESSED = "address suppressed"
SANDBOX = "sandbox: recipient not verified"


@dataclass(frozen=True)
class Gate:
    """The gate's answer for some addresses, asked once for all of them (one mail's, or a batch's)."""

    refused: Mapping[str, str]  # address -> why
    asked: frozenset[str]

    @classmethod
    def check(cls, emails: Iterable[str], *, fresh: bool = False) -> "Gate":
        """Ask about `emails`: one read of the suppressions, and SES about those not suppressed.

        Raises ClientError or BotoCoreError when SES does not answer in its
        sandbox (`fresh`: mailer.ses.allowed_recipients).
        """
        emails = list(dict.fromkeys(emails))
        refused = dict.fromkeys(suppressed_addresses(emails=emails), SUPPRESSED)
        rest = [email for email in emails if email not in refused]
        allowed = allowed_recipients(rest, fresh=fresh)
        refused.update((email, SANDBOX) for email in rest if email not in allowed)
        return cls(refused=refused, asked=frozenset(emails))

    def refusal(self, email: str) -> str | None:
        """Why `email` may not be mailed, or None. KeyError for an address the gate was not asked about."""
        if email not in self.asked:
            raise KeyError(email)
        return self.refused.get(email)


@dataclass(frozen=True)
class MailResult:
    """What became of one mail: sent (with SES's message id) or refused by the gate (with why)."""

    message_id: str = ""
    refused: str = ""

    @property
    def sent(self) -> bool:
        return not self.refused


def send_email(
    *,
    kind: str,
    to: str,
    context: Mapping[str, Any],
    language: str,
    headers: Mapping[str, str] | None = None,
    priority: str = pacing.TRANSACTIONAL,
) -> MailResult:
    """Mail `kind` (the templates in templates/emails/<kind>/) to `to`, if the gate lets it through.

    Raises mailer.ses.SendFailed when SES does not take it.
    """
    return send_built_email(
        kind=kind,
        to=to,
        build=lambda: build_email(kind, to=to, context=context, language=language, headers=headers),
        priority=priority,
    )


def send_built_email(
    *,
    kind: str,
    to: str,
    build: Callable[[], EmailMessage],
    priority: str = pacing.TRANSACTIONAL,
    gate: Gate | None = None,
    rate: float | None = None,
    tags: Mapping[str, str] | None = None,
) -> MailResult:
    """Mail the message `build()` makes (afresh for every attempt) to `to`, if the gate lets it through.

    `gate`: an answer asked for many addresses at once (a batch's); without
    one, the gate is asked about `to` alone. `rate`: pacing.send_rate(), when
    the caller read it already. `tags`: SES message tags, which SES's events
    for the mail carry back. Raises mailer.ses.SendFailed when SES does
    not take the mail, and ValueError when the message is not to `to` alone.
    """
    reason = (gate or Gate.check([to])).refusal(to)
    if reason:
        logger.info("%s mail not sent: %s", kind, reason)
        return MailResult(refused=reason)

    def addressed() -> EmailMessage:
        message = build()
        # The gate checked `to`: a message to anyone else would pass unchecked.
        if list(message.to) != [to] or message.cc or message.bcc:
            raise ValueError(f"{kind} mail built for other recipients than the one the gate checked")
        return message

    message = send_message(addressed, priority=priority, rate=rate, tags=tags)
    return MailResult(message_id=str(message.extra_headers.get("message_id", "")))

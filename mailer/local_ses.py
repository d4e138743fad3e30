"""The local SES emulator: verify identities on it, read what it received.

The emulator is moto's server (`manage.py ses_emulator`). It rejects a From
that is not a verified identity, like SES, and keeps every accepted raw
message in memory, exposed at /moto-api/data.json. Only a development run
talks to it: with real SES there is no outbox to read.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

import boto3
from django.conf import settings


class OutboxUnavailable(Exception):
    """The emulator is not configured or does not answer."""


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    source: str
    destinations: tuple[str, ...]
    mime: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.mime.get("Subject", "")).strip()

    @property
    def sender(self) -> str:
        return str(self.mime.get("From", self.source))

    @property
    def to(self) -> str:
        return ", ".join(self.destinations)

    @property
    def date(self) -> str:
        return str(self.mime.get("Date", ""))

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in self.mime.items()]

    def _part(self, subtype: str) -> str | None:
        part = self.mime.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None

    @property
    def text(self) -> str | None:
        return self._part("plain")

    @property
    def html(self) -> str | None:
        return self._part("html")


def emulator_url() -> str:
    if not settings.SES_EMULATOR:
        raise OutboxUnavailable(
            "This run sends through Amazon SES, not the local emulator; "
            "read sent mail in the SES console or the recipients' inboxes."
        )
    return settings.AWS_SES_REGION_ENDPOINT_URL.rstrip("/")


def read_outbox(*, endpoint_url: str | None = None) -> list[OutboxMessage]:
    """Every message the emulator accepted, newest first."""
    url = (endpoint_url or emulator_url()).rstrip("/") + "/moto-api/data.json"
    if not url.startswith(("http://", "https://")):
        raise OutboxUnavailable(f"The emulator address {url} is not an http(s) URL.")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (scheme checked above)
            state = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OutboxUnavailable(
            f"The local SES emulator at {url} does not answer ({exc}). "
            "Is it running? `make run` starts it; alone: `python manage.py ses_emulator`."
        ) from exc
    raw_messages = state.get("ses", {}).get("RawMessage", [])
    messages = [
        OutboxMessage(
            id=item["id"],
            source=item.get("source") or "",
            # The emulator lists header recipients beside the envelope ones.
            destinations=tuple(dict.fromkeys(item.get("destinations") or ())),
            # Parse bytes, not str: 8bit UTF-8 bodies come back garbled from a str.
            mime=message_from_bytes(item["raw_data"].encode("utf-8"), policy=policy.default),
        )
        for item in raw_messages
    ]
    messages.reverse()
    return messages


def find_message(message_id: str, *, endpoint_url: str | None = None) -> OutboxMessage | None:
    return next((m for m in read_outbox(endpoint_url=endpoint_url) if m.id == message_id), None)


def verify_identities(*, endpoint_url: str, identities: list[str]) -> list[str]:
    """Mark addresses (with @) and domains as verified on the emulator."""
    client = boto3.client(
        "ses",
        endpoint_url=endpoint_url,
        region_name=settings.AWS_SES_REGION_NAME,
        # The emulator accepts any key; these are not secrets.
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106
    )
    done = []
    for identity in dict.fromkeys(i.strip().lower() for i in identities if i and i.strip()):
        if "@" in identity:
            client.verify_email_identity(EmailAddress=identity)
        else:
            client.verify_domain_identity(Domain=identity)
        done.append(identity)
    return done

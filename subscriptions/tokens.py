"""Signed tokens for the links in mail.

Each purpose signs with its own salt, so a token made for one purpose
(unsubscribe) is worthless for another (manage). Confirm tokens expire with
the code they stand beside. Manage and unsubscribe tokens carry the
subscriber's link generation: they work for as long as it holds (they sit in
mails people keep), and when a new subscription raises it, the manage tokens
of the old one stop and its unsubscribe tokens work on for
OLD_UNSUBSCRIBE_LINKS_WORK_FOR after they were made (mailbox providers expect
an unsubscribe link to work for a while after its mail). Answer tokens name a
subscription and a question and carry the generation as manage tokens do.
"""

from datetime import timedelta
from enum import StrEnum
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

OLD_UNSUBSCRIBE_LINKS_WORK_FOR = timedelta(days=60)


class Purpose(StrEnum):
    CONFIRM = "confirm"
    MANAGE = "manage"
    UNSUBSCRIBE = "unsubscribe"
    ANSWER = "answer"


class BadToken(Exception):
    pass


def make_token(purpose: Purpose, payload: dict) -> str:
    """signing.dumps(payload, salt="dailyq.<purpose>"), the same token, made faster."""
    return _signer(purpose, settings.SECRET_KEY).sign_object(payload)


class _KeyedSigner(signing.TimestampSigner):
    """Django's TimestampSigner with its HMAC key derived once instead of per token.

    The daily send signs two tokens per mail; making a signer and deriving
    its key (two SHA-256 rounds and an HMAC set-up) was most of each one's
    cost. The signature is the one salted_hmac gives.
    """

    def __init__(self, *, key: str, salt: str):
        super().__init__(key=key, salt=salt)
        self._keyed = salted_hmac(self.salt + "signer", "", self.key, algorithm=self.algorithm)

    def signature(self, value, key=None):
        if key is not None and key != self.key:  # a fallback key, when unsigning
            return super().signature(value, key)
        mac = self._keyed.copy()
        mac.update(value.encode())
        return signing.b64_encode(mac.digest()).decode()


@lru_cache(maxsize=16)
def _signer(purpose: Purpose, key: str) -> _KeyedSigner:
    # Keyed by SECRET_KEY too: a new key (tests, a rotation) gets a new signer.
    return _KeyedSigner(key=key, salt=f"dailyq.{purpose}")


def read_token(purpose: Purpose, token: str, *, max_age: int | timedelta | None = None) -> dict:
    if not isinstance(token, str) or len(token) > 512:
        raise BadToken("malformed token")
    try:
        payload = signing.loads(token, salt=f"dailyq.{purpose}", max_age=max_age)
    except signing.SignatureExpired as exc:
        raise BadToken("expired token") from exc
    except signing.BadSignature as exc:
        raise BadToken("bad signature") from exc
    if not isinstance(payload, dict):
        raise BadToken("malformed payload")
    return payload

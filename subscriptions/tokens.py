"""Signed tokens for the links in mail.

Each purpose signs with its own salt, so a token made for one purpose
(unsubscribe) is worthless for another (manage). Confirm tokens expire with
the code they stand beside; manage and unsubscribe tokens do not, because
they sit in mails people keep.
"""

from enum import StrEnum

from django.core import signing


class Purpose(StrEnum):
    CONFIRM = "confirm"
    MANAGE = "manage"
    UNSUBSCRIBE = "unsubscribe"


class BadToken(Exception):
    pass


def make_token(purpose: Purpose, payload: dict) -> str:
    return signing.dumps(payload, salt=f"dailyq.{purpose}")


def read_token(purpose: Purpose, token: str, *, max_age: int | None = None) -> dict:
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

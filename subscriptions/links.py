"""The links in a reader's mail: confirm, manage, unsubscribe, answer, and the routes they fill in.

Each link carries a signed token (subscriptions.tokens); a send batch routes
the links once (ReaderLinks) and then only signs each reader's tokens.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

from mailer.emails import absolute_url
from subscriptions import tokens
from subscriptions.models import Subscriber, Subscription

# Links take the subscriber's id and link generation (Subscriber.link_generation):
# the daily send builds them from plain values. Without a generation, the
# subscriber's current one is read.


def manage_path(subscriber_id: int, *, generation: int | None = None) -> str:
    return token_path("subscriptions:manage", _manage_token(subscriber_id, generation))


def manage_url(subscriber_id: int, *, generation: int | None = None) -> str:
    return _put_token(_absolute_route("subscriptions:manage"), _manage_token(subscriber_id, generation))


def unsubscribe_url(subscriber_id: int, category: str | None = None, *, generation: int | None = None) -> str:
    return _put_token(
        _absolute_route("subscriptions:unsubscribe"), _unsubscribe_token(subscriber_id, category, generation)
    )


def unsubscribe_reason_path(subscriber_id: int, *, generation: int | None = None) -> str:
    """Where the optional reason after an unsubscribe is posted (with an unsubscribe token)."""
    return token_path("subscriptions:unsubscribe_reason", _unsubscribe_token(subscriber_id, None, generation))


def answer_url(subscription_id: int, question_id: int, *, generation: int | None = None) -> str:
    """The link to a question's answer page for one reader (answer first, then the model answer)."""
    return _put_token(_absolute_route("subscriptions:answer"), _answer_token(subscription_id, question_id, generation))


def answer_path(subscription_id: int, question_id: int, *, generation: int | None = None) -> str:
    return token_path("subscriptions:answer", _answer_token(subscription_id, question_id, generation))


def confirm_url(verification_id: int) -> str:
    """The link in a verification mail that confirms it (after a button press)."""
    return absolute_url(
        token_path("subscriptions:confirm", tokens.make_token(tokens.Purpose.CONFIRM, {"v": verification_id}))
    )


def _manage_token(subscriber_id: int, generation: int | None) -> str:
    return tokens.make_token(tokens.Purpose.MANAGE, _reader_payload(subscriber_id, generation))


def _unsubscribe_token(subscriber_id: int, category: str | None, generation: int | None) -> str:
    payload = _reader_payload(subscriber_id, generation)
    if category is not None:
        payload["c"] = category
    return tokens.make_token(tokens.Purpose.UNSUBSCRIBE, payload)


def _answer_token(subscription_id: int, question_id: int, generation: int | None) -> str:
    if generation is None:
        generation = (
            Subscription.objects.filter(id=subscription_id)
            .values_list("subscriber__link_generation", flat=True)
            .first()
            or 0
        )
    payload = {"u": subscription_id, "q": question_id}
    if generation:
        payload["g"] = generation
    return tokens.make_token(tokens.Purpose.ANSWER, payload)


def _reader_payload(subscriber_id: int, generation: int | None) -> dict:
    if generation is None:
        generation = Subscriber.objects.filter(id=subscriber_id).values_list("link_generation", flat=True).first() or 0
    # Generation 0 is left out: a first subscription's links stay as short as they were.
    return {"s": subscriber_id, "g": generation} if generation else {"s": subscriber_id}


@dataclass(frozen=True)
class ReaderLinks:
    """The manage, unsubscribe and answer links in a reader's mail, routed once for many readers.

    Each holds the absolute link around its token: a send batch routes them
    once and then only signs each reader's tokens, since finding a route costs
    about as much as signing a token.
    """

    manage: tuple[str, str, str]  # route name, the link before the token, after it
    unsubscribe: tuple[str, str, str]
    answer: tuple[str, str, str] | None = None

    @classmethod
    def routed(cls) -> "ReaderLinks":
        return cls(
            manage=_absolute_route("subscriptions:manage"),
            unsubscribe=_absolute_route("subscriptions:unsubscribe"),
            answer=_absolute_route("subscriptions:answer"),
        )

    def manage_url(self, subscriber_id: int, *, generation: int | None = None) -> str:
        return _put_token(self.manage, _manage_token(subscriber_id, generation))

    def unsubscribe_url(self, subscriber_id: int, category: str | None = None, *, generation: int | None = None) -> str:
        return _put_token(self.unsubscribe, _unsubscribe_token(subscriber_id, category, generation))

    def answer_url(self, subscription_id: int, question_id: int, *, generation: int | None = None) -> str:
        route = self.answer or _absolute_route("subscriptions:answer")
        return _put_token(route, _answer_token(subscription_id, question_id, generation))


def _absolute_route(name: str) -> tuple[str, str, str]:
    head, tail = _token_route(name, settings.ROOT_URLCONF, get_urlconf(), get_script_prefix())
    before, _placeholder, after = absolute_url(head + _PLACEHOLDER + tail).partition(_PLACEHOLDER)
    return name, before, after


def _put_token(route: tuple[str, str, str], token: str) -> str:
    name, before, after = route
    if not _TOKEN_CHARACTERS.fullmatch(token):
        return absolute_url(token_path(name, token))  # reversed, quoted as reverse() does
    return before + token + after


# What django.core.signing puts in a token (URL-safe base64 and ":"), all of
# which reverse() leaves unquoted.
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_\-:]+")
_PLACEHOLDER = "0dailyq0token0"


def token_path(name: str, token: str) -> str:
    """reverse(name, args=[token]) for a view taking one signed token.

    A daily send builds two links per mail, and reversing costs more than
    signing: the route is reversed once with a placeholder, and each token
    put in its place.
    """
    if not _TOKEN_CHARACTERS.fullmatch(token):
        return reverse(name, args=[token])
    head, tail = _token_route(name, settings.ROOT_URLCONF, get_urlconf(), get_script_prefix())
    return head + token + tail


@lru_cache(maxsize=64)
def _token_route(name: str, root_urlconf: str, urlconf: str | None, prefix: str) -> tuple[str, str]:
    head, placeholder, tail = reverse(name, args=[_PLACEHOLDER]).partition(_PLACEHOLDER)
    if not placeholder:
        raise ValueError(f"{name} does not take its token as a path segment")
    return head, tail

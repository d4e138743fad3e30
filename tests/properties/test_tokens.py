"""Signed links: a token works only for the purpose and the subscriber it was
made for. Anything else (random text, another purpose's token, a tampered,
truncated, re-salted, foreign-key-signed or stale token) gets the friendly
404 page on GET and POST, never a 500, and changes nothing."""

import itertools
from datetime import timedelta
from unittest import mock
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core import signing
from django.test import override_settings
from django.urls import reverse, set_script_prefix
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from mailer.models import Question, Suppression
from subscriptions.links import ReaderLinks, manage_url, token_path, unsubscribe_url
from subscriptions.models import Answer, Subscriber, Subscription, Verification
from subscriptions.services import rotate_reader_links
from subscriptions.tokens import Purpose, make_token, read_token
from tests.factories import make_subscriber
from tests.properties.strategies import fuzz, unique

pytestmark = pytest.mark.django_db

PAGES = {
    Purpose.CONFIRM: "/confirm/{}/",
    Purpose.MANAGE: "/manage/{}/",
    Purpose.UNSUBSCRIBE: "/unsubscribe/{}/",
    Purpose.ANSWER: "/answer/{}/",
}
_positions = itertools.count(1)
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:."


@pytest.fixture(autouse=True)
def _no_page_limit(settings):
    # Hypothesis opens many links from one client; the limit has its own test.
    settings.READER_PAGE_REQUESTS_PER_CLIENT_PER_MINUTE = 10**6


def url(purpose: Purpose, token: str) -> str:
    return PAGES[purpose].format(quote(token, safe=""))


def make_target():
    """An active subscriber with an open, issued verification (a confirm link would work)."""
    subscriber = make_subscriber(f"{unique('t')}@example.org", categories=("backend", "frontend"))
    verification = Verification.objects.create(
        subscriber=subscriber,
        categories=["backend"],
        frequency="daily",
        language="ko",
        code_hash="0" * 64,
        expires_at=timezone.now() + timedelta(minutes=10),
    )
    # A question mailed to it, for answer links.
    subscriber.question = Question.objects.create(
        category="backend", position=next(_positions), title="q", answer_md="a", source_key=unique("tq")
    )
    subscriber.backend_id = subscriber.subscriptions.get(category="backend").id
    return subscriber, verification


def payload_for(purpose: Purpose, subscriber, verification) -> dict:
    if purpose == Purpose.CONFIRM:
        return {"v": verification.id}
    if purpose == Purpose.ANSWER:
        return {"u": subscriber.backend_id, "q": subscriber.question.id}
    return {"s": subscriber.id}


def valid_token(purpose: Purpose, subscriber, verification, category=None) -> str:
    payload = payload_for(purpose, subscriber, verification)
    if purpose == Purpose.UNSUBSCRIBE and category:
        payload["c"] = category
    return make_token(purpose, payload)


def state():
    return (
        sorted(Subscriber.objects.values_list("id", "status", "frequency", "unsubscribed_at")),
        sorted(Subscription.objects.values_list("id", "is_active")),
        sorted(Verification.objects.values_list("id", "confirmed_at", "revoked_at", "attempts")),
        Suppression.objects.count(),
        sorted(Answer.objects.values_list("id", "text", "rating", "revealed_at")),
    )


def assert_refused_everywhere(client, page: Purpose, token: str) -> None:
    before = state()
    for method in (client.get, client.post):
        data = (
            {"List-Unsubscribe": "One-Click", "action": "unsubscribe", "rating": "again"}
            if method == client.post
            else {}
        )
        response = method(url(page, token), data)
        assert response.status_code == 404, (method, response.status_code)
        if "/" not in token:  # a "/" (never in a signed token) makes another path: Django's own 404
            assert "DailyQ" in response.content.decode()  # the site's page, not a bare error
    assert state() == before


def tamper(token: str, position: int, replacement: str) -> str:
    position %= len(token)
    if token[position] == replacement:
        replacement = "A" if replacement != "A" else "B"
    return token[:position] + replacement + token[position + 1 :]


@fuzz(60)
@given(
    page=st.sampled_from(list(Purpose)),
    token=st.one_of(
        st.text(min_size=1, max_size=80),
        st.text(TOKEN_CHARS, min_size=1, max_size=120),
        st.text(TOKEN_CHARS, min_size=513, max_size=700),
        st.sampled_from(
            [
                "eyJzIjoxfQ:forged:signature",
                ".eJyrVipWslIyMDBQ0lEqLs3VTVUEMkxMdXKTNNzIzMjbRUaQCwBUXQZ3",
                "%00",
                "..",
                "\x00",
            ]
        ),
    ),
)
def test_random_strings_are_not_tokens(client, page, token):
    make_target()
    assert_refused_everywhere(client, page, token)


@fuzz(40)
@given(
    made_for=st.sampled_from(list(Purpose)),
    used_on=st.sampled_from(list(Purpose)),
    category=st.sampled_from([None, "backend"]),
)
def test_a_token_works_only_for_its_own_purpose(client, made_for, used_on, category):
    subscriber, verification = make_target()
    # One payload that would satisfy every page: only the salt tells them apart.
    payload = {"s": subscriber.id, "v": verification.id, "u": subscriber.backend_id, "q": subscriber.question.id}
    if category:
        payload["c"] = category
    token = make_token(made_for, payload)
    if made_for == used_on:
        assert client.get(url(used_on, token)).status_code == 200
    else:
        assert_refused_everywhere(client, used_on, token)


@fuzz(60)
@given(
    purpose=st.sampled_from(list(Purpose)),
    position=st.integers(0, 1000),
    replacement=st.sampled_from(TOKEN_CHARS),
    cut=st.integers(1, 20),
    how=st.sampled_from(["flip", "truncate", "extend", "case", "salt", "key", "unsigned"]),
)
@example(purpose=Purpose.MANAGE, position=10**6, replacement="x", cut=1, how="flip")
def test_tampered_or_forged_tokens_are_refused(client, purpose, position, replacement, cut, how):
    subscriber, verification = make_target()
    genuine = valid_token(purpose, subscriber, verification)
    payload = payload_for(purpose, subscriber, verification)
    token = {
        "flip": lambda: tamper(genuine, position, replacement),
        "truncate": lambda: genuine[:-cut],
        "extend": lambda: genuine + replacement * cut,
        "case": lambda: genuine.swapcase(),
        "salt": lambda: signing.dumps(payload, salt=f"dailyq.{purpose} "),  # a near-miss salt
        "key": lambda: signing.dumps(payload, key="not-the-secret-key", salt=f"dailyq.{purpose}"),
        "unsigned": lambda: signing.b64_encode(b'{"s":1,"v":1}').decode(),
    }[how]()
    assert token != genuine
    assert_refused_everywhere(client, purpose, token)


@fuzz(30)
@given(
    purpose=st.sampled_from(list(Purpose)),
    gone=st.sampled_from(["deleted subscriber", "confirmed", "revoked", "expired code", "expired link"]),
)
def test_tokens_for_what_no_longer_exists_are_refused(client, purpose, gone):
    subscriber, verification = make_target()
    if gone == "expired link":
        if purpose != Purpose.CONFIRM:
            return  # manage, unsubscribe and answer links do not expire (they live in kept mails)
        with mock.patch("time.time", return_value=timezone.now().timestamp() - 3600):
            token = valid_token(purpose, subscriber, verification)
    else:
        token = valid_token(purpose, subscriber, verification)
    if gone == "deleted subscriber":
        Subscriber.objects.filter(id=subscriber.id).delete()
    elif purpose != Purpose.CONFIRM:
        return  # the rest only concern confirm links
    elif gone == "confirmed":
        Verification.objects.filter(id=verification.id).update(confirmed_at=timezone.now())
    elif gone == "revoked":
        Verification.objects.filter(id=verification.id).update(revoked_at=timezone.now())
    elif gone == "expired code":
        Verification.objects.filter(id=verification.id).update(code_hash="")
    assert_refused_everywhere(client, purpose, token)


@fuzz(60)
@given(
    name=st.sampled_from(["subscriptions:confirm", "subscriptions:manage", "subscriptions:unsubscribe"]),
    token=st.one_of(
        st.builds(make_token, st.sampled_from(list(Purpose)), st.fixed_dictionaries({"s": st.integers(0, 10**12)})),
        st.text(TOKEN_CHARS, min_size=1),
        st.text(min_size=1).filter(lambda t: "/" not in t),
    ),
    prefix=st.sampled_from(["/", "/dailyq/"]),
)
def test_a_link_s_path_is_the_one_reverse_gives(name, token, prefix):
    set_script_prefix(prefix)
    try:
        assert token_path(name, token) == reverse(name, args=[token])
    finally:
        set_script_prefix("/")


@given(
    purpose=st.sampled_from(list(Purpose)),
    payload=st.dictionaries(st.sampled_from(["s", "c", "v"]), st.integers() | st.text(max_size=20), max_size=3),
    now=st.integers(min_value=0, max_value=2**40),
    key=st.text(min_size=1, max_size=60),
)
def test_a_token_is_the_one_django_signing_makes(purpose, payload, now, key):
    # make_token derives its HMAC key once per purpose and SECRET_KEY.
    with override_settings(SECRET_KEY=key), mock.patch("django.core.signing.time.time", return_value=now):
        assert make_token(purpose, payload) == signing.dumps(payload, salt=f"dailyq.{purpose}")


@fuzz(60)
@given(
    subscriber_id=st.integers(0, 10**12),
    generation=st.integers(0, 2**31),
    category=st.none() | st.sampled_from(["backend", "frontend"]),
    prefix=st.sampled_from(["/", "/dailyq/"]),
)
def test_a_routed_reader_link_is_the_one_reverse_gives(subscriber_id, generation, category, prefix):
    # A send batch routes the links once (ReaderLinks) and puts each reader's token in.
    set_script_prefix(prefix)
    try:
        links = ReaderLinks.routed()
        manage = links.manage_url(subscriber_id, generation=generation)
        unsubscribe = links.unsubscribe_url(subscriber_id, category, generation=generation)
        manage_token = manage.rstrip("/").rsplit("/", 1)[1]
        unsubscribe_token = unsubscribe.rstrip("/").rsplit("/", 1)[1]
        site = settings.SITE_URL.rstrip("/")
        assert manage == site + reverse("subscriptions:manage", args=[manage_token])
        assert unsubscribe == site + reverse("subscriptions:unsubscribe", args=[unsubscribe_token])
    finally:
        set_script_prefix("/")
    reader = {"s": subscriber_id, "g": generation} if generation else {"s": subscriber_id}
    assert read_token(Purpose.MANAGE, manage_token) == reader
    assert read_token(Purpose.UNSUBSCRIBE, unsubscribe_token) == (
        reader if category is None else {**reader, "c": category}
    )


DAY = 24 * 3600


@fuzz(60)
@given(
    purpose=st.sampled_from([Purpose.MANAGE, Purpose.UNSUBSCRIBE]),
    generation=st.integers(0, 3),
    rotations=st.integers(0, 2),
    age=st.sampled_from([0, DAY, 59 * DAY, 60 * DAY, 60 * DAY + 1, 365 * DAY, 10 * 365 * DAY]),
    made_at=st.integers(10**9, 2 * 10**9),
    category=st.sampled_from([None, "backend"]),
)
@example(purpose=Purpose.UNSUBSCRIBE, generation=0, rotations=1, age=60 * DAY, made_at=1_800_000_000, category=None)
@example(purpose=Purpose.UNSUBSCRIBE, generation=0, rotations=1, age=60 * DAY + 1, made_at=1_800_000_000, category=None)
def test_a_reader_link_works_while_its_generation_holds_and_an_old_unsubscribe_link_sixty_days(
    client, purpose, generation, rotations, age, made_at, category
):
    subscriber, _verification = make_target()
    Subscriber.objects.filter(id=subscriber.id).update(link_generation=generation)
    with mock.patch("time.time", return_value=made_at):
        link = manage_url(subscriber.id) if purpose == Purpose.MANAGE else unsubscribe_url(subscriber.id, category)
    for _ in range(rotations):
        rotate_reader_links(subscriber=subscriber)
    path = link.split("://", 1)[1].split("/", 1)[1]

    with mock.patch("time.time", return_value=made_at + age):
        works = client.get("/" + path).status_code == 200
        if not works:
            assert_refused_everywhere(client, purpose, path.rstrip("/").rsplit("/", 1)[1])

    assert works == (rotations == 0 or (purpose == Purpose.UNSUBSCRIBE and age <= 60 * DAY))

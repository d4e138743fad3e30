"""The public forms under arbitrary input: never a 500, a clear error or a
complete success, and nothing written on an error.

The subscribe form (/subscribe/), the code form (/verify/ with a pending
session, and its resend button), the manage form (/manage/<token>/,
action=save|unsubscribe), the language menu and the admin login.
Tasks run eagerly, so the mails a request causes are in mail.outbox by the
time it answers.
"""

import itertools
import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from hypothesis import event, example, given
from hypothesis import strategies as st

from subscriptions import links
from subscriptions.models import Subscriber, Subscription, Verification
from subscriptions.views import PENDING_EMAIL
from tests.factories import make_subscriber
from tests.properties.strategies import (
    LINE_BREAKING_CONTROLS,
    QTEXT,
    assert_mail_is_safe,
    emails,
    fuzz,
    normalized,
    unique,
)

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = reverse("subscriptions:subscribe")
VERIFY = reverse("subscriptions:verify")
RESEND = reverse("subscriptions:resend")
CATEGORIES = ["backend", "frontend"]
FREQUENCIES = ["daily", "weekly"]
VALID_FORM = {"categories": ["backend"], "frequency": "daily", "consent": "on"}

category_values = st.one_of(
    st.sampled_from(
        ["backend", "frontend", "Backend", "FRONTEND", "", " backend", "backend\r\nBcc: x@evil.example", "all", "a,b"]
    ),
    st.text(max_size=20),
)
valid_category_lists = st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3)
# Valid choices are drawn often enough that the address decides most examples.
category_lists = st.one_of(valid_category_lists, valid_category_lists, st.lists(category_values, max_size=4))
frequencies = st.one_of(
    st.sampled_from(FREQUENCIES),
    st.sampled_from(FREQUENCIES),
    st.sampled_from(["Daily", "monthly", "", "daily\n"]),
    st.text(max_size=10),
)
consents = st.sampled_from(["on", "on", "on", "1", "yes", "true", None, "", "false", "0", "FALSE"])
accept_languages = st.sampled_from(["ko", "en", "en-US,en;q=0.9", "fr", "", "xx;q=\x00", "*"])


def reset() -> None:
    Subscriber.objects.all().delete()
    mail.outbox.clear()


def db_state() -> tuple[int, int, int]:
    return Subscriber.objects.count(), Subscription.objects.count(), Verification.objects.count()


def code_from(message) -> str:
    return re.search(r"\b(\d{6})\b", message.subject).group(1)


def consent_given(value) -> bool:
    # Django's CheckboxInput: absent, empty or "false" (any case) is unticked; anything else ticks it.
    return value is not None and value != "" and value.lower() != "false"


def form_data(email, categories, frequency, consent) -> dict:
    data = {"email": email, "categories": categories, "frequency": frequency}
    if consent is not None:
        data["consent"] = consent
    return data


# --- The subscribe form ----------------------------------------------------------


@fuzz(300)
@given(emails)
def test_normalised_addresses_are_one_line_bounded_and_stable(value):
    result = normalized(value)
    if result is None:
        return
    assert len(result) <= 254
    assert not any(char in result for char in "\r\n\0")
    _local, _at, domain = result.rpartition("@")
    assert domain.isascii() and domain == domain.lower()
    assert normalized(result) == result


@fuzz(80)
@given(
    email=emails,
    categories=category_lists,
    frequency=frequencies,
    consent=consents,
    language=accept_languages,
    existing=st.sampled_from([None, None, "pending", "active", "unsubscribed"]),
)
@example(email="reader@example.org\r\nBcc: evil@evil.example", categories=["backend"], frequency="daily",
         consent="on", language="ko", existing=None)  # fmt: skip
@example(email="a" * 242 + "@example.com", categories=["backend", "frontend"], frequency="weekly",
         consent="on", language="en", existing=None)  # fmt: skip
@example(email="a" * 243 + "@example.com", categories=["backend"], frequency="daily",
         consent="on", language="en", existing=None)  # fmt: skip
@example(email=" Reader@Bücher.Example ", categories=["frontend"], frequency="daily",
         consent="on", language="ko", existing="active")  # fmt: skip
def test_subscribe_answers_302_with_one_subscriber_or_400_with_nothing_written(
    client, relaxed_limits, eager_tasks, email, categories, frequency, consent, language, existing
):
    reset()
    expected = normalized(email)
    if existing and expected:
        # The same address, stored in its canonical form; the form may spell it otherwise.
        if existing == "active":
            make_subscriber(expected)
        else:
            Subscriber.objects.create(email=expected, status=existing)
    before = db_state()

    response = client.post(
        SUBSCRIBE,
        form_data(email, categories, frequency, consent),
        REMOTE_ADDR="192.0.2.7",
        HTTP_ACCEPT_LANGUAGE=language,
    )

    assert response.status_code < 500
    valid = (
        expected is not None
        and bool(categories)
        and all(c in CATEGORIES for c in categories)
        and frequency in FREQUENCIES
        and consent_given(consent)
    )
    event(f"status {response.status_code}, address {'valid' if expected else 'invalid'}")
    if not valid:
        assert response.status_code == 400
        assert 'role="alert"' in response.content.decode()  # the error is said on the page
        assert db_state() == before
        assert mail.outbox == []
        return

    assert response.status_code == 302 and response["Location"] == VERIFY
    assert client.session[PENDING_EMAIL] == expected
    [subscriber] = Subscriber.objects.filter(email=expected)
    assert Subscriber.objects.count() == 1
    assert len(mail.outbox) == 1
    assert_mail_is_safe(mail.outbox[0], subscriber.email)
    open_requests = Verification.objects.filter(
        subscriber=subscriber, confirmed_at__isnull=True, revoked_at__isnull=True
    )
    if existing == "active":
        assert open_requests.count() == 0  # mailed a manage link instead
        assert "/manage/" in mail.outbox[0].body
    else:
        [verification] = open_requests
        assert verification.categories == sorted(set(categories))
        assert verification.frequency == frequency
        assert code_from(mail.outbox[0])


@fuzz(12)
@given(
    field=st.sampled_from(["email", "categories", "frequency", "consent", "unrelated", "many-fields"]),
    size=st.sampled_from([1_000_000, 3_000_000]),
    char=st.sampled_from(["a", "é", "\r\n", "\x00", "@"]),
)
@example(field="email", size=1_000_000, char="a")
@example(field="unrelated", size=3_000_000, char="a")
@example(field="many-fields", size=1_000_000, char="a")
def test_huge_bodies_are_refused_cleanly(client, relaxed_limits, eager_tasks, field, size, char):
    reset()
    data = {**VALID_FORM, "email": f"{unique('big')}@example.org"}
    if field == "many-fields":
        data.update({f"f{n}": char for n in range(2000)})
    else:
        value = char * (size // len(char))
        data[field] = [value] if field == "categories" else value

    response = client.post(SUBSCRIBE, data)

    assert response.status_code < 500
    if response.status_code == 302:  # a valid form with a long but truthy consent or junk beside it
        assert field in {"unrelated", "consent"} and size * len(char.encode()) // len(char) < 2_500_000
        assert Subscriber.objects.count() == 1
        assert_mail_is_safe(mail.outbox[0], data["email"])
    else:
        assert response.status_code == 400
        assert db_state() == (0, 0, 0) and mail.outbox == []


# Python's email package folds headers with str.splitlines(), which also
# breaks at \x0b \x0c \x1c \x1d \x1e. Django's EmailValidator accepts those in
# a quoted local part ("a\x0bBcc:x@y"@example.com), so the address is stored,
# and then every mail to it fails to build.
@fuzz(25)
@given(
    local=st.lists(
        st.one_of(st.sampled_from(QTEXT), st.sampled_from(LINE_BREAKING_CONTROLS)), min_size=1, max_size=15
    ).map(lambda chars: '"' + "".join(chars) + '"')
)
@example(local='"a\x0bBcc:evil@evil.example"')
def test_control_characters_in_an_address_never_reach_a_mail_header(client, relaxed_limits, eager_tasks, local):
    reset()
    address = f"{local}@example.com"
    response = client.post(SUBSCRIBE, {**VALID_FORM, "email": address})
    assert response.status_code < 500
    if response.status_code == 302:
        assert len(mail.outbox) == 1
        assert_mail_is_safe(mail.outbox[0], normalized(address))
    else:
        assert db_state() == (0, 0, 0)


# --- The code form -----------------------------------------------------------------

codes = st.one_of(
    st.text(max_size=12),
    st.text("0123456789", min_size=5, max_size=7),
    st.from_regex(r"\A\s*\d{6}\s*\Z"),
    st.sampled_from(
        [
            "\uff11\uff12\uff13\uff14\uff15\uff16",
            "١٢٣٤٥٦",
            "¹²³⁴⁵⁶",
            "12345\u0663",
            "12\x003456",
            "123456\r\nBcc: x",
            "-12345",
        ]
    ),
    st.just("1" * 1_000_000),
)


@fuzz(30)
@given(
    code=codes,
    which=st.sampled_from(["typed", "newest", "first"]),
    padding=st.sampled_from(["", " ", "\t", "\u3000"]),
    resend=st.booleans(),
)
def test_code_form_confirms_only_the_newest_mailed_code(relaxed_limits, eager_tasks, code, which, padding, resend):
    reset()
    visitor = Client()
    address = f"{unique('reader')}@example.org"
    assert visitor.post(SUBSCRIBE, {**VALID_FORM, "email": address}).status_code == 302
    if resend:
        assert visitor.post(RESEND).status_code == 302
        assert len(mail.outbox) == 2
        assert_mail_is_safe(mail.outbox[-1], address)
    mailed = code_from(mail.outbox[-1])
    if which != "typed":
        code = padding + code_from(mail.outbox[-1 if which == "newest" else 0]) + padding
    mail.outbox.clear()

    response = visitor.post(VERIFY, {"code": code})

    assert response.status_code < 500
    subscriber = Subscriber.objects.get()
    if code.strip() == mailed:
        assert response.status_code == 302 and "/manage/" in response["Location"]
        assert subscriber.status == Subscriber.Status.ACTIVE
        assert mail.outbox  # the welcome mail
        for message in mail.outbox:
            assert_mail_is_safe(message, address)
    else:
        assert response.status_code == 400
        assert 'role="alert"' in response.content.decode()
        assert subscriber.status == Subscriber.Status.PENDING
        assert not subscriber.subscriptions.exists()
        assert mail.outbox == []


# --- The manage form ----------------------------------------------------------------


def snapshot(subscriber: Subscriber):
    subscriber.refresh_from_db()
    active = sorted(subscriber.subscriptions.filter(is_active=True).values_list("category", flat=True))
    return subscriber.status, subscriber.frequency, active


@fuzz(60)
@given(
    status=st.sampled_from(["active", "active", "unsubscribed", "pending"]),
    start=st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True),
    action=st.one_of(st.sampled_from(["save", "unsubscribe", "", "SAVE", "delete", None]), st.text(max_size=12)),
    categories=category_lists,
    frequency=frequencies,
    category=st.one_of(st.sampled_from([None, "backend", "frontend", "all", ""]), st.text(max_size=12)),
)
def test_manage_form_changes_exactly_what_was_asked(client, status, start, action, categories, frequency, category):
    reset()
    subscriber = make_subscriber(f"{unique('m')}@example.org", categories=start, frequency="daily")
    Subscriber.objects.filter(id=subscriber.id).update(status=status)
    path = links.manage_path(subscriber.id)
    before = snapshot(subscriber)
    data = {"categories": categories, "frequency": frequency}
    if action is not None:
        data["action"] = action
    if category is not None:
        data["category"] = category

    response = client.post(path, data)

    assert response.status_code < 500
    after = snapshot(subscriber)
    if status != "active":
        assert response.status_code == 200 and after == before
    elif action == "save":
        if categories and all(c in CATEGORIES for c in categories) and frequency in FREQUENCIES:
            assert response.status_code == 302 and response["Location"] == path
            assert after == ("active", frequency, sorted(set(categories)))
        else:
            assert response.status_code == 400
            assert 'role="alert"' in response.content.decode()
            assert after == before
    elif action == "unsubscribe":
        assert response.status_code == 302 and response["Location"] == path
        left = sorted(set(start) - {category}) if category in CATEGORIES else []
        assert after == ("active" if left else "unsubscribed", "daily", left)
    else:
        assert response.status_code == 200 and after == before


# --- The language menu and the admin login ----------------------------------------------

login_ips = itertools.count()
next_urls = st.one_of(
    st.sampled_from(
        ["/", "/privacy/", "//evil.example/", "https://evil.example/", "javascript:alert(1)", "/\\evil.example",
         "/ok\r\nSet-Cookie: x=1", "http://testserver/privacy/", "", "/%0d%0aLocation:%20https://evil.example"]
    ),
    st.text(max_size=30),
)  # fmt: skip


@fuzz(50)
@given(
    language=st.one_of(st.sampled_from(["ko", "en", "EN", "fr", "", "en\r\n"]), st.text(max_size=10)),
    next_url=next_urls,
)
def test_language_menu_never_redirects_off_site(client, language, next_url):
    response = client.post("/i18n/setlang/", {"language": language, "next": next_url})
    assert response.status_code in {302, 204}
    if response.status_code == 302:
        location = response["Location"]
        assert urlsplit(location).netloc in {"", "testserver"} and not location.startswith("//"), location
        assert "\\" not in location
        assert not any(char in location for char in "\r\n")


@fuzz(30)
@given(
    username=st.one_of(st.text(max_size=40), st.sampled_from(["admin", "admin\x00", "x" * 5000, "\r\nBcc: x"])),
    password=st.one_of(st.text(max_size=40), st.just("p" * 100_000)),
)
def test_admin_login_refuses_anything_but_a_real_account(client, django_user_model, settings, username, password):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for many tries
    if not django_user_model.objects.exists():
        django_user_model.objects.create_superuser("admin", "admin@example.org", "the real password")
    n = next(login_ips)
    address = f"198.51.{n // 250 % 250}.{n % 250 + 1}"  # a new client each time: the per-IP limit stays out of it
    response = client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=address)
    assert response.status_code in {200, 429}
    assert "_auth_user_id" not in client.session

"""Subscribing and confirming, through the service functions (changing and ending: test_preferences.py)."""

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from mailer.suppressions import suppress_address
from mailservice.ratelimit import RateLimited
from subscriptions import preferences, services
from subscriptions.models import Subscriber, Subscription, Verification
from tests.subscriptions.conftest import code_from, confirm_link_from, mails_to


def test_subscribing_mails_a_code_and_changes_nothing_until_confirmed(subscribe):
    subscribe("New.Reader@Example.ORG", categories=["backend", "frontend"], frequency="weekly")

    subscriber = Subscriber.objects.get()
    assert subscriber.email == "new.reader@example.org"  # its canonical form
    assert subscriber.status == Subscriber.Status.PENDING
    assert not Subscription.objects.exists()
    [message] = mails_to("new.reader@example.org")
    assert len(code_from(message)) == 6
    verification = Verification.objects.get()
    # Stored hashed, never in clear.
    assert code_from(message) not in verification.code_hash
    assert len(verification.code_hash) == 64


def test_code_confirms_and_creates_one_subscription_per_category(subscribe, django_capture_on_commit_callbacks):
    subscribe("reader@example.org", categories=["backend", "frontend"], frequency="weekly", language="en")
    code = code_from(mails_to("reader@example.org")[0])

    with django_capture_on_commit_callbacks(execute=True):
        subscriber = services.confirm_with_code(email="READER@example.org", code=code)

    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.frequency == "weekly"
    assert subscriber.language == "en"
    assert subscriber.confirmed_at and subscriber.consented_at
    assert sorted(subscriber.subscriptions.values_list("category", "is_active")) == [
        ("backend", True),
        ("frontend", True),
    ]
    welcome = mails_to("reader@example.org")[-1]
    assert "/manage/" in welcome.body
    assert welcome.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_code_expires_after_ten_minutes(subscribe):
    subscribe("reader@example.org")
    verification = Verification.objects.get()
    assert timedelta(minutes=9, seconds=55) < verification.expires_at - verification.created_at < timedelta(minutes=11)
    code = code_from(mails_to("reader@example.org")[0])

    Verification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(services.InvalidCode):
        services.confirm_with_code(email="reader@example.org", code=code)
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_code_dies_after_five_wrong_tries(subscribe, settings):
    settings.VERIFICATION_MAX_ATTEMPTS = 5
    subscribe("reader@example.org")
    code = code_from(mails_to("reader@example.org")[0])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    for _ in range(4):
        with pytest.raises(services.InvalidCode):
            services.confirm_with_code(email="reader@example.org", code=wrong)
    with pytest.raises(services.InvalidCode):
        services.confirm_with_code(email="reader@example.org", code=wrong)
    assert Verification.objects.get().attempts == 5

    # The right code no longer works: the code is dead, and the address is out of tries.
    with pytest.raises((services.InvalidCode, RateLimited)):
        services.confirm_with_code(email="reader@example.org", code=code)
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING


def test_dead_code_stays_dead_even_when_the_attempt_limit_window_resets(subscribe, settings):
    subscribe("reader@example.org")
    code = code_from(mails_to("reader@example.org")[0])
    Verification.objects.update(attempts=settings.VERIFICATION_MAX_ATTEMPTS)
    with pytest.raises(services.InvalidCode):
        services.confirm_with_code(email="reader@example.org", code=code)


def test_too_many_tries_are_limited_alike_for_unknown_addresses(settings):
    settings.VERIFICATION_MAX_ATTEMPTS = 3
    for _ in range(3):
        with pytest.raises(services.InvalidCode):
            services.confirm_with_code(email="nobody@example.org", code="123456")
    with pytest.raises(RateLimited) as raised:
        services.confirm_with_code(email="nobody@example.org", code="123456")
    assert 0 < raised.value.retry_after <= settings.VERIFICATION_CODE_TTL_SECONDS


def test_new_code_only_after_the_cooldown_and_only_the_newest_works(
    subscribe, settings, django_capture_on_commit_callbacks
):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 60
    start = time.time()
    with mock.patch("time.time", return_value=start):
        subscribe("reader@example.org")
    first = code_from(mails_to("reader@example.org")[0])

    with mock.patch("time.time", return_value=start + 59.5), pytest.raises(RateLimited) as raised:
        services.resend_verification(email="reader@example.org", client_ip="192.0.2.1")
    assert raised.value.retry_after == 1
    assert len(mails_to("reader@example.org")) == 1

    with mock.patch("time.time", return_value=start + 60), django_capture_on_commit_callbacks(execute=True):
        services.resend_verification(email="reader@example.org", client_ip="192.0.2.1")
    assert len(mails_to("reader@example.org")) == 2
    second = code_from(mails_to("reader@example.org")[1])

    if first != second:
        with pytest.raises(services.InvalidCode):
            services.confirm_with_code(email="reader@example.org", code=first)
    assert services.confirm_with_code(email="reader@example.org", code=second).status == Subscriber.Status.ACTIVE


def test_codes_per_address_per_hour_are_capped(subscribe, settings):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0
    settings.VERIFICATION_CODES_PER_ADDRESS_PER_HOUR = 3
    for n in range(3):
        subscribe("reader@example.org", client_ip=f"192.0.2.{n + 1}")
    with pytest.raises(RateLimited):
        subscribe("reader@example.org", client_ip="192.0.2.99")
    assert len(mails_to("reader@example.org")) == 3


def test_codes_per_client_ip_per_hour_are_capped(subscribe, settings):
    settings.VERIFICATION_CODES_PER_IP_PER_HOUR = 2
    subscribe("a@example.org", client_ip="198.51.100.7")
    subscribe("b@example.org", client_ip="198.51.100.7")
    with pytest.raises(RateLimited):
        subscribe("c@example.org", client_ip="198.51.100.7")
    subscribe("c@example.org", client_ip="198.51.100.8")
    assert len(mails_to("c@example.org")) == 1


def test_others_asking_for_an_address_do_not_stop_its_owner_getting_a_code(subscribe, settings):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0
    settings.VERIFICATION_CODES_PER_ADDRESS_AND_CLIENT_PER_HOUR = 5
    for _ in range(5):  # a stranger spends what one client may ask for
        subscribe("victim@example.org", client_ip="198.51.100.66")
    with pytest.raises(RateLimited):
        subscribe("victim@example.org", client_ip="198.51.100.66")

    subscribe("victim@example.org", client_ip="192.0.2.10")  # the owner still gets a code

    assert len(mails_to("victim@example.org")) == 6
    assert Verification.objects.filter(confirmed_at__isnull=True, revoked_at__isnull=True).count() == 1


def test_one_client_gets_a_few_codes_an_hour_for_one_address(subscribe, settings):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0
    settings.VERIFICATION_CODES_PER_ADDRESS_AND_CLIENT_PER_HOUR = 2
    subscribe("reader@example.org", client_ip="198.51.100.7")
    subscribe("reader@example.org", client_ip="198.51.100.7")
    with pytest.raises(RateLimited):
        subscribe("reader@example.org", client_ip="198.51.100.7")
    subscribe("reader@example.org", client_ip="198.51.100.8")
    subscribe("other@example.org", client_ip="198.51.100.7")
    assert len(mails_to("reader@example.org")) == 3


def test_the_addresses_of_one_ipv6_64_count_as_one_client(subscribe, settings):
    settings.VERIFICATION_CODES_PER_IP_PER_HOUR = 2
    subscribe("a@example.org", client_ip="2001:db8:0:7::1")
    subscribe("b@example.org", client_ip="2001:db8:0:7::2")
    with pytest.raises(RateLimited):
        subscribe("c@example.org", client_ip="2001:db8:0:7:ffff:ffff:ffff:3")
    subscribe("c@example.org", client_ip="2001:db8:0:8::1")  # another line
    assert len(mails_to("c@example.org")) == 1


def test_active_subscriber_gets_a_manage_link_not_a_second_subscription(confirmed, subscribe, settings):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0
    confirmed("reader@example.org", categories=["backend"])
    before = len(mails_to("reader@example.org"))

    subscribe("reader@example.org", categories=["frontend"], frequency="weekly")

    subscriber = Subscriber.objects.get()
    assert subscriber.frequency == "daily"  # a form anyone can submit changes nothing
    assert list(subscriber.subscriptions.values_list("category", flat=True)) == ["backend"]
    [notice] = mails_to("reader@example.org")[before:]
    assert "/manage/" in notice.body
    assert Verification.objects.filter(confirmed_at__isnull=True).count() == 0


def test_subscribing_again_reactivates_and_keeps_the_cursor(
    confirmed, subscribe, django_capture_on_commit_callbacks, settings
):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0  # back within the minute, from the same client
    subscriber = confirmed("reader@example.org", categories=["backend"])
    Subscription.objects.update(next_position=17)
    preferences.unsubscribe(subscriber=subscriber)
    assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED

    subscribe("READER@example.org", categories=["backend", "frontend"])
    code = code_from(mails_to("reader@example.org")[-1])
    with django_capture_on_commit_callbacks(execute=True):
        services.confirm_with_code(email="reader@example.org", code=code)

    assert Subscriber.objects.count() == 1
    assert Subscription.objects.count() == 2
    backend = Subscription.objects.get(category="backend")
    assert backend.is_active and backend.next_position == 17


def test_confirm_link_confirms_once(subscribe, django_capture_on_commit_callbacks):
    subscribe("reader@example.org")
    link = confirm_link_from(mails_to("reader@example.org")[0])
    token = link.rstrip("/").rsplit("/", 1)[1]

    with django_capture_on_commit_callbacks(execute=True):
        assert services.confirm_with_link(token=token).status == Subscriber.Status.ACTIVE
    with pytest.raises(services.InvalidLink):
        services.confirm_with_link(token=token)


def test_forged_or_foreign_tokens_are_refused(subscribe):
    from subscriptions import tokens

    subscribe("reader@example.org")
    verification = Verification.objects.get()
    manage_token = tokens.make_token(tokens.Purpose.MANAGE, {"v": verification.id})
    for token in [manage_token, "garbage", "x" * 600, tokens.make_token(tokens.Purpose.CONFIRM, {"v": 999999})]:
        with pytest.raises(services.InvalidLink):
            services.confirm_with_link(token=token)


def test_suppressed_address_gets_no_verification_mail(subscribe):
    suppress_address(email="Bouncy@Example.org", reason="bounce")
    subscribe("bouncy@example.org")
    assert mails_to("bouncy@example.org") == []
    assert Verification.objects.get().revoked_at is not None


@pytest.mark.parametrize(
    "email",
    [
        "",
        "not-an-address",
        "a@b@c",
        "user@exa mple.org",
        "line@example.org\nBcc: victim@example.org",
        "x" * 245 + "@example.org",
    ],
)
def test_bad_addresses_are_refused_with_nothing_written(subscribe, email):
    with pytest.raises(ValidationError):
        subscribe(email)
    assert not Subscriber.objects.exists()


def test_internationalised_domains_are_stored_in_ascii_form(subscribe):
    subscribe("독자@한국.kr".replace("독자", "reader"))
    assert Subscriber.objects.get().email == "reader@xn--3e0b707e.kr"


def test_sending_a_verification_twice_sends_one_mail(subscribe):
    subscribe("reader@example.org")
    verification = Verification.objects.get()
    assert services.send_verification(verification_id=verification.id) is False
    assert len(mails_to("reader@example.org")) == 1

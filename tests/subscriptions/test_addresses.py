"""One address, one spelling: every door stores, finds, limits and suppresses
an address by its canonical form, and a variant spelling neither tells a
known address from an unknown one nor blocks the real owner."""

import uuid

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from mailer.feedback import record_ses_event
from mailer.models import Suppression
from mailer.selectors import is_suppressed
from mailer.suppressions import suppress_address
from subscriptions import importing
from subscriptions.addresses import canonical_email
from subscriptions.models import Subscriber
from tests.factories import make_subscriber
from tests.subscriptions.conftest import code_from, mails_to
from tests.subscriptions.test_admin import ADD, inline_rows, upload
from tests.subscriptions.test_views import FORM, page_text

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBE = reverse("subscriptions:subscribe")
VERIFY = reverse("subscriptions:verify")

# (the real address, a spelling Django's validator took for another one)
UNICODE_VARIANTS = [
    ("alice@example.org", "al\u0130ce@example.org"),  # the dotted capital I: lower() is "i"
    ("kate@example.org", "\u212aate@example.org"),  # the Kelvin sign: lower() is "k"
    ("victim@example.org", "v\u0131ctim@example.org"),  # the dotless i: upper() is "I"
    ("sam@example.org", "\u017fam@example.org"),  # the long s: upper() is "S"
]
ASCII_VARIANTS = [
    ("victim@example.org", '"victim"@example.org'),
    ("victim@example.org", '"vic\\tim"@Example.ORG'),
    ("victim@example.org", "VICTIM@EXAMPLE.ORG"),
    ("reader@xn--bcher-kva.example", "Reader@Bücher.Example"),
]


def subscribe_as(email: str, *, client_ip: str):
    return Client().post(SUBSCRIBE, {**FORM, "email": email}, REMOTE_ADDR=client_ip)


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("New.Reader@Example.ORG", "new.reader@example.org"),
        ("  reader@example.org\u3000", "reader@example.org"),
        ('"reader"@example.org', "reader@example.org"),
        ('"re\\ader"@example.org', "reader@example.org"),
        ('"first.last"@example.org', "first.last@example.org"),
        ('"Two Words"@Example.org', '"two\\ words"@example.org'),
        ('"two\\ words"@example.org', '"two\\ words"@example.org'),
        ('"a..b"@example.org', '"a..b"@example.org'),
        ('".a"@example.org', '".a"@example.org'),
        ('"a\\"b"@example.org', '"a\\"b"@example.org'),
        ("reader@Bücher.Example", "reader@xn--bcher-kva.example"),
        ("reader@XN--BCHER-KVA.example", "reader@xn--bcher-kva.example"),
    ],
)
def test_an_address_has_one_canonical_spelling(value, canonical):
    assert canonical_email(value) == canonical
    assert canonical_email(canonical) == canonical


@pytest.mark.parametrize(
    "value", ["홍길동@example.org", "al\u0130ce@example.org", "\u212aate@example.org", "v\u0131ctim@example.org"]
)
def test_a_local_part_that_is_not_ascii_is_refused_with_its_own_reason(value):
    with pytest.raises(ValidationError) as refused:
        canonical_email(value)
    assert refused.value.code == "non_ascii_local_part"


def test_a_local_part_that_is_not_ascii_gets_a_clear_form_error():
    response = Client().post(SUBSCRIBE, {**FORM, "email": "홍길동@example.org"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "before the @" in response.content.decode()
    assert not Subscriber.objects.exists() and mails_to("홍길동@example.org") == []


@pytest.mark.parametrize(("real", "variant"), UNICODE_VARIANTS + ASCII_VARIANTS)
def test_a_variant_of_a_known_address_gets_the_answer_an_unknown_one_gets(settings, real, variant):
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0  # the same spelling is asked for twice here
    unknown = subscribe_as(variant, client_ip="198.51.100.1")
    Subscriber.objects.all().delete()
    make_subscriber(real)

    known = subscribe_as(variant, client_ip="198.51.100.2")

    assert known.status_code == unknown.status_code < 500
    assert known.get("Location") == unknown.get("Location")
    assert page_text(known) == page_text(unknown)
    assert Subscriber.objects.count() == 1


@pytest.mark.parametrize(("real", "variant"), UNICODE_VARIANTS + ASCII_VARIANTS)
def test_a_variant_spelling_never_blocks_the_real_owner(real, variant):
    subscribe_as(variant, client_ip="198.51.100.66")  # someone else, first

    owner = Client()
    response = owner.post(SUBSCRIBE, {**FORM, "email": real}, REMOTE_ADDR="192.0.2.10")

    assert response.status_code == 302
    [subscriber] = Subscriber.objects.all()
    assert subscriber.email == real
    confirmed = owner.post(VERIFY, {"code": code_from(mails_to(real)[-1])})
    assert confirmed.status_code == 302 and "/manage/" in confirmed["Location"]
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


def test_a_dotless_i_spelling_mails_no_second_code_and_revokes_nothing():
    owner = Client()
    owner.post(SUBSCRIBE, {**FORM, "email": "victim@example.org"}, REMOTE_ADDR="192.0.2.10")
    [first] = mail_to_anyone()

    answer = subscribe_as("v\u0131ctim@example.org", client_ip="198.51.100.66")

    assert answer.status_code == 400
    assert mail_to_anyone() == [first]
    assert owner.post(VERIFY, {"code": code_from(first)}).status_code == 302


def test_a_needlessly_quoted_address_is_the_same_subscriber():
    subscribe_as("victim@example.org", client_ip="192.0.2.10")
    subscribe_as('"victim"@example.org', client_ip="198.51.100.66")
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["victim@example.org"]


def test_the_admin_cannot_add_a_second_spelling_of_a_subscriber(admin_client):
    make_subscriber("alice@example.org")
    for spelling in ['"Alice"@Example.ORG', "ALICE@example.org", "al\u0130ce@example.org"]:
        response = admin_client.post(
            ADD,
            {"email": spelling, "status": "active", "frequency": "daily", "language": "en"}
            | inline_rows((None, "backend", True, None)),
        )
        assert response.status_code == 200  # the form again, with the error
        assert response.context["adminform"].form.errors["email"]
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["alice@example.org"]


def test_the_admin_adds_a_subscriber_under_the_canonical_spelling(admin_client):
    response = admin_client.post(
        ADD,
        {"email": ' "New.Reader"@Bücher.Example ', "status": "pending", "frequency": "daily", "language": "ko"}
        | inline_rows(),
    )
    assert response.status_code == 302
    assert Subscriber.objects.get().email == "new.reader@xn--bcher-kva.example"


def test_the_csv_import_sees_one_subscriber_per_address(admin_client):
    make_subscriber("alice@example.org")
    text = (
        'email,categories\n"Alice"@example.org,backend\nbob@example.org,backend\n"bob"@EXAMPLE.org,backend\n'
        "al\u0130ce@example.org,backend\n"
    )
    plan = importing.plan_subscriber_import(text)
    assert [row.email for row in plan.rows] == ["bob@example.org"]
    assert [(problem.line, problem.value) for problem in plan.duplicates] == [
        (2, "alice@example.org"),
        (4, "bob@example.org"),
    ]
    assert [problem.line for problem in plan.invalid] == [5]

    upload(admin_client, text)
    admin_client.post(reverse("admin:subscriptions_subscriber_import"), {"apply": "1"})
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == ["alice@example.org", "bob@example.org"]


def ses_event(kind: str, address: str) -> dict:
    recipients = {"emailAddress": address}
    detail = (
        {"bounceType": "Permanent", "bouncedRecipients": [recipients]}
        if kind == "Bounce"
        else {"complainedRecipients": [recipients]}
    )
    return {"eventType": kind, "mail": {"messageId": uuid.uuid4().hex}, kind.lower(): detail}


@pytest.mark.parametrize("kind", ["Bounce", "Complaint"])
def test_an_ses_event_acts_on_the_subscriber_whatever_the_spelling(kind, settings):
    settings.ADMINS = []
    make_subscriber("alice@example.org")

    record_ses_event(notification={"MessageId": uuid.uuid4().hex}, message=ses_event(kind, '"Alice"@EXAMPLE.org'))

    assert is_suppressed(email="alice@example.org")
    assert list(Suppression.objects.values_list("email", flat=True)) == ["alice@example.org"]
    if kind == "Complaint":
        assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED


def test_a_suppression_holds_for_every_spelling():
    suppress_address(email='"Bouncy"@Example.org', reason="admin")
    suppress_address(email="bouncy@example.org", reason="bounce")  # the same address: kept once
    assert list(Suppression.objects.values_list("email", flat=True)) == ["bouncy@example.org"]
    for spelling in ["bouncy@example.org", "BOUNCY@example.ORG", '"bouncy"@example.org']:
        assert is_suppressed(email=spelling)

    subscribe_as("Bouncy@Example.org", client_ip="192.0.2.10")
    assert mail_to_anyone() == []


def mail_to_anyone():
    return list(mail.outbox)

"""The SES event webhook and record_ses_event under arbitrary input.

Through /ses/events/ with signature verification on and no way to fetch a
certificate (every outbound request is refused, offline): nothing may be
accepted, so every POST is a 400, never a 500, and nothing is stored.

record_ses_event, called directly as if a message had passed the signature
check: never raises, never stores an event under an invalid address, never
suppresses or unsubscribes an address the message did not name.
"""

import base64
import json
import uuid

import pytest
import responses
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import event, example, given
from hypothesis import strategies as st

from mailer import webhooks
from mailer.feedback import record_ses_event
from mailer.models import Delivery, SendRun, SESEvent, Suppression
from subscriptions.addresses import canonical_email
from subscriptions.models import Subscriber, Subscription
from tests.factories import make_subscriber
from tests.properties.strategies import emails, fuzz, is_valid_email, json_values, valid_emails

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:Generating overly large repr")]

WEBHOOK = "/ses/events/"
TOPIC = "arn:aws:sns:ap-northeast-2:123456789012:dailyq-ses-events"
CERT_URLS = [
    "https://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem",
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    "http://sns.us-east-1.amazonaws.com/x.pem",
    "https://evil.example/SimpleNotificationService-x.pem",
    "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
    "file:///etc/passwd",
    "",
]
SUBSCRIBE_URLS = [
    "https://sns.ap-northeast-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=t",
    "https://evil.example/confirm",
    "http://127.0.0.1:8000/admin/",
]
KINDS = ["Bounce", "Complaint", "Delivery", "bounce", "DELIVERY", "Send", "Open", "Reject", "", "Received"]


@pytest.fixture
def offline_sns(settings):
    """A trusted topic is configured; any certificate download fails (no network)."""
    settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = [TOPIC]
    webhooks.forget_certificates()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    webhooks.forget_certificates()


@pytest.fixture
def deliveries():
    """Two sent deliveries to known subscribers, for messages to point at."""
    run = SendRun.objects.create(day=timezone.localdate(), cutoff=timezone.now(), status="done")
    made = []
    for name in ("known", "other"):
        subscriber = make_subscriber(f"{name}@example.org")
        made.append(
            Delivery.objects.create(
                run=run,
                subscription=subscriber.subscriptions.first(),
                status="sent",
                ses_message_id=f"ses-{name}",
                sent_at=timezone.now(),
            )
        )
    return made


def stored_state():
    return (
        SESEvent.objects.count(),
        Suppression.objects.count(),
        sorted(Delivery.objects.values_list("id", "feedback")),
        sorted(Subscriber.objects.values_list("id", "status")),
    )


# --- SES messages ----------------------------------------------------------------------

spaces = st.text(" \t\u00a0\u3000", max_size=3)  # what str.strip() trims
recipient_addresses = st.one_of(
    valid_emails,
    st.builds(lambda a, b, c: a + b + c, spaces, valid_emails, spaces),
    st.sampled_from(
        ["known@example.org", "KNOWN@example.org", " other@example.org ", "bounce@simulator.amazonses.com"]
    ),
)
odd_addresses = st.one_of(
    emails,
    st.sampled_from(["x@", "@", "@example.org", "a@b@c", "Eve <victim@example.org>", "a" * 300 + "@example.org",
                     "nul\x00@example.org", "\ud800@example.org", "victim@example.org, other@example.org"]),
)  # fmt: skip
plain_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)


def huge_recipient_list(count: int, as_objects: bool):
    addresses = [f"r{n}@example.org" for n in range(count)]
    return [{"emailAddress": a} for a in addresses] if as_objects else addresses


@st.composite
def ses_messages(draw, addresses=recipient_addresses, text=plain_text):
    kind = draw(st.sampled_from(KINDS))
    message = {draw(st.sampled_from(["eventType", "notificationType"])): kind}
    if draw(st.booleans()):
        message["mail"] = {
            "messageId": draw(st.one_of(st.sampled_from(["ses-known", "ses-other", ""]), text)),
            "destination": draw(st.lists(addresses, max_size=3)),
        }
    huge = draw(st.sampled_from([0, 0, 0, 0, 60, 1000]))
    recipients = draw(st.lists(addresses, max_size=4))
    if draw(st.booleans()):
        message["bounce"] = {
            "bounceType": draw(st.one_of(st.sampled_from(["Permanent", "Transient", "Undetermined"]), text)),
            "bouncedRecipients": [{"emailAddress": a, "diagnosticCode": draw(text)} for a in recipients]
            + huge_recipient_list(huge, True),
        }
    if draw(st.booleans()):
        message["complaint"] = {
            "complainedRecipients": [{"emailAddress": a} for a in recipients] + huge_recipient_list(huge, True)
        }
    if draw(st.booleans()):
        message["delivery"] = {"recipients": recipients + huge_recipient_list(huge, False), "smtpResponse": draw(text)}
    if draw(st.booleans()):
        message[draw(text)] = draw(text)
    return message


def named_recipients(message: dict) -> set[str]:
    """Every address the message names as a recipient of its own kind, lower-cased and trimmed."""
    kind = str(message.get("eventType") or message.get("notificationType") or "").lower()
    detail = message.get(kind)
    if not isinstance(detail, dict):
        return set()
    if kind in ("bounce", "complaint"):
        listed = detail.get("bouncedRecipients" if kind == "bounce" else "complainedRecipients")
        values = [r.get("emailAddress") for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []
    else:
        values = detail.get("recipients") if isinstance(detail.get("recipients"), list) else []
    named = {v.strip().lower() for v in values if isinstance(v, str)}
    # DailyQ keeps addresses with the domain in its IDNA form ("0@0.¡" is "0@0.xn--7a").
    return named | {normalised for v in named if (normalised := _normalised(v))}


def _normalised(address: str) -> str | None:
    try:
        return canonical_email(address).lower()
    except ValidationError:
        return None


def check_recorded(message: dict, before_suppressed: set, before_subscribers: dict) -> None:
    named = named_recipients(message)
    kind = str(message.get("eventType") or message.get("notificationType") or "").lower()
    for recorded in SESEvent.objects.all():
        address = recorded.email
        assert address == "" or (is_valid_email(address) and address.lower() in named), address
    for address in set(Suppression.objects.values_list("email", flat=True)) - before_suppressed:
        assert is_valid_email(address) and address.lower() in named, address
    for subscriber in Subscriber.objects.all():
        if subscriber.status != before_subscribers[subscriber.id]:
            assert kind == "complaint" and subscriber.email.lower() in named


def reset_feedback() -> None:
    SESEvent.objects.all().delete()
    Suppression.objects.all().delete()
    Delivery.objects.update(feedback="", feedback_at=None)
    Subscriber.objects.update(status="active", unsubscribed_at=None)
    Subscription.objects.update(is_active=True)


def call_record(message) -> None:
    reset_feedback()
    before_suppressed = set(Suppression.objects.values_list("email", flat=True))
    before_subscribers = dict(Subscriber.objects.values_list("id", "status"))
    result = record_ses_event(notification={"MessageId": str(uuid.uuid4()), "TopicArn": TOPIC}, message=message)
    assert SESEvent.objects.count() == (0 if result is None else 1)
    event(f"stored {SESEvent.objects.count()}, suppressed {min(Suppression.objects.count(), 2)}")
    check_recorded(message, before_suppressed, before_subscribers)


@fuzz(60)
@given(message=ses_messages())
def test_well_formed_events_are_recorded_for_named_valid_addresses_only(deliveries, settings, message):
    settings.ADMINS = []
    call_record(message)


@fuzz(40)
@given(
    message=st.one_of(
        st.dictionaries(
            st.sampled_from(["eventType", "notificationType", "mail", "bounce", "complaint", "delivery"]),
            json_values,
        ),
        st.builds(
            lambda kind, key, value: {"eventType": kind, key: value},
            st.sampled_from(["Bounce", "Complaint", "Delivery"]),
            st.sampled_from(["mail", "bounce", "complaint", "delivery"]),
            st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(["bouncedRecipients", "complainedRecipients", "recipients", "messageId"]),
                    json_values,
                ),
            ),
        ),
    )
)
@example(message={"eventType": "Bounce", "mail": "not an object"})
@example(message={"eventType": 5})
@example(message={"eventType": "Bounce", "bounce": {"bouncedRecipients": True}})
@example(message={"eventType": "Complaint", "complaint": {"complainedRecipients": ["victim@example.org"]}})
def test_events_of_any_shape_never_raise(deliveries, settings, message):
    settings.ADMINS = []
    call_record(message)


@fuzz(40)
@given(message=ses_messages(addresses=odd_addresses, text=st.text(max_size=20)))
@example(
    message={
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "x@"}]},
    }
)
@example(
    message={
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "a" * 300 + "@example.org"}]},
    }
)
@example(message={"eventType": "Delivery", "delivery": {"recipients": ["known@example.org"]}, "note": "\x00"})
@example(
    message={
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "0@0.¡"}]},
    }
)
@example(
    message={
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "0@\x000.AA"}]},
    }
)
def test_events_with_odd_addresses_and_strings_never_raise_or_store_them(deliveries, settings, message):
    settings.ADMINS = []
    call_record(message)


# --- The webhook --------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@st.composite
def sns_envelopes(draw):
    """SNS-shaped JSON objects with string fields and a well-formed (but not genuine) signature."""
    envelope = {
        "Type": draw(st.sampled_from(["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation", "x"])),
        "MessageId": str(uuid.uuid4()),
        "TopicArn": draw(st.sampled_from([TOPIC, TOPIC + "-evil", "arn:aws:sns:us-east-1:999999999999:other"])),
        "Message": draw(st.one_of(ses_messages().map(json.dumps), plain_text)),
        "Timestamp": "2026-12-01T00:00:00.000Z",
        "SignatureVersion": draw(st.sampled_from(["1", "2", "0"])),
        "Signature": b64(draw(st.binary(min_size=0, max_size=300))),
        "SigningCertURL": draw(st.sampled_from(CERT_URLS)),
        "SubscribeURL": draw(st.sampled_from(SUBSCRIBE_URLS)),
        "Token": "t",
    }
    dropped = draw(st.sets(st.sampled_from(sorted(envelope))))
    return {key: value for key, value in envelope.items() if key not in dropped}


def not_a_json_value(body: bytes) -> bool:
    try:
        json.loads(body.decode("utf-8"))
    except ValueError:
        return True
    return False


unsigned_bodies = st.one_of(
    st.binary(max_size=300).filter(not_a_json_value),
    st.text(max_size=100).map(str.encode).filter(not_a_json_value),
    sns_envelopes().map(lambda envelope: json.dumps(envelope).encode()),
    st.just(b"x" * 300_000),
    sns_envelopes().map(lambda envelope: json.dumps({**envelope, "Message": "x" * 300_000}).encode()),
)


def assert_refused(client, offline_sns, body: bytes, content_type: str = "text/plain") -> None:
    before = stored_state()
    # generic() sends the bytes as they are, whatever charset the content type names.
    response = client.generic("POST", WEBHOOK, body, content_type=content_type)
    assert response.status_code == 400, response.status_code
    assert stored_state() == before
    # Only certificate downloads were tried (and failed): no subscription was confirmed.
    assert all(call.request.url.endswith(".pem") for call in offline_sns.calls)


@fuzz(80)
@given(body=unsigned_bodies, content_type=st.sampled_from(["text/plain", "application/json", "text/plain; charset=x"]))
def test_unsigned_sns_messages_are_refused(client, offline_sns, deliveries, body, content_type):
    assert_refused(client, offline_sns, body, content_type=content_type)


@fuzz(40)
@given(
    body=st.one_of(
        json_values.map(lambda value: json.dumps(value).encode()),
        st.dictionaries(
            st.sampled_from(["Type", "Signature", "SigningCertURL", "Message", "MessageId", "TopicArn"]), json_values
        ).map(lambda value: json.dumps(value).encode()),
    )
)
@example(body=b"[]")
@example(body=b'{"Signature": "a"}')
@example(body=b'{"Type": "Notification", "Message": "x", "Signature": "aaaa", "SigningCertURL": 5}')
def test_any_json_body_is_refused_without_a_500(client, offline_sns, deliveries, body):
    assert_refused(client, offline_sns, body)

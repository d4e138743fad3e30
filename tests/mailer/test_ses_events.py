"""The SES event webhook: SNS messages signed by a test certificate, supplied offline."""

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.urls import reverse
from django.utils import timezone
from django_ses import utils as ses_utils

from mailer import webhooks
from mailer.models import Delivery, Question, SendingState, SendRun, SESEvent, Suppression
from mailer.sending import reasons, recovery
from mailer.sending.runs import resume_sending
from subscriptions.models import Subscriber, Subscription
from tests.factories import make_questions, make_subscriber
from tests.mailer import sns as sns_side
from tests.mailer.sns import CERT_URL, TOPIC, notification, post, signed

SUBSCRIBE_URL = "https://sns.ap-northeast-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=t"

pytestmark = pytest.mark.django_db
signing_key, sns = sns_side.signing_key, sns_side.sns  # fixtures


def ses_message(kind: str, email: str, ses_id: str, **detail) -> dict:
    body = {"eventType": kind, "mail": {"messageId": ses_id, "destination": [email]}}
    if kind == "Bounce":
        recipient = {"emailAddress": email, "diagnosticCode": "550 no such user"}
        body["bounce"] = {"bounceType": detail.get("bounce_type", "Permanent"), "bouncedRecipients": [recipient]}
    elif kind == "Complaint":
        body["complaint"] = {"complainedRecipients": [{"emailAddress": email}]}
    else:
        body["delivery"] = {"recipients": [email]}
    return body


def sent_delivery(email: str, *, run_day=None, ses_id=None, minutes_ago=0):
    subscriber = Subscriber.objects.filter(email=email).first() or make_subscriber(email)
    run, _ = SendRun.objects.get_or_create(
        day=run_day or timezone.localdate(), defaults={"cutoff": timezone.now(), "status": "done"}
    )
    return Delivery.objects.create(
        run=run,
        subscription=subscriber.subscriptions.first(),
        status="sent",
        ses_message_id=ses_id or f"ses-{uuid.uuid4().hex}",
        sent_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_permanent_bounce_suppresses_and_links_the_delivery(client, sns, signing_key):
    delivery = sent_delivery("gone@example.org")
    response = post(
        client, signed(signing_key, notification(ses_message("Bounce", "gone@example.org", delivery.ses_message_id)))
    )
    assert response.status_code == 200
    event = SESEvent.objects.get()
    assert (event.kind, event.bounce_type, event.delivery) == ("bounce", "Permanent", delivery)
    delivery.refresh_from_db()
    assert delivery.feedback == "bounced"
    assert Suppression.objects.get().email == "gone@example.org"


def test_transient_bounces_suppress_after_three_of_the_last_five(client, sns, signing_key):
    deliveries = [sent_delivery("soft@example.org", run_day=timezone.localdate() - timedelta(days=n), minutes_ago=n)
                  for n in range(5)]  # fmt: skip
    for delivery in deliveries[:2]:
        post(client, signed(signing_key, notification(
            ses_message("Bounce", "soft@example.org", delivery.ses_message_id, bounce_type="Transient"))))  # fmt: skip
    assert not Suppression.objects.exists()
    post(client, signed(signing_key, notification(
        ses_message("Bounce", "soft@example.org", deliveries[2].ses_message_id, bounce_type="Transient"))))  # fmt: skip
    assert Suppression.objects.get().email == "soft@example.org"


def test_complaint_unsubscribes_and_suppresses(client, sns, signing_key):
    delivery = sent_delivery("angry@example.org")
    post(
        client,
        signed(signing_key, notification(ses_message("Complaint", "angry@example.org", delivery.ses_message_id))),
    )
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert Suppression.objects.get().reason == "complaint"
    delivery.refresh_from_db()
    assert delivery.feedback == "complained"


def test_delivery_event_marks_the_delivery_delivered_and_replays_are_ignored(client, sns, signing_key):
    delivery = sent_delivery("ok@example.org")
    payload = signed(signing_key, notification(ses_message("Delivery", "ok@example.org", delivery.ses_message_id)))
    assert post(client, payload).status_code == 200
    assert post(client, payload).status_code == 200  # SNS retries: harmless
    assert SESEvent.objects.count() == 1
    delivery.refresh_from_db()
    assert delivery.feedback == "delivered"


def test_subscription_confirmation_is_confirmed_at_the_sns_url(client, sns, signing_key):
    sns.get(SUBSCRIBE_URL, body="<ConfirmSubscriptionResponse/>")
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": "t",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2026-12-01T00:00:00.000Z",
    }
    assert post(client, signed(signing_key, confirmation)).status_code == 200
    assert [c.request.url for c in sns.calls if "ConfirmSubscription" in c.request.url] == [SUBSCRIBE_URL]


@pytest.mark.parametrize("tamper", ["message", "signature", "topic", "no-topics-configured"])
def test_forged_or_untrusted_messages_are_rejected(client, sns, signing_key, settings, tamper):
    delivery = sent_delivery("gone@example.org")
    payload = signed(signing_key, notification(ses_message("Bounce", "gone@example.org", delivery.ses_message_id)))
    if tamper == "message":
        payload["Message"] = payload["Message"].replace("gone@", "other@")
    elif tamper == "signature":
        payload["Signature"] = base64.b64encode(b"x" * 256).decode()
    elif tamper == "topic":
        payload = signed(
            signing_key, notification(ses_message("Bounce", "gone@example.org", "x"), topic=TOPIC + "-evil")
        )
    else:
        settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = []
    assert post(client, payload).status_code == 400
    assert not SESEvent.objects.exists() and not Suppression.objects.exists()


def test_webhook_answers_bad_input_with_400_not_500(client, sns):
    assert client.post(reverse("ses-events"), data=b"not json", content_type="text/plain").status_code == 400
    assert client.post(reverse("ses-events"), data=b"x" * 300_000, content_type="text/plain").status_code == 400
    assert client.get(reverse("ses-events")).status_code == 405


def test_reputation_guard_pauses_sending_and_an_admin_resumes(client, sns, signing_key, settings):
    settings.REPUTATION_MIN_SAMPLE = 20
    settings.ADMINS = []
    deliveries = [sent_delivery(f"r{n}@example.org", minutes_ago=n) for n in range(20)]
    post(
        client, signed(signing_key, notification(ses_message("Bounce", "r0@example.org", deliveries[0].ses_message_id)))
    )
    # 1 hard bounce in 20 is 5%: SES's review threshold.
    state = SendingState.objects.get()
    assert state.paused and "bounce rate 5.00%" in state.reason

    resume_sending()
    assert not SendingState.objects.get().paused


def test_reputation_guard_waits_for_enough_data(client, sns, signing_key, settings):
    settings.REPUTATION_MIN_SAMPLE = 50
    deliveries = [sent_delivery(f"r{n}@example.org", minutes_ago=n) for n in range(20)]
    post(
        client, signed(signing_key, notification(ses_message("Bounce", "r0@example.org", deliveries[0].ses_message_id)))
    )
    assert not SendingState.objects.filter(paused=True).exists()


# --- Forged posts cost a 400 and nothing else ---------------------------------------------


@pytest.fixture
def no_network(settings):
    """Every outbound request fails and is recorded: a forged post must make none."""
    settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = [TOPIC]
    webhooks.forget_certificates()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    webhooks.forget_certificates()


def forged(*, topic=TOPIC, cert_url=CERT_URL) -> dict:
    payload = notification(ses_message("Bounce", "victim@example.org", "ses-x"), topic=topic)
    return {
        **payload,
        "SignatureVersion": "1",
        "SigningCertURL": cert_url,
        "Signature": base64.b64encode(b"x" * 256).decode(),
    }


def test_a_post_from_an_untrusted_topic_fetches_no_certificate(client, no_network):
    other_cert = (
        "https://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-00112233445566778899aabbccddeeff.pem"
    )
    response = post(client, forged(topic=TOPIC + "-evil", cert_url=other_cert))
    assert response.status_code == 400
    assert [call.request.url for call in no_network.calls] == []


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-" + "a" * 200_000 + ".pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
        "https://sns.ap-northeast-2.amazonaws.com.evil.example/SimpleNotificationService-0123456789abcdef.pem",
        "https://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem?x=1",
        "https://sns.ap-northeast-2.amazonaws.com:8443/SimpleNotificationService-0123456789abcdef.pem",
        "https://sns.ap-northeast-2.amazonaws.com/other/SimpleNotificationService-0123456789abcdef.pem",
        "http://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem",
    ],
    ids=["200-kB-name", "another-region", "look-alike-host", "query", "port", "path", "http"],
)
def test_a_certificate_url_not_of_the_topics_sns_region_is_never_fetched(client, no_network, cert_url):
    assert post(client, forged(cert_url=cert_url)).status_code == 400
    assert [call.request.url for call in no_network.calls] == []


def test_deeply_nested_json_is_a_400(client, no_network):
    for body in (b"[" * 100_000, b'{"a":' * 100_000, b'{"Type": ' + b"[" * 100_000):
        response = client.post(reverse("ses-events"), data=body, content_type="text/plain")
        assert response.status_code == 400
    assert [call.request.url for call in no_network.calls] == []


def test_certificate_downloads_and_the_certificates_kept_are_bounded(client, no_network):
    no_network.get(re.compile(r"https://sns\.ap-northeast-2\.amazonaws\.com/.*"), status=404)
    for n in range(50):
        cert_url = f"https://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-{n:032x}.pem"
        assert post(client, forged(cert_url=cert_url)).status_code == 400
    # A topic's name is no secret: posts naming it with certificate URLs of its region
    # may cost a download each, but only a few per period, and each process keeps a few.
    assert len(no_network.calls) <= 10
    assert len(ses_utils._CERT_CACHE) == 0
    assert len(webhooks.certificates) <= webhooks.certificates.maxsize


def test_a_failed_certificate_download_is_tried_again_after_a_minute(client, signing_key, settings, monkeypatch):
    settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = [TOPIC]
    now = [1000.0]
    monkeypatch.setattr(webhooks, "_now", lambda: now[0])
    webhooks.forget_certificates()
    delivery = sent_delivery("ok@example.org")
    payload = signed(signing_key, notification(ses_message("Delivery", "ok@example.org", delivery.ses_message_id)))
    with responses.RequestsMock() as sns:
        sns.get(CERT_URL, status=503)
        sns.get(CERT_URL, body=signing_key[1])
        assert post(client, payload).status_code == 400
        assert post(client, payload).status_code == 400  # SNS retries soon: no second download yet
        assert len(sns.calls) == 1
        now[0] += 61
        assert post(client, payload).status_code == 200
        assert len(sns.calls) == 2
    webhooks.forget_certificates()
    assert SESEvent.objects.count() == 1


def test_a_signed_notification_whose_message_is_not_json_is_acknowledged_and_ignored(client, sns, signing_key):
    for message in ("[" * 100_000, "not json", "[1, 2]"):
        payload = signed(signing_key, {**notification({}), "Message": message})
        assert post(client, payload).status_code == 200
    assert not SESEvent.objects.exists()


# --- Send events: what tells the fate of a mail whose worker died ---------------------


def send_event(delivery: Delivery, *, to=None, ses_id="ses-accepted-1", at="2026-12-01T00:00:05.120Z") -> dict:
    """SES's Send event for a daily mail, as the webhook gets it (its tags include the delivery's)."""
    return {
        "eventType": "Send",
        "mail": {
            "timestamp": at,
            "messageId": ses_id,
            "destination": [to or delivery.subscription.subscriber.email],
            "tags": {"dailyq-delivery": [str(delivery.id)], "ses:configuration-set": ["dailyq-events"]},
        },
        "send": {},
    }


def delivery_of_unknown_fate(email="lost@example.org", *, status="failed", claimed_at=None) -> Delivery:
    make_questions("backend", 3)
    subscriber = make_subscriber(email, next_position=2)
    run = SendRun.objects.create(day=timezone.localdate(), cutoff=timezone.now(), status="sending",
                                 started_at=timezone.now())  # fmt: skip
    question_ids = list(Question.objects.filter(position=2).values_list("id", flat=True))
    return Delivery.objects.create(
        run=run,
        subscription=subscriber.subscriptions.get(),
        question_ids=question_ids,
        status=status,
        reason=reasons.UNKNOWN_REASON + "the worker stopped while sending it" if status == "failed" else "",
        claim="lost",
        claimed_at=claimed_at or timezone.now(),
    )


def test_a_send_event_turns_a_delivery_of_unknown_fate_into_sent_and_moves_the_cursor_once(client, sns, signing_key):
    delivery = delivery_of_unknown_fate()
    payload = signed(signing_key, notification(send_event(delivery)))

    assert post(client, payload).status_code == 200
    assert post(client, payload).status_code == 200  # SNS delivers at least once

    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason) == ("sent", reasons.CONFIRMED_REASON)
    assert delivery.ses_message_id == "ses-accepted-1"
    assert delivery.sent_at == datetime(2026, 12, 1, 0, 0, 5, 120000, tzinfo=UTC)
    subscription = delivery.subscription
    subscription.refresh_from_db()
    assert (subscription.next_position, subscription.last_sent_at) == (3, delivery.sent_at)
    assert not SESEvent.objects.exists()  # noted on the delivery, not stored
    delivery.run.refresh_from_db()
    assert delivery.run.status == "done"


def test_a_send_event_for_a_mail_whose_worker_died_settles_it_when_the_claim_expires(
    client, sns, signing_key, settings
):
    settings.DELIVERY_CLAIM_LEASE_SECONDS = 60
    delivery = delivery_of_unknown_fate(status="sending", claimed_at=timezone.now() - timedelta(minutes=2))
    post(client, signed(signing_key, notification(send_event(delivery))))
    delivery.refresh_from_db()
    assert delivery.status == "sending"  # its batch may still be writing it down

    report = recovery.sweep_sends()  # no journal: the worker is gone

    assert (report.unknown, report.confirmed) == (1, 1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.ses_message_id) == ("sent", "ses-accepted-1")
    assert Subscription.objects.get(id=delivery.subscription_id).next_position == 3


def test_a_send_event_tagged_with_another_reader_s_delivery_is_ignored(client, sns, signing_key):
    delivery = delivery_of_unknown_fate()
    post(client, signed(signing_key, notification(send_event(delivery, to="someone-else@example.org"))))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.accepted_message_id) == ("failed", "")


def test_a_confirmed_delivery_leaves_the_cursor_to_the_later_run_that_mails_the_same_question(client, sns, signing_key):
    delivery = delivery_of_unknown_fate()
    later = SendRun.objects.create(day=delivery.run.day + timedelta(days=1), cutoff=timezone.now(), status="done")
    Delivery.objects.create(run=later, subscription=delivery.subscription, status="sent")
    Subscription.objects.filter(id=delivery.subscription_id).update(next_position=3)  # the later mail moved it

    post(client, signed(signing_key, notification(send_event(delivery))))

    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert Subscription.objects.get(id=delivery.subscription_id).next_position == 3

"""SNS as SES event publishing reaches the webhook: notifications signed by a
test certificate, which is served offline at its AWS URL."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.urls import reverse

from mailer import webhooks

TOPIC = "arn:aws:sns:ap-northeast-2:123456789012:dailyq-ses-events"
CERT_URL = "https://sns.ap-northeast-2.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"


@pytest.fixture(scope="session")
def signing_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def sns(signing_key, settings):
    """The SNS side: the signing certificate served at its AWS URL (mocked, offline)."""
    settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS = [TOPIC]
    _key, pem = signing_key
    webhooks.forget_certificates()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(CERT_URL, body=pem)
        yield mock
    webhooks.forget_certificates()


def signed(signing_key, notification: dict) -> dict:
    key, _pem = signing_key
    fields = (
        ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        if notification["Type"] == "Notification"
        else ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    )
    text = "".join(f"{f}\n{notification[f]}\n" for f in fields if notification.get(f))
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 (SNS SignatureVersion 1)
    return {**notification, "SignatureVersion": "1", "SigningCertURL": CERT_URL,
            "Signature": base64.b64encode(signature).decode()}  # fmt: skip


def notification(message: dict, *, topic=TOPIC, message_id=None) -> dict:
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": json.dumps(message),
        "Timestamp": "2026-12-01T00:00:00.000Z",
    }


def post(client, payload: dict):
    return client.post(reverse("ses-events"), data=json.dumps(payload), content_type="text/plain")


def publish(client, signing_key, message: dict, **options):
    """What SNS does with one SES event: a signed notification POSTed to the webhook."""
    return post(client, signed(signing_key, notification(message, **options)))

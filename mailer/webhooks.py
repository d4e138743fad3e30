"""SES events (bounces, complaints, deliveries, sends) arriving by SNS.

Anyone can post to /ses/events/, so a post is checked from the cheapest test
to the dearest, and a forged one costs a 400 and nothing else: the body is
read (at most 256 KB of flat JSON), the topic must be one we trust, the
signing certificate's URL must be SNS's own in the topic's region, and only
then is the certificate fetched (a few downloads per period, a few
certificates kept per process) and the signature checked with django-ses's
verifier. A verified event goes to mailer.feedback.record_ses_event.
"""

import json
import logging
import re
import threading
import time

import requests
from cachetools import TLRUCache
from cryptography import x509
from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django_ses.utils import EventMessageVerifier, is_trusted_sns_subscribe_url

from mailer import feedback
from mailservice import ratelimit
from mailservice.ratelimit import Rate

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024  # SNS messages are at most 256 KB

TOPIC_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:sns:(?P<region>[a-z0-9-]{1,32}):\d{12}:[\w.-]{1,256}", re.ASCII)
# Where SNS keeps its signing certificates: its own host in the topic's region.
CERTIFICATE_URL = re.compile(
    r"https://sns\.(?P<region>[a-z0-9-]{1,32})\.amazonaws\.com(?:\.cn)?/SimpleNotificationService-[0-9a-f]{16,64}\.pem",
    re.ASCII,
)
MAX_CERTIFICATE_BYTES = 64 * 1024

# SNS signs with one certificate per region at a time, so a few are plenty; a
# failed download is tried again after a minute, not remembered for good.
CERTIFICATES_KEPT = 8
CERTIFICATE_TTL_SECONDS = 24 * 3600
CERTIFICATE_FAILURE_TTL_SECONDS = 60
# A topic's name is no secret, so posts naming it could still ask for one
# download each: all web processes together make at most this many.
CERTIFICATE_DOWNLOADS = Rate(limit=10, period=600)


def _now() -> float:
    return time.monotonic()


certificates: TLRUCache = TLRUCache(
    maxsize=CERTIFICATES_KEPT,
    ttu=lambda _url, cert, now: now + (CERTIFICATE_TTL_SECONDS if cert else CERTIFICATE_FAILURE_TTL_SECONDS),
    timer=lambda: _now(),
)
_certificates_lock = threading.Lock()


class MalformedMessage(ValueError):
    pass


def forget_certificates() -> None:
    with _certificates_lock:
        certificates.clear()


def parse_json(text: str | bytes):
    """A JSON value, or MalformedMessage for anything that is not one (nesting too deep included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedMessage("not JSON") from None


def read_sns_message(body: bytes) -> dict:
    if len(body) > MAX_BODY_BYTES:
        raise MalformedMessage("too large")
    try:
        notification = parse_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedMessage("not UTF-8") from None
    # SNS sends a flat object of strings; anything else is not from SNS.
    if not isinstance(notification, dict) or not all(isinstance(v, str) for v in notification.values()):
        raise MalformedMessage("not an SNS message")
    return notification


def is_trusted_topic(notification: dict) -> bool:
    # With no topic configured every post is refused: any AWS customer can sign SNS messages.
    return notification.get("TopicArn") in settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS


def certificate_url(notification: dict) -> str | None:
    """The signing certificate's URL if it is SNS's own in the topic's region, else None."""
    topic = TOPIC_ARN.fullmatch(notification.get("TopicArn", ""))
    url = CERTIFICATE_URL.fullmatch(notification.get("SigningCertURL", ""))
    if topic is None or url is None or url["region"] != topic["region"]:
        return None
    return url.group(0)


def signing_certificate(url: str) -> x509.Certificate | None:
    with _certificates_lock:
        if url in certificates:
            return certificates[url]
    try:
        ratelimit.hit("sns-certificate-downloads", "all", CERTIFICATE_DOWNLOADS)
    except ratelimit.RateLimited:
        logger.warning("SNS certificate %s not downloaded: too many downloads lately", url)
        return None
    cert = _download_certificate(url)
    with _certificates_lock:
        certificates[url] = cert
    return cert


def _download_certificate(url: str) -> x509.Certificate | None:
    try:
        with requests.get(url, timeout=(3, 5), allow_redirects=False, stream=True) as response:
            response.raise_for_status()
            pem = b""
            for chunk in response.iter_content(16 * 1024):
                pem += chunk
                if len(pem) > MAX_CERTIFICATE_BYTES:
                    raise ValueError("certificate too large")
        return x509.load_pem_x509_certificate(pem)
    except (requests.RequestException, ValueError) as exc:
        logger.warning("Could not load the SNS signing certificate %s: %r", url, exc)
        return None


class SNSMessageVerifier(EventMessageVerifier):
    """django-ses's signature check, with the certificate from our bounded cache."""

    def __init__(self, notification: dict, *, cert_url: str):
        super().__init__(notification)
        self._cert_url = cert_url

    @property
    def certificate(self):
        return signing_certificate(self._cert_url)


def is_signed_by_sns(notification: dict, *, cert_url: str) -> bool:
    try:
        return SNSMessageVerifier(notification, cert_url=cert_url).is_verified()
    except Exception as exc:  # malformed signature fields: not verified, never a 500
        logger.info("SNS signature check failed on a malformed message: %r", exc)
        return False


@method_decorator(csrf_exempt, name="dispatch")  # SNS cannot send a CSRF token; the signature is the check
class SESEventsView(View):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        try:
            notification = read_sns_message(request.body)
        except MalformedMessage as exc:
            return HttpResponseBadRequest(f"Not an SNS message: {exc}.")
        if not is_trusted_topic(notification):
            return HttpResponseBadRequest("Untrusted topic.")
        cert_url = certificate_url(notification)
        if cert_url is None:
            return HttpResponseBadRequest("Untrusted signing certificate.")
        if not is_signed_by_sns(notification, cert_url=cert_url):
            return HttpResponseBadRequest("Signature verification failed.")

        kind = notification.get("Type")
        if kind == "SubscriptionConfirmation":
            self.confirm_subscription(notification)
        elif kind == "Notification":
            self.record_event(notification)
        # Anything but a 2xx makes SNS deliver the message again.
        return HttpResponse()

    def confirm_subscription(self, notification: dict) -> None:
        url = notification.get("SubscribeURL")
        if not is_trusted_sns_subscribe_url(url):
            logger.warning("SNS subscription confirmation refused: topic %s", notification.get("TopicArn"))
            return
        try:
            requests.get(url, timeout=10, allow_redirects=False).raise_for_status()
        except requests.RequestException as exc:
            logger.error("Could not confirm the SNS subscription to %s: %s", notification.get("TopicArn"), exc)
            return
        logger.info("Confirmed the SNS subscription to %s", notification.get("TopicArn"))

    def record_event(self, notification: dict) -> None:
        try:
            message = parse_json(notification.get("Message", ""))
        except MalformedMessage:
            logger.warning("SNS notification %s carries no JSON message", notification.get("MessageId"))
            return
        if not isinstance(message, dict):
            return
        if message.get("eventType", message.get("notificationType")) in {"Bounce", "Complaint", "Delivery", "Send"}:
            feedback.record_ses_event(notification=notification, message=message)

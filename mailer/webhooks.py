"""SES events (bounces, complaints, deliveries, sends) arriving by SNS.

django-ses's SESEventWebhookView does the SNS part: it verifies the message
signature against the signing certificate from AWS, checks the topic, and
dispatches by event type. DailyQ adds three things: it refuses every topic
when none is configured (django-ses would accept any, and any AWS customer
can sign SNS messages), it confirms subscriptions with a bounded HTTP call,
and it hands each event to mailer.services.record_ses_event.
"""

import json
import logging

import requests
from django.conf import settings
from django.http import HttpResponseBadRequest
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django_ses import utils as ses_utils
from django_ses.views import SESEventWebhookView

from mailer import services

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024  # SNS messages are at most 256 KB


@method_decorator(csrf_exempt, name="dispatch")  # SNS cannot send a CSRF token; the signature is the check
class SESEventsView(SESEventWebhookView):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        if len(request.body) > MAX_BODY_BYTES:
            return HttpResponseBadRequest("Too large.")
        try:
            notification = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return HttpResponseBadRequest("The request body is not JSON.")
        if not isinstance(notification, dict) or not all(isinstance(v, str) for v in notification.values()):
            # SNS sends a flat object of strings; anything else is not from SNS.
            return HttpResponseBadRequest("Not an SNS message.")
        return super().post(request, *args, **kwargs)

    def verify_event_message(self, notification):
        try:
            return super().verify_event_message(notification)
        except Exception as exc:  # malformed signature fields: not verified, never a 500
            logger.info("SNS signature check failed on a malformed message: %r", exc)
            return False

    def verify_event_topic(self, notification):
        trusted = settings.AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS
        return bool(trusted) and notification.get("TopicArn") in trusted

    def handle_subscription_confirmation(self, notification):
        url = notification.get("SubscribeURL")
        if not self.verify_event_topic(notification) or not ses_utils.is_trusted_sns_subscribe_url(url):
            logger.warning("SNS subscription confirmation refused: topic %s", notification.get("TopicArn"))
            return
        try:
            requests.get(url, timeout=10).raise_for_status()
        except requests.RequestException as exc:
            logger.error("Could not confirm the SNS subscription to %s: %s", notification.get("TopicArn"), exc)
            return
        logger.info("Confirmed the SNS subscription to %s", notification.get("TopicArn"))

    def handle_bounce(self, notification, message):
        services.record_ses_event(notification=notification, message=message)

    def handle_complaint(self, notification, message):
        services.record_ses_event(notification=notification, message=message)

    def handle_delivery(self, notification, message):
        services.record_ses_event(notification=notification, message=message)

    def handle_send(self, notification, message):
        services.record_ses_event(notification=notification, message=message)

"""The gate: every kind of mail, sent through the door that sends it, reaches an
address SES's sandbox allows and is refused for a suppressed address and, in
the sandbox, for one SES has not verified.

The daily mail's batch checks the same rule for its recipients
(test_daily_send.py, test_ses_awareness.py).
"""

import re
from datetime import date

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from mailer import tasks as mailer_tasks
from mailer.gate import SANDBOX, SUPPRESSED, Gate
from mailer.models import SendRun
from mailer.suppressions import suppress_address
from subscriptions import services
from subscriptions.models import Subscription, Verification
from tests.factories import make_questions, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = "reader@example.org"
KINDS = ["verification", "welcome", "manage_link", "run_report", "sending_paused", "test_send"]
STATES = ["allowed", "suppressed", "unverified in the sandbox"]


@pytest.fixture
def sandbox(ses, settings, eager_tasks):
    """Mail lands in the test outbox; the emulator answers SES's identity questions."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SES_SANDBOX = "false"  # until the address's state is set
    settings.SES_MAX_SEND_RATE = 1000
    settings.ADMINS = [("Ops", ADDRESS)]
    return ses


def prepare(kind: str, request):
    """Do what comes before `kind` of mail (while the address may be mailed); returns what sends it."""
    if kind == "verification":
        services.request_subscription(
            email=ADDRESS, categories=["backend"], frequency="daily", language="en", client_ip="192.0.2.1"
        )
        return lambda: services.resend_verification(email=ADDRESS, client_ip="192.0.2.2")
    if kind == "welcome":
        services.request_subscription(
            email=ADDRESS, categories=["backend"], frequency="daily", language="en", client_ip="192.0.2.1"
        )
        code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject).group(1)
        return lambda: services.confirm_with_code(email=ADDRESS, code=code)
    if kind == "manage_link":
        make_subscriber(ADDRESS)
        return lambda: services.resend_verification(email=ADDRESS, client_ip="192.0.2.2")
    if kind == "run_report":
        day = date(2026, 12, 1)
        run = SendRun.objects.create(day=day, cutoff=timezone.now(), status=SendRun.Status.DONE)
        return lambda: mailer_tasks.send_run_report.delay(run_id=run.id)
    if kind == "sending_paused":
        return lambda: mailer_tasks.send_pause_alert.delay(reason="Complaint rate over the limit")
    if kind == "test_send":
        make_questions("backend", 1)
        subscription = Subscription.objects.get(subscriber=make_subscriber("someone@example.org"))
        admin_client = request.getfixturevalue("admin_client")
        preview = reverse("admin:mailer_preview", args=[subscription.id])
        return lambda: admin_client.post(preview, {"to": ADDRESS}, follow=True)
    raise AssertionError(kind)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_mail_passes_the_gate(sandbox, settings, request, kind, state):
    send = prepare(kind, request)
    settings.SES_SANDBOX = "true"
    if state != "unverified in the sandbox":
        sandbox.verify(ADDRESS)
    if state == "suppressed":
        suppress_address(email=ADDRESS, reason="bounce")
    mail.outbox.clear()

    answer = send()

    received = [message for message in mail.outbox if ADDRESS in message.to]
    if state == "allowed":
        assert len(received) == 1, kind
        return
    assert received == [], kind
    if kind == "verification":  # a code that was never mailed is withdrawn with its request
        assert not Verification.objects.filter(revoked_at__isnull=True, confirmed_at__isnull=True).exists()
    if kind == "test_send":  # the admin is told why
        reason = SUPPRESSED if state == "suppressed" else SANDBOX
        assert reason in answer.content.decode()


def test_the_gate_answers_for_many_addresses_at_once(sandbox, settings, django_assert_max_num_queries):
    settings.SES_SANDBOX = "true"
    sandbox.verify("verified@example.org", "example.net")
    suppress_address(email="verified@example.org", reason="complaint")
    emails = ["verified@example.org", "anyone@example.net", "stranger@example.com", "Anyone@Example.net"]

    with django_assert_max_num_queries(1):  # one read of the suppressions, whatever the count
        gate = Gate.check(emails)

    assert [gate.refusal(email) for email in emails] == [SUPPRESSED, None, SANDBOX, None]
    with pytest.raises(KeyError):
        gate.refusal("not-asked@example.net")  # an address never checked is never let through

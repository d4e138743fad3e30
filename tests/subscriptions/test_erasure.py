"""Erasure (subscriptions.erasure): the admin action and `erase_subscriber`, on PostgreSQL with delivery history."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from mailer import selectors
from mailer.feedback import record_ses_event
from mailer.gate import SUPPRESSED, Gate
from mailer.models import Delivery, ErasedAddress, SendRun, SESEvent, Suppression
from mailer.sending.runs import start_daily_send
from mailer.suppressions import suppress_address
from subscriptions.addresses import address_hash
from subscriptions.erasure import erase_address, erase_subscribers
from subscriptions.models import SetAsideAddress, Subscriber, Subscription, Verification
from tests.factories import make_questions, make_subscriber
from tests.subscriptions.conftest import mails_to

pytestmark = pytest.mark.django_db(transaction=True)

MONDAY = date(2026, 11, 30)
CHANGELIST = reverse("admin:subscriptions_subscriber_changelist")


@pytest.fixture(autouse=True)
def _postgres(postgres):
    """Erasure's queries (JSON payloads, partial unique indexes) are checked where they run in production."""


def bounce(email: str, ses_id: str, *, sns_id: str) -> dict:
    message = {
        "eventType": "Bounce",
        "mail": {"messageId": ses_id, "destination": [email], "commonHeaders": {"to": [f"Reader <{email}>"]}},
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": email}]},
    }
    return {"notification": {"MessageId": sns_id}, "message": message}


def history():
    """Two readers mailed on three days, one of them bounced (and so suppressed) on the last."""
    make_questions("backend", 5)
    make_questions("frontend", 5)
    gone = make_subscriber("gone@example.org", categories=["backend", "frontend"])
    stays = make_subscriber("stays@example.org")
    Verification.objects.create(subscriber=gone, categories=["backend"], frequency="daily", language="ko")
    for day in (MONDAY, MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)):
        start_daily_send(day=day)
    # The locmem backend gives no SES ids: give the rows their own, as SES would.
    for delivery in Delivery.objects.all():
        Delivery.objects.filter(id=delivery.id).update(ses_message_id=f"ses-{delivery.id}")
    last = Delivery.objects.filter(subscription__subscriber=gone, run__day=MONDAY + timedelta(days=2)).first()
    record_ses_event(**bounce("gone@example.org", last.ses_message_id, sns_id="sns-1"))
    return gone, stays


def counts_per_run():
    return {run.day: selectors.run_progress(run=run) for run in SendRun.objects.all()}


def test_erasure_removes_the_person_and_keeps_the_counts():
    gone, stays = history()
    before = counts_per_run()
    kept_other = list(Delivery.objects.filter(subscription__subscriber=stays).values("id", "status", "subscription"))
    assert Delivery.objects.count() == 9 and SESEvent.objects.get().email == "gone@example.org"

    report = erase_address(email="Gone@Example.org")

    assert (report.subscribers, report.deliveries, report.events, report.suppressions) == (1, 6, 1, 1)
    assert not Subscriber.objects.filter(email="gone@example.org").exists()
    assert not Subscription.objects.filter(subscriber_id=gone.id).exists()
    assert not Verification.objects.filter(subscriber_id=gone.id).exists()
    # The anonymous rows stay, and so do every run's counts.
    assert Delivery.objects.count() == 9
    assert Delivery.objects.filter(subscription__isnull=True).count() == 6
    assert counts_per_run() == before
    assert Delivery.objects.filter(subscription__isnull=True, feedback="bounced").count() == 1
    # Nothing names the address any more.
    event = SESEvent.objects.get()
    assert event.email == "" and "gone@example.org" not in str(event.payload).lower()
    assert event.payload["bounce"]["bounceType"] == "Permanent"
    assert not Suppression.objects.filter(email="gone@example.org").exists()
    assert "gone@example.org" not in str(list(Suppression.objects.values_list("detail", flat=True)))
    # The other reader is untouched.
    assert list(Delivery.objects.filter(subscription__subscriber=stays).values("id", "status", "subscription")) == (
        kept_other
    )
    assert Subscriber.objects.filter(email="stays@example.org").exists()


def test_a_suppressed_address_stays_suppressed_after_erasure():
    history()
    erase_address(email="gone@example.org")

    suppression = Suppression.objects.get(lifted_at__isnull=True)
    assert suppression.email == "" and suppression.email_hash == address_hash("gone@example.org")
    assert selectors.is_suppressed(email="GONE@example.org")
    assert Gate.check(["gone@example.org"]).refusal("gone@example.org") == SUPPRESSED
    assert not selectors.is_suppressed(email="stays@example.org")
    # Added back as active by an admin, the daily send still skips the address.
    make_subscriber("gone@example.org")
    start_daily_send(day=MONDAY + timedelta(days=7))
    skipped = Delivery.objects.get(
        run__day=MONDAY + timedelta(days=7), subscription__subscriber__email="gone@example.org"
    )
    assert (skipped.status, skipped.reason) == ("skipped", SUPPRESSED)
    # Suppressing it again keeps the one suppression.
    assert suppress_address(email="gone@example.org", reason="admin").id == suppression.id


def test_erasing_twice_or_an_unknown_address_is_harmless():
    history()
    assert erase_address(email="gone@example.org").found
    assert not erase_address(email="gone@example.org").found
    assert not erase_address(email="never@example.org").found
    assert ErasedAddress.objects.count() == 1
    assert Subscriber.objects.count() == 1
    with pytest.raises(ValidationError):
        erase_address(email="not an address")


def test_an_erased_address_can_subscribe_again_as_new(subscribe):
    make_subscriber("again@example.org")
    erase_address(email="again@example.org")
    mail.outbox.clear()

    subscribe("again@example.org", categories=["frontend"])

    subscriber = Subscriber.objects.get(email="again@example.org")
    assert subscriber.status == Subscriber.Status.PENDING and subscriber.link_generation == 0
    assert len(mails_to("again@example.org")) == 1  # the code: not suppressed, so it goes out


def test_an_erased_suppressed_address_gets_no_verification_mail(subscribe):
    make_subscriber("bounced@example.org")
    suppress_address(email="bounced@example.org", reason="bounce")
    erase_address(email="bounced@example.org")
    mail.outbox.clear()

    subscribe("bounced@example.org")

    assert mails_to("bounced@example.org") == []


def test_an_ses_event_after_erasure_does_not_store_the_address():
    gone, _stays = history()
    delivery_id = Delivery.objects.filter(subscription__subscriber=gone).values_list("id", flat=True).first()
    erase_address(email="gone@example.org")
    Suppression.objects.update(lifted_at=MONDAY)  # lifted before: the late bounce must suppress anew

    record_ses_event(**bounce("gone@example.org", f"ses-{delivery_id}", sns_id="sns-late"))

    late = SESEvent.objects.get(sns_message_id="sns-late")
    assert late.email == "" and "gone@example.org" not in str(late.payload).lower()
    assert late.delivery_id == delivery_id
    assert Delivery.objects.get(id=delivery_id).feedback == "bounced"
    suppression = Suppression.objects.get(lifted_at__isnull=True)
    assert suppression.email == "" and suppression.detail == ""
    assert selectors.is_suppressed(email="gone@example.org")


def test_a_returning_reader_s_events_name_them_again():
    make_subscriber("back@example.org")
    erase_address(email="back@example.org")
    make_subscriber("back@example.org")

    record_ses_event(**bounce("back@example.org", "ses-x", sns_id="sns-back"))

    assert SESEvent.objects.get().email == "back@example.org"
    assert Suppression.objects.get().email == "back@example.org"


def test_unsent_deliveries_of_an_erased_reader_are_never_sent():
    make_questions("backend", 2)
    gone = make_subscriber("pending@example.org")
    run = SendRun.objects.create(day=MONDAY, cutoff=MONDAY, status="sending", total=1)
    delivery = Delivery.objects.create(
        run=run, subscription=gone.subscriptions.get(), status="sending", claim="worker-1", question_ids=[1]
    )

    erase_address(email="pending@example.org")

    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.claim, delivery.subscription_id) == (
        "skipped",
        "(erased)",
        "",
        None,
    )


def test_other_spellings_set_aside_for_the_reader_are_erased_with_them():
    kept = make_subscriber("kept@example.org")
    placeholder = Subscriber.objects.create(email="set-aside-1@invalid.dailyq")
    SetAsideAddress.objects.create(subscriber=placeholder, email="Kept@EXAMPLE.org ", reason="duplicate", kept_by=kept)

    erase_subscribers(subscriber_ids=[kept.id])

    assert Subscriber.objects.count() == 0 and SetAsideAddress.objects.count() == 0


def test_a_superuser_erases_a_mailed_subscriber_in_the_admin(admin_client):
    gone, _stays = history()

    confirm = admin_client.post(CHANGELIST, {"action": "erase", "_selected_action": [gone.pk]})
    assert confirm.status_code == 200 and b"gone@example.org" in confirm.content
    # Deliveries are kept (the issue: "no permission to delete … delivery"), so nothing is lacking.
    assert not confirm.context["perms_lacking"] and not confirm.context["protected"]
    done = admin_client.post(CHANGELIST, {"action": "erase", "_selected_action": [gone.pk], "post": "yes"}, follow=True)

    assert done.status_code == 200
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["stays@example.org"]
    assert selectors.is_suppressed(email="gone@example.org")
    assert Delivery.objects.count() == 9


def test_the_delete_button_on_the_subscriber_page_erases_too(admin_client):
    gone, _stays = history()
    delete_url = reverse("admin:subscriptions_subscriber_delete", args=[gone.pk])

    assert admin_client.get(delete_url).status_code == 200
    admin_client.post(delete_url, {"post": "yes"})

    assert not Subscriber.objects.filter(pk=gone.pk).exists()
    assert SESEvent.objects.get().email == ""


def test_erase_subscriber_command(capsys):
    history()
    with pytest.raises(CommandError, match="1 of 3 addresses were not erased"):
        call_command("erase_subscriber", "gone@example.org", "nobody@example.org", "not-an-address")
    out, err = capsys.readouterr()
    assert "gone@example.org: erased 1 subscriber(s)" in out
    assert "nobody@example.org: nothing kept" in out
    assert "not-an-address: not erased" in err
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["stays@example.org"]


def test_deleting_a_subscription_keeps_its_deliveries():
    gone, _stays = history()
    gone.subscriptions.filter(category="frontend").delete()
    assert Delivery.objects.count() == 9


def test_services_do_not_stumble_on_erased_rows(admin_client):
    history()
    Delivery.objects.filter(subscription__subscriber__email="gone@example.org").update(status="failed")
    erase_address(email="gone@example.org")
    run = SendRun.objects.filter(deliveries__subscription__isnull=True).first()

    from mailer.sending.runs import retry_failed_deliveries

    assert retry_failed_deliveries(run=run) == 0
    page = admin_client.get(reverse("admin:mailer_delivery_changelist"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and "(erased)" in page.content.decode()

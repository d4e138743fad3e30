"""Subscribers as CSV through the admin: the export reads back as it was (status, categories, positions, dates)."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailer.suppressions import suppress_address
from subscriptions.models import Subscriber, Verification
from tests.factories import make_subscriber
from tests.subscriptions.conftest import mails_to

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:subscriptions_subscriber_changelist")
IMPORT = reverse("admin:subscriptions_subscriber_import")
JUNE = datetime(2026, 6, 1, 9, 30, 15, 123456, tzinfo=UTC)


def export(admin_client) -> str:
    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": list(Subscriber.objects.values_list("pk", flat=True))}
    )
    return response.content.decode("utf-8-sig")


def upload(admin_client, text: str, *, consented: bool):
    # In English, so the tests read the messages as the code writes them.
    preview = admin_client.post(
        IMPORT, {"file": SimpleUploadedFile("subscribers.csv", text.encode("utf-8"))}, HTTP_ACCEPT_LANGUAGE="en"
    )
    done = admin_client.post(
        IMPORT,
        {"apply": "1"} | ({"already_consented": "on"} if consented else {}),
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    return preview, done


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def people():
    reading = make_subscriber("reading@example.org", categories=["backend", "frontend"], frequency="weekly")
    reading.subscriptions.filter(category="frontend").update(next_position=7)
    make_subscriber("=formula@example.org", language="en")
    make_subscriber("'quoted@example.org")
    left = make_subscriber("left@example.org", categories=["frontend"])
    left.status, left.unsubscribed_at = Subscriber.Status.UNSUBSCRIBED, JUNE
    left.save()
    left.subscriptions.update(is_active=False)
    waiting = Subscriber.objects.create(email="waiting@example.org")
    Verification.objects.create(subscriber=waiting, categories=["frontend"], frequency="daily", language="ko")


def test_export_then_import_gives_the_same_file_and_the_same_people(admin_client):
    people()
    first = export(admin_client)
    Subscriber.objects.all().delete()

    preview, done = upload(admin_client, first, consented=True)

    assert preview.context["plan"].invalid == [] and len(preview.context["plan"].rows) == 5
    assert done.status_code == 200
    second = export(admin_client)

    # The file again, but last_mail_at: it tells what was sent, which an import does not bring.
    def without_last_mail(text):
        return [row[:8] + row[9:] for row in csv.reader(io.StringIO(text))]

    assert without_last_mail(second) == without_last_mail(first)
    left = Subscriber.objects.get(email="left@example.org")
    assert left.status == "unsubscribed" and not left.subscriptions.exists()
    assert Subscriber.objects.get(email="=formula@example.org").language == "en"
    assert Subscriber.objects.get(email="'quoted@example.org").status == "active"
    reading = Subscriber.objects.get(email="reading@example.org")
    assert dict(reading.subscriptions.values_list("category", "next_position")) == {"backend": 1, "frontend": 7}
    # Only the one who was pending is asked to confirm; the unsubscribed one gets nothing.
    assert len(mails_to("waiting@example.org")) == 1
    assert mails_to("left@example.org") == [] and mails_to("reading@example.org") == []


def test_an_unsubscribed_row_stays_unsubscribed_without_the_consent_statement(admin_client):
    text = "email,status,categories\nleft@example.org,unsubscribed,\nnew@example.org,active,backend\n"

    upload(admin_client, text, consented=False)

    assert Subscriber.objects.get(email="left@example.org").status == "unsubscribed"
    assert mails_to("left@example.org") == []
    # Active by the file's word is not consent here: the new one confirms first.
    assert Subscriber.objects.get(email="new@example.org").status == "pending"
    assert len(mails_to("new@example.org")) == 1


def test_a_row_without_categories_is_an_error_the_preview_names(admin_client):
    text = "email,status,categories\nnone@example.org,active,\nbare@example.org,,\nok@example.org,,frontend\n"

    preview, _done = upload(admin_client, text, consented=True)

    plan = preview.context["plan"]
    assert [(p.line, p.value) for p in plan.invalid] == [(2, "none@example.org"), (3, "bare@example.org")]
    assert all("No categories" in p.reason for p in plan.invalid)
    assert "No categories" in preview.content.decode() or all(
        p.reason in preview.content.decode() for p in plan.invalid
    )
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["ok@example.org"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("x@example.org,gone,backend,,", "Unknown status: gone"),
        ("x@example.org,active,cooking,,", "Unknown or retired category: cooking"),
        ("x@example.org,active,backend,yesterday,", "confirmed_at is not a date and time"),
        ("x@example.org,active,backend,2026-06-01T09:00:00,", "confirmed_at is not a date and time"),
        ("x@example.org,active,backend,,frontend:3", "next_positions: frontend:3"),
        ("x@example.org,active,backend,,backend:0", "next_positions: backend:0"),
    ],
)
def test_rows_the_export_could_not_have_written_are_named(admin_client, row, problem):
    text = "email,status,categories,confirmed_at,next_positions\n" + row + "\n"
    preview, _done = upload(admin_client, text, consented=True)
    [invalid] = preview.context["plan"].invalid
    assert problem in invalid.reason
    assert not Subscriber.objects.exists()


def test_in_the_sandbox_the_import_does_not_claim_mails_it_did_not_queue(admin_client, ses, settings):
    settings.SES_SANDBOX = "true"
    ses.verify("verified@example.org")
    suppress_address(email="bounced@example.org", reason="bounce")
    text = "email,categories\nverified@example.org,backend\nstranger@example.org,backend\nbounced@example.org,backend\n"

    _preview, done = upload(admin_client, text, consented=False)

    messages = said(done)
    assert "(1 verification mails queued)" in messages[0]
    assert any("1 imported addresses got no verification mail (sandbox: recipient not verified)" in m for m in messages)
    assert any("1 imported addresses got no verification mail (address suppressed)" in m for m in messages)
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"pending"}
    assert len([m for m in ses.messages() if "verified@example.org" in str(m)]) == 1
    assert not [m for m in ses.messages() if "stranger@example.org" in str(m)]

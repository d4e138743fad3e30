"""Django admin for subscribers: lists, actions, CSV export and import."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailer.models import Suppression
from subscriptions.models import Subscriber, Verification
from tests.subscriptions.conftest import mails_to

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:subscriptions_subscriber_changelist")
IMPORT = reverse("admin:subscriptions_subscriber_import")


def run_action(admin_client, action, subscribers):
    return admin_client.post(
        CHANGELIST, {"action": action, "_selected_action": [s.pk for s in subscribers]}, follow=True
    )


def test_changelist_shows_status_categories_and_searches_by_email(admin_client, confirmed):
    confirmed("reader@example.org", categories=["backend", "frontend"])
    Subscriber.objects.create(email="waiting@example.org")

    page = admin_client.get(CHANGELIST).content.decode()
    assert "reader@example.org" in page and "waiting@example.org" in page

    found = admin_client.get(CHANGELIST, {"q": "READER"}).content.decode()
    assert "reader@example.org" in found and "waiting@example.org" not in found

    active = admin_client.get(CHANGELIST, {"status__exact": "active"}).content.decode()
    assert "waiting@example.org" not in active


def test_actions_resend_unsubscribe_and_suppress_call_the_services(admin_client, confirmed):
    active = confirmed("reader@example.org")
    pending = Subscriber.objects.create(email="waiting@example.org")

    run_action(admin_client, "resend_verification", [active, pending])
    assert len(mails_to("waiting@example.org")) == 1
    assert Verification.objects.filter(subscriber=pending, confirmed_at__isnull=True).count() == 1

    run_action(admin_client, "unsubscribe_all", [active])
    active.refresh_from_db()
    assert active.status == Subscriber.Status.UNSUBSCRIBED

    run_action(admin_client, "suppress", [pending])
    assert Suppression.objects.get().email == "waiting@example.org"
    run_action(admin_client, "resend_verification", [pending])
    assert len(mails_to("waiting@example.org")) == 1  # suppressed: no second mail


def test_csv_export_lists_the_selection_and_defuses_formulas(admin_client, confirmed):
    confirmed("=cmd@example.org", categories=["frontend"])
    response = run_action(admin_client, "export_csv", Subscriber.objects.all())
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["email", "status", "categories"]
    assert rows[1][:3] == ["'=cmd@example.org", "active", "frontend"]


def upload(admin_client, text: str):
    return admin_client.post(IMPORT, {"file": SimpleUploadedFile("subscribers.csv", text.encode("utf-8"))})


CSV_TEXT = (
    "email,categories,frequency,language\n"
    "new1@example.org,backend,daily,ko\n"
    "New2@Example.org,backend;frontend,weekly,en\n"
    "new1@example.org,frontend,daily,ko\n"  # repeated in the file
    "existing@example.org,backend,daily,ko\n"  # already a subscriber
    "not-an-email,backend,daily,ko\n"
    "bad-category@example.org,cooking,daily,ko\n"
    "bad-frequency@example.org,backend,hourly,ko\n"
)


def test_csv_import_previews_then_sends_verification_mails(admin_client):
    Subscriber.objects.create(email="existing@example.org")

    preview = upload(admin_client, CSV_TEXT)
    assert preview.status_code == 200
    plan = preview.context["plan"]
    assert [row.email for row in plan.rows] == ["new1@example.org", "New2@example.org"]
    assert [(p.line, p.value) for p in plan.duplicates] == [(4, "new1@example.org"), (5, "existing@example.org")]
    assert [p.line for p in plan.invalid] == [6, 7, 8]
    assert Subscriber.objects.count() == 1  # the preview wrote nothing

    done = admin_client.post(IMPORT, {"apply": "1"}, follow=True)
    assert done.status_code == 200
    assert Subscriber.objects.count() == 3
    assert set(Subscriber.objects.filter(status="pending").values_list("email", flat=True)) >= {
        "new1@example.org",
        "New2@example.org",
    }
    assert len(mails_to("new1@example.org")) == 1 and len(mails_to("New2@example.org")) == 1
    new2 = Subscriber.objects.get(email="New2@example.org")
    assert Verification.objects.get(subscriber=new2).categories == ["backend", "frontend"]


def test_csv_import_with_stated_consent_activates_without_mail(admin_client):
    upload(admin_client, "email,categories\nok@example.org,frontend\n")
    admin_client.post(IMPORT, {"apply": "1", "already_consented": "on"})
    subscriber = Subscriber.objects.get()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert list(subscriber.subscriptions.values_list("category", flat=True)) == ["frontend"]
    assert mails_to("ok@example.org") == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"name,phone\nx,1\n", "The first row must name the columns"),
    ],
)
def test_csv_import_rejects_unreadable_files_clearly(admin_client, content, problem):
    response = admin_client.post(IMPORT, {"file": SimpleUploadedFile("x.csv", content)}, HTTP_ACCEPT_LANGUAGE="en")
    assert problem in response.content.decode()
    assert not Subscriber.objects.exists()


def test_import_needs_a_logged_in_admin(client):
    response = client.get(IMPORT)
    assert response.status_code == 302 and "login" in response["Location"]

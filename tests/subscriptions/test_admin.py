"""Django admin for subscribers: lists, actions, CSV export and import."""

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from mailer.models import Suppression
from mailer.sending.runs import plan_daily_send, start_daily_send
from subscriptions.models import Subscriber, Subscription, Track, Verification
from tests.factories import make_questions
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
    assert [row.email for row in plan.rows] == ["new1@example.org", "new2@example.org"]
    assert [(p.line, p.value) for p in plan.duplicates] == [(4, "new1@example.org"), (5, "existing@example.org")]
    assert [p.line for p in plan.invalid] == [6, 7, 8]
    assert Subscriber.objects.count() == 1  # the preview wrote nothing

    done = admin_client.post(IMPORT, {"apply": "1"}, follow=True)
    assert done.status_code == 200
    assert Subscriber.objects.count() == 3
    assert set(Subscriber.objects.filter(status="pending").values_list("email", flat=True)) >= {
        "new1@example.org",
        "new2@example.org",
    }
    assert len(mails_to("new1@example.org")) == 1 and len(mails_to("new2@example.org")) == 1
    new2 = Subscriber.objects.get(email="new2@example.org")
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


# --- Adding and editing subscribers and subscriptions by hand ---

ADD = reverse("admin:subscriptions_subscriber_add")


def next_send_day():
    """The first weekday after today: its send's cut-off is still ahead."""
    day = timezone.localdate() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def inline_rows(*rows, initial=0):
    """The subscription inline's part of a subscriber form: (id, category, active, next_position) rows."""
    data = {
        "subscriptions-TOTAL_FORMS": str(len(rows)),
        "subscriptions-INITIAL_FORMS": str(initial),
        "subscriptions-MIN_NUM_FORMS": "0",
        "subscriptions-MAX_NUM_FORMS": "1000",
    }
    for i, (pk, category, active, position) in enumerate(rows):
        data |= {f"subscriptions-{i}-id": pk or "", f"subscriptions-{i}-category": category}
        if active:
            data[f"subscriptions-{i}-is_active"] = "on"
        if position is not None:
            data[f"subscriptions-{i}-next_position"] = str(position)
    return data


def change_subscriber(admin_client, subscriber, *rows, **fields):
    data = {"email": subscriber.email, "frequency": subscriber.frequency, "language": subscriber.language}
    existing = [(s.pk, s.category, s.is_active, s.next_position) for s in subscriber.subscriptions.order_by("pk")]
    return admin_client.post(
        reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk]),
        data | fields | inline_rows(*existing, *rows, initial=len(existing)),
    )


@pytest.fixture
def questions_with_start_positions():
    make_questions("backend", 5)
    make_questions("frontend", 5)
    Track.objects.filter(slug="backend").update(start_position=3)
    Track.objects.filter(slug="frontend").update(start_position=2)


def test_subscriber_added_as_active_is_confirmed_and_mailed_from_the_start_position(
    admin_client, questions_with_start_positions
):
    response = admin_client.post(
        ADD,
        {"email": "added@example.org", "status": "active", "frequency": "daily", "language": "ko"}
        | inline_rows((None, "backend", True, None)),
    )
    assert response.status_code == 302

    subscriber = Subscriber.objects.get(email="added@example.org")
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert subscriber.confirmed_at is not None and subscriber.consented_at is not None
    subscription = subscriber.subscriptions.get()
    assert subscription.activated_at is not None and subscription.next_position == 3
    assert mails_to("added@example.org") == []  # no verification mail: the admin vouched for the consent

    start_daily_send(day=next_send_day())
    [daily] = mails_to("added@example.org")
    assert "backend question 3" in daily.subject


def test_subscriber_added_as_pending_gets_no_mail_until_confirmed(admin_client, questions_with_start_positions):
    response = admin_client.post(
        ADD,
        {"email": "waiting@example.org", "status": "pending", "frequency": "daily", "language": "ko"}
        | inline_rows((None, "backend", True, None)),
    )
    assert response.status_code == 302
    assert Subscriber.objects.get().confirmed_at is None
    assert plan_daily_send(day=next_send_day()).total == 0  # only an active subscriber's subscriptions are due


def test_subscriber_add_page_offers_only_pending_or_active(admin_client):
    form = admin_client.get(ADD).context["adminform"].form
    assert [value for value, _label in form.fields["status"].choices] == ["pending", "active"]


def test_status_is_changed_by_the_actions_not_on_the_change_page(admin_client):
    pending = Subscriber.objects.create(email="waiting@example.org")
    response = change_subscriber(admin_client, pending, status="active", frequency="weekly")
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.status == Subscriber.Status.PENDING and pending.confirmed_at is None
    assert pending.frequency == "weekly"  # the rest of the form is saved


def test_subscription_added_on_the_subscriber_page_is_mailed_from_the_start_position(
    admin_client, confirmed, questions_with_start_positions
):
    subscriber = confirmed("reader@example.org", categories=["backend"])
    mail.outbox.clear()
    assert admin_client.get(reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])).status_code == 200
    # A position typed into the new row (the field is disabled) does not count.
    response = change_subscriber(admin_client, subscriber, (None, "frontend", True, 5))
    assert response.status_code == 302

    frontend = subscriber.subscriptions.get(category="frontend")
    assert frontend.is_active and frontend.activated_at is not None and frontend.next_position == 2

    start_daily_send(day=next_send_day())
    subjects = sorted(m.subject for m in mails_to("reader@example.org"))
    assert len(subjects) == 2 and any("frontend question 2" in subject for subject in subjects)


def test_subscription_added_on_its_own_page_is_mailed_from_the_start_position(
    admin_client, confirmed, questions_with_start_positions
):
    subscriber = confirmed("reader@example.org", categories=["backend"])
    assert admin_client.get(reverse("admin:subscriptions_subscription_add")).status_code == 200
    response = admin_client.post(
        reverse("admin:subscriptions_subscription_add"),
        {"subscriber": subscriber.pk, "category": "frontend", "is_active": "on", "next_position": "5"},
    )
    assert response.status_code == 302
    frontend = subscriber.subscriptions.get(category="frontend")
    assert frontend.activated_at is not None and frontend.next_position == 2
    assert plan_daily_send(day=next_send_day()).due == {"daily/backend": 1, "daily/frontend": 1}


def test_subscription_switched_off_and_on_in_the_admin_is_dated_and_goes_on_where_it_stopped(admin_client, confirmed):
    subscriber = confirmed("reader@example.org", categories=["backend", "frontend"])
    Subscription.objects.filter(category="backend").update(next_position=4)
    backend = subscriber.subscriptions.get(category="backend")
    first_activation = backend.activated_at

    response = admin_client.post(
        reverse("admin:subscriptions_subscription_change", args=[backend.pk]),
        {"subscriber": subscriber.pk, "category": "backend", "next_position": "4"},
    )
    assert response.status_code == 302
    backend.refresh_from_db()
    assert not backend.is_active and backend.deactivated_at is not None

    change_subscriber(admin_client, subscriber)  # unchanged rows change nothing
    backend.refresh_from_db()
    assert not backend.is_active

    response = admin_client.post(
        reverse("admin:subscriptions_subscription_change", args=[backend.pk]),
        {"subscriber": subscriber.pk, "category": "backend", "is_active": "on", "next_position": "4"},
    )
    assert response.status_code == 302
    backend.refresh_from_db()
    assert backend.is_active and backend.deactivated_at is None
    assert backend.activated_at > first_activation and backend.next_position == 4

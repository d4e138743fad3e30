"""What the admin's lists and pages say about subscribers: will they get mail, their deliveries and events."""

import re
from datetime import date

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone, translation

from mailer.models import Delivery, Question, SendRun, SESEvent
from mailer.suppressions import suppress_address
from subscriptions.models import Subscriber, Track
from subscriptions.selectors import MailState
from tests.factories import make_questions, make_subscriber

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:subscriptions_subscriber_changelist")
DELIVERIES = reverse("admin:mailer_delivery_changelist")
EVENTS = reverse("admin:mailer_sesevent_changelist")


def listed(response) -> list[str]:
    return sorted(s.email for s in response.context["cl"].result_list)


@pytest.fixture
def readers():
    reading = make_subscriber("reading@example.org")
    bounced = make_subscriber("bounced@example.org")
    suppress_address(email="bounced@example.org", reason="bounce")  # what a hard bounce does
    pending = Subscriber.objects.create(email="pending@example.org")
    left = make_subscriber("left@example.org", categories=["frontend"])
    left.status, left.unsubscribed_at = Subscriber.Status.UNSUBSCRIBED, timezone.now()
    left.save()
    left.subscriptions.update(is_active=False)
    dropped = make_subscriber("dropped@example.org", categories=["frontend"])
    dropped.subscriptions.update(is_active=False)
    return reading, bounced, pending, left, dropped


def test_a_suppressed_subscriber_does_not_show_as_getting_mail(admin_client, readers):
    response = admin_client.get(CHANGELIST)
    states = {s.email: s.mail_state for s in response.context["cl"].result_list}
    assert states == {
        "reading@example.org": MailState.GETS_MAIL,
        "bounced@example.org": MailState.SUPPRESSED,
        "pending@example.org": MailState.PENDING,
        "left@example.org": MailState.UNSUBSCRIBED,
        "dropped@example.org": MailState.NO_CATEGORY,
    }
    with translation.override("ko"):
        assert str(MailState.SUPPRESSED.label) in response.content.decode()

    assert listed(admin_client.get(CHANGELIST, {"mail_state": "suppressed"})) == ["bounced@example.org"]
    assert listed(admin_client.get(CHANGELIST, {"mail_state": "gets_mail"})) == ["reading@example.org"]


def test_the_category_filter_counts_and_lists_active_subscriptions_only(admin_client, readers):
    response = admin_client.get(CHANGELIST, {"category": "frontend", "_facets": "1"})
    assert listed(response) == []  # left and dropped had frontend, and have it no more

    page = admin_client.get(CHANGELIST, {"_facets": "1"}).content.decode()
    backend, frontend = Track.objects.get(slug="backend").name_ko, Track.objects.get(slug="frontend").name_ko
    assert re.search(rf">\s*{backend} \(2\)\s*<", page)  # reading and bounced
    assert re.search(rf">\s*{frontend} \(0\)\s*<", page)
    assert listed(admin_client.get(CHANGELIST, {"category": "backend"})) == [
        "bounced@example.org",
        "reading@example.org",
    ]


def test_the_subscriber_page_shows_their_deliveries_and_ses_events(admin_client):
    make_questions("backend", 1)
    reader = make_subscriber("reader@example.org")
    other = make_subscriber("other@example.org")
    run = SendRun.objects.create(day=date(2026, 11, 30), cutoff=timezone.now(), status="done")
    mine = Delivery.objects.create(
        run=run, subscription=reader.subscriptions.get(), status="sent", ses_message_id="m-1", feedback="bounced"
    )
    Delivery.objects.create(run=run, subscription=other.subscriptions.get(), status="sent", ses_message_id="m-2")
    SESEvent.objects.create(
        sns_message_id="e-1", kind="bounce", bounce_type="Permanent", email="reader@example.org", payload={}
    )
    SESEvent.objects.create(sns_message_id="e-2", kind="delivery", email="other@example.org", payload={})

    page = admin_client.get(reverse("admin:subscriptions_subscriber_change", args=[reader.pk])).content.decode()

    assert reverse("admin:mailer_delivery_change", args=[mine.pk]) in page
    assert "2026-11-30" in page and "Permanent" in page
    assert "m-2" not in page
    # "All" links open the lists filtered to this reader.
    deliveries = admin_client.get(DELIVERIES, {"subscriber": reader.pk}).context["cl"].result_list
    assert [d.pk for d in deliveries] == [mine.pk]
    events = admin_client.get(EVENTS, {"subscriber": reader.pk}).context["cl"].result_list
    assert [e.sns_message_id for e in events] == ["e-1"]


def test_deliveries_can_be_filtered_by_feedback(admin_client):
    reader, other = make_subscriber("a@example.org"), make_subscriber("b@example.org")
    run = SendRun.objects.create(day=date(2026, 11, 30), cutoff=timezone.now(), status="done")
    bounced = Delivery.objects.create(
        run=run, subscription=reader.subscriptions.get(), status="sent", feedback="bounced"
    )
    complained = Delivery.objects.create(
        run=run, subscription=other.subscriptions.get(), status="sent", feedback="complained"
    )
    assert [d.pk for d in admin_client.get(DELIVERIES, {"feedback": "bounced"}).context["cl"].result_list] == [
        bounced.pk
    ]
    assert [d.pk for d in admin_client.get(DELIVERIES, {"feedback": "complained"}).context["cl"].result_list] == [
        complained.pk
    ]


def test_a_start_position_past_the_bank_is_refused_naming_the_limit(admin_client):
    make_questions("backend", 5)
    settings_row = Track.objects.get(slug="backend")
    changelist = reverse("admin:subscriptions_track_changelist")
    others = Track.objects.exclude(pk=settings_row.pk)
    rows = [settings_row, *others]
    form = {"form-TOTAL_FORMS": str(len(rows)), "form-INITIAL_FORMS": str(len(rows)), "_save": "Save"}
    for n, track in enumerate(rows):
        form |= {
            f"form-{n}-id": str(track.pk),
            f"form-{n}-position": str(track.position),
            f"form-{n}-is_active": "on",
            f"form-{n}-start_position": str(track.start_position),
        }
    form["form-0-start_position"] = "6"

    response = admin_client.post(changelist, form)

    assert response.status_code == 200
    [error] = response.context["cl"].formset.errors[0]["start_position"]
    assert "5" in error and "6" not in error  # the last position, the limit
    settings_row.refresh_from_db()
    assert settings_row.start_position == 1

    assert admin_client.post(changelist, form | {"form-0-start_position": "5"}).status_code == 302
    settings_row.refresh_from_db()
    assert settings_row.start_position == 5


def test_a_category_without_questions_starts_at_1(admin_client):
    add = reverse("admin:subscriptions_track_add")
    track = {"slug": "devops", "name_ko": "데브옵스", "name_en": "DevOps", "position": "3", "is_active": "on"}
    response = admin_client.post(add, track | {"start_position": "3"})
    assert response.status_code == 200 and response.context["adminform"].form.errors["start_position"]
    assert not Track.objects.filter(slug="devops").exists()
    assert admin_client.post(add, track | {"start_position": "1"}).status_code == 302
    assert Track.objects.get(slug="devops").name_en == "DevOps"


def test_publish_and_unpublish_say_what_they_did(admin_client):
    first, second = make_questions("backend", 2)
    changelist = reverse("admin:mailer_question_changelist")

    response = admin_client.post(
        changelist, {"action": "unpublish", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    with translation.override("ko"):
        said = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(said) == 1 and "2" in said[0]
    assert not Question.objects.filter(is_published=True).exists()

    response = admin_client.post(changelist, {"action": "publish", "_selected_action": [second.pk]}, follow=True)
    assert len(list(get_messages(response.wsgi_request))) == 1

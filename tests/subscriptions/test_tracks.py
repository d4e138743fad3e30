"""Tracks are data: an operator adds and retires them in the admin, and every door follows."""

import re
from datetime import date

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from mailer.models import Announcement, Question
from mailer.sending.runs import start_daily_send
from subscriptions import importing, services
from subscriptions.models import Subscriber, Subscription, Track
from subscriptions.selectors import MailState, with_mail_state
from tests.factories import LONG_AGO, make_questions, make_subscriber
from tests.subscriptions.conftest import code_from, mails_to

pytestmark = pytest.mark.django_db(transaction=True)

TUESDAY = date(2026, 12, 1)
DEVOPS = {"slug": "devops", "name_ko": "데브옵스", "name_en": "DevOps", "position": "3", "is_active": "on"}


def offered_on_the_form(client, language="ko") -> list[str]:
    page = client.get(reverse("subscriptions:landing"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    return re.findall(r'name="categories" value="([^"]+)"', page)


def retire(admin_client, slug: str) -> None:
    track = Track.objects.get(slug=slug)
    form = {k: getattr(track, k) for k in ("name_ko", "name_en", "position", "start_position")}
    response = admin_client.post(reverse("admin:subscriptions_track_change", args=[track.pk]), form)  # unticked
    assert response.status_code == 302
    assert not Track.objects.get(slug=slug).is_active


def test_a_track_added_in_the_admin_is_offered_subscribed_to_and_mailed(admin_client, client):
    make_questions("devops", 4)
    response = admin_client.post(reverse("admin:subscriptions_track_add"), DEVOPS | {"start_position": "2"})
    assert response.status_code == 302

    assert offered_on_the_form(client) == ["backend", "frontend", "devops"]
    english = client.get(reverse("subscriptions:landing"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "DevOps" in english and reverse("mailer:archive", args=["devops"]) in english
    assert "데브옵스" in client.get(reverse("subscriptions:landing"), HTTP_ACCEPT_LANGUAGE="ko").content.decode()

    client.post(
        reverse("subscriptions:subscribe"),
        {"email": "ops@example.org", "categories": ["devops"], "frequency": "daily", "consent": "on"},
    )
    client.post(reverse("subscriptions:verify"), {"code": code_from(mails_to("ops@example.org")[0])})
    subscription = Subscription.objects.get(subscriber__email="ops@example.org")
    assert (subscription.category, subscription.next_position) == ("devops", 2)  # the track's start position
    Subscription.objects.update(activated_at=LONG_AGO)  # confirmed before the send day's cut-off

    mail.outbox.clear()
    start_daily_send(day=TUESDAY)
    [daily] = mails_to("ops@example.org")
    assert daily.subject == "[DailyQ 데브옵스] devops question 2"
    assert client.get(reverse("mailer:archive", args=["devops"])).status_code == 200


def test_a_retired_track_is_not_offered_or_mailed_but_keeps_its_archive(admin_client, client):
    make_questions("backend", 2)
    make_questions("frontend", 2)
    both = make_subscriber("both@example.org", categories=["backend", "frontend"])
    make_subscriber("front@example.org", categories=["frontend"])

    retire(admin_client, "frontend")

    assert offered_on_the_form(client) == ["backend"]
    assert client.get(reverse("mailer:archive", args=["frontend"])).status_code == 200
    assert client.get(reverse("mailer:feed", args=["frontend"])).status_code == 200
    landing = client.get(reverse("subscriptions:landing")).content.decode()
    assert reverse("mailer:archive", args=["frontend"]) in landing  # browsing it still works

    start_daily_send(day=TUESDAY)
    assert [m.subject for m in mails_to("both@example.org")] == ["[DailyQ 백엔드] backend question 1"]
    assert mails_to("front@example.org") == []
    states = dict(with_mail_state(Subscriber.objects.all()).values_list("email", "mail_state"))
    assert states == {"both@example.org": MailState.GETS_MAIL, "front@example.org": MailState.NO_CATEGORY}
    # The subscription is kept as it was: bringing the track back resumes it.
    assert Subscription.objects.get(subscriber=both, category="frontend").is_active

    with pytest.raises(ValidationError):
        services.request_subscription(
            email="new@example.org", categories=["frontend"], frequency="daily", language="ko"
        )
    with translation.override("en"):
        plan = importing.plan_subscriber_import("email,categories\nnew@example.org,frontend\n")
    assert not plan.rows and "retired" in plan.invalid[0].reason
    with pytest.raises(ValidationError):
        Announcement(subject="Hi", body_md="Hello", category="frontend").full_clean()


def test_a_slug_is_fixed_once_made_and_a_track_is_never_deleted(admin_client):
    track = Track.objects.get(slug="backend")
    page = admin_client.get(reverse("admin:subscriptions_track_change", args=[track.pk])).content.decode()
    assert 'name="slug"' not in page  # shown, not editable: rows and links name the track by it
    assert (
        admin_client.post(reverse("admin:subscriptions_track_delete", args=[track.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Track.objects.filter(slug="backend").exists()


def test_the_importer_names_the_tracks_there_are(tmp_path):
    (tmp_path / "a.md").write_text('---\ntitle: "Pods?"\norder: 1\n---\nA group of containers.\n', encoding="utf-8")
    with pytest.raises(CommandError, match="Unknown track 'devops': use backend, frontend"):
        call_command("import_questions", str(tmp_path), "--category", "devops")

    Track.objects.create(slug="devops", name_ko="데브옵스", name_en="DevOps", position=3)
    call_command("import_questions", str(tmp_path), "--category", "devops")
    assert Question.objects.filter(category="devops").count() == 1


def test_announce_refuses_a_track_that_is_not_offered(tmp_path):
    body = tmp_path / "body.md"
    body.write_text("Hello", encoding="utf-8")
    with pytest.raises(CommandError, match="category"):
        call_command("announce", "--subject", "Hi", "--body-file", str(body), "--category", "cooking", "--dry-run")


def test_each_reader_reads_a_track_name_in_their_own_language():
    # Mails are built in one language (a worker's, the page's) and rendered in the reader's.
    make_questions("backend", 1)
    make_subscriber("en@example.org", language="en")
    make_subscriber("ko@example.org", language="ko")

    with translation.override("ko"):
        start_daily_send(day=TUESDAY)
        services.send_manage_link(subscriber_id=Subscriber.objects.get(email="en@example.org").id)

    [daily, manage_link] = mails_to("en@example.org")
    assert daily.subject.startswith("[DailyQ Backend]") and "백엔드" not in daily.body
    assert "Backend" in manage_link.body and "백엔드" not in manage_link.body
    assert mails_to("ko@example.org")[0].subject.startswith("[DailyQ 백엔드]")


def test_the_admin_lists_filter_by_track_by_name(admin_client):
    make_subscriber("b@example.org", categories=["backend"])
    make_subscriber("f@example.org", categories=["frontend"])
    changelist = reverse("admin:subscriptions_subscription_changelist")

    page = admin_client.get(changelist).content.decode()
    assert "프론트엔드" in page and "?category=frontend" in page
    listed = admin_client.get(changelist, {"category": "frontend"}).context["cl"].result_list
    assert [s.subscriber.email for s in listed] == ["f@example.org"]

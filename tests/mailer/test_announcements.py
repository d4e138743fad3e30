"""Announcements: the service, the command and the admin, with tasks run in-process.

The end-to-end send beside a daily run on real Celery workers is in
test_announcement_integration.py.
"""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from mailer import schedule, selectors
from mailer.models import Announcement, Delivery, SendRun, Suppression
from mailer.sending import announcements, runs
from mailer.sending.announcements import start_announcement
from mailer.sending.runs import start_daily_send
from subscriptions.models import Subscriber, Subscription
from tests.factories import make_questions, make_subscriber
from tests.mailer.test_dashboard import cells, ses_unreachable, with_dashboard  # noqa: F401 (a fixture)
from tests.mailer.test_ses_awareness import fake_ses  # noqa: F401 (a fixture)

TUESDAY = date(2026, 12, 1)
# 07:10 in Seoul that Tuesday: just after the daily send's time.
MORNING = datetime(2026, 11, 30, 22, 10, tzinfo=UTC)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(eager_tasks, settings):
    settings.SITE_URL = "https://dailyq.example"
    settings.ADMINS = [("Ops", "ops@example.org")]
    mail.outbox.clear()


def mails_to(address):
    return [m for m in mail.outbox if m.to == [address]]


def readers_mails():
    return [m for m in mail.outbox if m.to != ["ops@example.org"]]


def notice(**audience) -> Announcement:
    return announcements.create_announcement(
        subject="DailyQ moves to a new domain",
        body_md="We now send from **new.example**.\n\nNothing changes.",
        **audience,
    )


def test_each_person_gets_one_mail_whatever_their_categories_and_nothing_twice():
    make_questions("backend", 2)
    make_subscriber("one@example.org", categories=["backend"], next_position=2)
    make_subscriber("both@example.org", categories=["backend", "frontend"])
    Subscriber.objects.create(email="pending@example.org")  # never confirmed
    gone = make_subscriber("gone@example.org")
    gone.status = Subscriber.Status.UNSUBSCRIBED
    gone.save()
    announcement = notice()

    run = start_announcement(announcement_id=announcement.id, now=MORNING)

    run.refresh_from_db()
    assert run.kind == SendRun.Kind.ANNOUNCEMENT and run.announcement == announcement
    assert run.status == SendRun.Status.DONE and run.total == 2
    assert sorted(m.to[0] for m in readers_mails()) == ["both@example.org", "one@example.org"]
    [both] = mails_to("both@example.org")
    assert both.subject == "[DailyQ] DailyQ moves to a new domain"
    assert "<strong>new.example</strong>" in both.alternatives[0][0]
    assert "We now send from **new.example**." in both.body
    # One-click unsubscribe (RFC 8058) ends every subscription: the notice is to the person.
    assert both.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert both.extra_headers["List-Unsubscribe"].startswith("<https://dailyq.example/unsubscribe/")
    # Nobody's place in the questions moved.
    assert Subscription.objects.get(subscriber__email="one@example.org").next_position == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert set(Delivery.objects.values_list("subscriber__email", flat=True)) == {"both@example.org", "one@example.org"}
    # The run report went to ADMINS, once.
    assert len(mails_to("ops@example.org")) == 1

    again = start_announcement(announcement_id=announcement.id, now=MORNING + timedelta(minutes=5))
    assert again.id == run.id
    assert len(readers_mails()) == 2 and Delivery.objects.count() == 2


def test_a_person_is_one_delivery_even_if_rows_are_inserted_twice():
    make_subscriber("both@example.org", categories=["backend", "frontend"])
    run = start_announcement(announcement_id=notice().id, now=MORNING)
    subscriber = Subscriber.objects.get()
    other = Subscription.objects.filter(subscriber=subscriber).exclude(deliveries__run=run).get()

    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(run=run, subscriber=subscriber, subscription=other)


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ({"category": "frontend"}, {"front@example.org", "both@example.org"}),
        ({"frequency": "weekly"}, {"weekly@example.org"}),
        ({"language": "en"}, {"en@example.org"}),
        ({"category": "backend", "language": "ko"}, {"both@example.org", "weekly@example.org"}),
    ],
)
def test_the_audience_is_chosen_by_category_frequency_and_language(audience, expected):
    make_subscriber("front@example.org", categories=["frontend"])
    make_subscriber("both@example.org", categories=["backend", "frontend"])
    make_subscriber("weekly@example.org", frequency="weekly")
    make_subscriber("en@example.org", language="en")
    announcement = notice(**audience)
    assert selectors.audience_size(announcement=announcement) == len(expected)

    start_announcement(announcement_id=announcement.id, now=MORNING)

    assert {m.to[0] for m in readers_mails()} == expected


def test_english_readers_get_the_mail_around_the_text_in_english():
    make_subscriber("en@example.org", language="en")
    start_announcement(announcement_id=notice().id, now=MORNING)
    [sent] = mails_to("en@example.org")
    assert "Unsubscribe" in sent.body and "Manage my subscription" in sent.alternatives[0][0]


def test_suppressed_addresses_are_skipped_with_the_reason():
    make_subscriber("ok@example.org")
    make_subscriber("bounced@example.org")
    Suppression.objects.create(email="bounced@example.org", reason=Suppression.Reason.BOUNCE)

    start_announcement(announcement_id=notice().id, now=MORNING)

    assert [m.to[0] for m in readers_mails()] == ["ok@example.org"]
    skipped = Delivery.objects.get(subscription__subscriber__email="bounced@example.org")
    assert skipped.status == Delivery.Status.SKIPPED and skipped.reason == "address suppressed"


def test_a_reader_who_left_before_the_batch_is_skipped():
    make_subscriber("leaving@example.org", categories=["backend", "frontend"])
    runs.pause_sending(reason="test")
    start_announcement(announcement_id=notice().id, now=MORNING)
    Subscriber.objects.update(status=Subscriber.Status.UNSUBSCRIBED)
    runs.resume_sending()  # queues the waiting rows again (the tasks run at once here)

    assert readers_mails() == []
    assert Delivery.objects.get().reason == "unsubscribed before the send"


def test_an_announcement_and_the_daily_send_of_the_same_morning_are_both_sent():
    """A run of each kind on one day: neither takes the other's place, nor its rows."""
    make_questions("backend", 3)
    make_subscriber("reader@example.org")
    runs.pause_sending(reason="test")  # both runs' rows wait together
    announcement_run = start_announcement(announcement_id=notice().id, now=MORNING - timedelta(hours=1))
    assert announcement_run.day == TUESDAY

    # Beat's tick at 07:10 still starts the day's questions: the announcement is no daily run.
    tick = schedule.check_send_schedule(now=MORNING)
    assert tick.outcome == "started"
    daily_run = SendRun.objects.get(kind=SendRun.Kind.DAILY, day=TUESDAY)
    assert Delivery.objects.filter(run=announcement_run, status=Delivery.Status.PENDING).count() == 1
    runs.resume_sending()

    subjects = sorted(m.subject for m in mails_to("reader@example.org"))
    assert subjects == ["[DailyQ 백엔드] backend question 1", "[DailyQ] DailyQ moves to a new domain"]
    assert Subscription.objects.get().next_position == 2
    assert start_daily_send(day=TUESDAY).id == daily_run.id


def test_a_retry_of_the_daily_run_is_not_blocked_by_an_announcement():
    make_questions("backend", 3)
    make_subscriber("reader@example.org")
    daily = start_daily_send(day=TUESDAY - timedelta(days=1))
    Delivery.objects.filter(run=daily).update(status=Delivery.Status.FAILED, reason="MessageRejected")
    start_announcement(announcement_id=notice().id, now=MORNING)

    assert runs.retry_failed_deliveries(run=daily) == 1


def test_double_clicks_at_once_make_one_run(postgres):
    for n in range(20):
        make_subscriber(f"r{n}@example.org")
    announcement = notice()
    barrier, results = threading.Barrier(4), []

    def click():
        barrier.wait()
        try:
            results.append(start_announcement(announcement_id=announcement.id, now=MORNING).id)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1 and SendRun.objects.count() == 1
    assert Delivery.objects.count() == 20 and len(readers_mails()) == 20


def test_a_scheduled_announcement_starts_at_its_time_once():
    make_subscriber("reader@example.org")
    at = MORNING + timedelta(hours=2)
    announcement = announcements.schedule_announcement(announcement=notice(), at=at)

    assert announcements.start_due_announcements(now=at - timedelta(minutes=1)) == []
    assert readers_mails() == []
    assert announcements.start_due_announcements(now=at) == [announcement.id]
    assert announcements.start_due_announcements(now=at + timedelta(minutes=1)) == []
    assert len(readers_mails()) == 1 and SendRun.objects.count() == 1


def test_a_started_announcement_cannot_be_rescheduled():
    make_subscriber("reader@example.org")
    announcement = notice()
    start_announcement(announcement_id=announcement.id, now=MORNING)
    with pytest.raises(announcements.AnnouncementStarted):
        announcements.schedule_announcement(announcement=announcement, at=MORNING + timedelta(days=1))


def test_send_now_twice_sends_once():
    make_subscriber("reader@example.org")
    announcement = notice()
    announcements.send_announcement_now(announcement=announcement)
    with pytest.raises(announcements.AnnouncementStarted):
        announcements.send_announcement_now(announcement=announcement)
    assert len(readers_mails()) == 1


def test_the_run_is_capped_at_the_remaining_quota(fake_ses):  # noqa: F811
    fake_ses.max_24_hour_send = 2
    for n in range(4):
        make_subscriber(f"r{n}@example.org")

    run = start_announcement(announcement_id=notice().id)

    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["deferred", "deferred", "sent", "sent"]
    assert len(fake_ses.accepted) == 2
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE


def test_a_mail_sent_through_ses_carries_its_delivery_tag(fake_ses):  # noqa: F811
    make_subscriber("reader@example.org")
    start_announcement(announcement_id=notice().id)
    assert len(fake_ses.accepted) == 1
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and delivery.ses_message_id


# --- The preview and test send ------------------------------------------------------------


def test_test_send_goes_through_the_gate_with_inert_links():
    Suppression.objects.create(email="blocked@example.org", reason=Suppression.Reason.ADMIN)
    announcement = notice()

    sent = announcements.send_test_announcement(announcement=announcement, to="me@example.org", language="en")
    refused = announcements.send_test_announcement(announcement=announcement, to="blocked@example.org", language="ko")

    assert sent.sent and refused.refused == "address suppressed"
    [test_mail] = mails_to("me@example.org")
    assert test_mail.subject.startswith("[TEST] ")
    assert "/unsubscribe/" not in test_mail.body and "List-Unsubscribe" not in test_mail.extra_headers
    assert mails_to("blocked@example.org") == []
    assert not SendRun.objects.exists()


# --- The command --------------------------------------------------------------------------


@pytest.fixture
def body_file(tmp_path):
    path = tmp_path / "notice.md"
    path.write_text("We now send from **new.example**.", encoding="utf-8")
    return path


def test_command_dry_run_counts_people_and_sends_nothing(body_file, capsys):
    make_subscriber("both@example.org", categories=["backend", "frontend"])
    make_subscriber("front@example.org", categories=["frontend"])

    call_command("announce", "--subject", "Hello", "--body-file", str(body_file), "--category", "frontend", "--dry-run")

    assert "would go to 2 people" in capsys.readouterr().out
    assert readers_mails() == [] and not Announcement.objects.exists()


def test_command_sends_once_however_often_it_is_run(body_file, capsys):
    make_subscriber("reader@example.org", language="en")
    args = ["announce", "--subject", "Hello", "--body-file", str(body_file), "--language", "en", "--wait"]

    call_command(*args)
    call_command(*args)

    out = capsys.readouterr().out
    assert "1 deliveries" in out and "Done" in out
    assert len(readers_mails()) == 1
    assert Announcement.objects.count() == 1 and SendRun.objects.count() == 1


def test_command_refuses_a_bad_body_or_audience(body_file, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("announce", "--subject", "Hello", "--body-file", str(tmp_path / "missing.md"))
    with pytest.raises(CommandError, match="language"):
        call_command("announce", "--subject", "Hello", "--body-file", str(body_file), "--language", "fr")
    (tmp_path / "long.md").write_text("x" * 30_000)
    with pytest.raises(CommandError, match="body_md"):
        call_command("announce", "--subject", "Hello", "--body-file", str(tmp_path / "long.md"))
    assert not Announcement.objects.exists()


# --- The admin ----------------------------------------------------------------------------


def test_admin_send_asks_first_stating_the_audience_size_then_sends(admin_client):
    make_subscriber("both@example.org", categories=["backend", "frontend"])
    make_subscriber("back@example.org")
    make_subscriber("front@example.org", categories=["frontend"])
    announcement = notice(category="backend")
    url = reverse("admin:mailer_announcement_send", args=[announcement.pk])

    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'id="confirm"' in page and "goes to 2 people" in page
    assert readers_mails() == [] and not SendRun.objects.exists()

    response = admin_client.post(url, {"at": ""})

    assert response.status_code == 302
    assert sorted(m.to[0] for m in readers_mails()) == ["back@example.org", "both@example.org"]
    run = SendRun.objects.get()
    # A second press (a double click) sends nothing more.
    admin_client.post(url, {"at": ""})
    assert len(readers_mails()) == 2 and SendRun.objects.get() == run
    change = admin_client.get(reverse("admin:mailer_announcement_change", args=[announcement.pk])).content.decode()
    assert reverse("admin:mailer_sendrun_change", args=[run.pk]) in change
    runs_page = admin_client.get(reverse("admin:mailer_sendrun_changelist"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Announcement" in runs_page.content.decode()


def test_admin_schedules_for_a_time(admin_client):
    make_subscriber("reader@example.org")
    announcement = notice()
    url = reverse("admin:mailer_announcement_send", args=[announcement.pk])

    admin_client.post(url, {"at": "2026-12-24 09:00"})

    announcement.refresh_from_db()
    assert announcement.scheduled_at == datetime(2026, 12, 24, 0, 0, tzinfo=UTC)  # 09:00 in Seoul
    assert readers_mails() == [] and not SendRun.objects.exists()


def test_admin_preview_shows_html_text_and_headers_and_test_sends_to_chosen_addresses(admin_client):
    Suppression.objects.create(email="blocked@example.org", reason=Suppression.Reason.ADMIN)
    announcement = notice()
    url = reverse("admin:mailer_announcement_preview", args=[announcement.pk])

    page = admin_client.get(url, {"language": "en"}).content.decode()
    html = admin_client.get(reverse("admin:mailer_announcement_preview_html", args=[announcement.pk, "en"]))

    assert "List-Unsubscribe" in page and "We now send from **new.example**." in page
    assert "<strong>new.example</strong>" in html.content.decode()
    assert html["Content-Security-Policy"].startswith("default-src 'none'")

    response = admin_client.post(
        url, {"to": "me@example.org, you@example.org, blocked@example.org", "language": "ko"}, follow=True
    )

    assert sorted(m.to[0] for m in mail.outbox) == ["me@example.org", "you@example.org"]
    assert "address suppressed" in response.content.decode()
    assert not SendRun.objects.exists()


def test_admin_preview_refuses_bad_test_addresses(admin_client):
    announcement = notice()
    url = reverse("admin:mailer_announcement_preview", args=[announcement.pk])
    response = admin_client.post(url, {"to": "me@example.org, not an address", "language": "ko"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert mail.outbox == []


def test_a_sent_announcement_is_read_only_in_the_admin(admin_client):
    make_subscriber("reader@example.org")
    announcement = notice()
    start_announcement(announcement_id=announcement.id, now=MORNING)
    change_url = reverse("admin:mailer_announcement_change", args=[announcement.pk])

    admin_client.post(change_url, {"subject": "Changed", "body_md": "Changed"})

    announcement.refresh_from_db()
    assert announcement.subject == "DailyQ moves to a new domain"
    page = admin_client.get(change_url).content.decode()
    assert reverse("admin:mailer_announcement_send", args=[announcement.pk]) not in page


@with_dashboard
def test_the_dashboard_lists_an_announcement_as_a_run_of_its_own(admin_client, ses_unreachable):  # noqa: F811
    make_subscriber("reader@example.org")
    # The day's questions, run the same day (made directly: whether today is a send day does not matter here).
    today = timezone.localdate()
    daily = SendRun.objects.create(day=today, cutoff=timezone.now(), status=SendRun.Status.DONE, total=1)
    Delivery.objects.create(run=daily, subscription=Subscription.objects.get(), status=Delivery.Status.FAILED)
    run = start_announcement(announcement_id=notice().id)

    page = admin_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    row = cells(page, f"run-announcement-{run.pk}")
    assert "Announcement: DailyQ moves to a new domain" in row[0]
    assert row[1] == "Done" and row[2:4] == ["1", "0"]  # one sent, none failed
    assert cells(page, f"run-{today:%Y-%m-%d}")[2:4] == ["0", "1"]


def test_erasing_a_person_keeps_their_announcement_row_without_them():
    from subscriptions.erasure import erase_address

    make_subscriber("leaving@example.org", categories=["backend", "frontend"])
    make_subscriber("staying@example.org")
    runs.pause_sending(reason="test")  # the rows wait, unsent
    run = start_announcement(announcement_id=notice().id, now=MORNING)

    erase_address(email="leaving@example.org")

    erased = Delivery.objects.get(run=run, subscriber__isnull=True)
    assert erased.subscription_id is None and erased.status == Delivery.Status.SKIPPED
    assert Delivery.objects.filter(run=run).count() == 2
    runs.resume_sending()
    assert [m.to[0] for m in readers_mails()] == ["staying@example.org"]


def test_a_send_event_settles_an_announcement_of_unknown_fate_without_moving_a_cursor():
    from mailer.sending import recovery
    from mailer.sending.reasons import UNKNOWN_REASON

    make_subscriber("reader@example.org", next_position=4)
    runs.pause_sending(reason="test")
    run = start_announcement(announcement_id=notice().id, now=MORNING)
    Delivery.objects.filter(run=run).update(
        status=Delivery.Status.FAILED,
        reason=UNKNOWN_REASON + "ReadTimeoutError",
        accepted_message_id="ses-1",
        accepted_at=MORNING,
    )
    SendRun.objects.filter(id=run.id).update(started_at=timezone.now())

    assert recovery.confirm_sent_deliveries() == 1

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and delivery.ses_message_id == "ses-1"
    assert Subscription.objects.get().next_position == 4

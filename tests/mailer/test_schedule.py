"""The send schedule: which days are send days and when each starts
(selectors.send_start), beat's tick, and missed days. Every time is passed in."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from mailer import schedule, selectors
from mailer.models import MissedDay, SendingState, SendRun, SendSchedule, SkipDate
from mailer.sending import runs
from subscriptions.models import Subscription
from tests.conftest import free_port
from tests.factories import make_questions, make_subscriber

SEOUL = ZoneInfo("Asia/Seoul")
MONDAY = date(2026, 11, 30)
TUESDAY = MONDAY + timedelta(days=1)
SATURDAY = MONDAY + timedelta(days=5)
# 2026-10-05 is the substitute holiday for National Foundation Day (a Monday);
# 2026-09-24 the day before Chuseok (a Thursday).
HOLIDAY_MONDAY = date(2026, 10, 5)
CHUSEOK_EVE = date(2026, 9, 24)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(eager_tasks, settings):
    settings.SITE_URL = "https://dailyq.example"
    settings.ADMINS = [("Ops", "ops@example.org")]
    settings.MISSED_SEND_GRACE_MINUTES = 30
    settings.LATE_SEND_POLICY = "send"
    mail.outbox.clear()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SEOUL)


def save_schedule(*, send_time=time(7, 0), weekdays=(0, 1, 2, 3, 4), skip_korean_holidays=False, skip=()):
    row = SendSchedule.objects.create(
        id=1, send_time=send_time, weekdays=list(weekdays), skip_korean_holidays=skip_korean_holidays
    )
    for day in skip:
        SkipDate.objects.create(schedule=row, day=day)
    return row


def missed_alerts():
    """Mails to ADMINS about a missed day (they link to the missed days; the run report does not)."""
    return [m for m in mail.outbox if m.to == ["ops@example.org"] and "/admin/mailer/missedday/" in m.body]


# --- Which days, at what time -------------------------------------------------------------


def test_without_a_saved_schedule_the_env_time_applies_monday_to_friday(settings):
    settings.DAILY_SEND_HOUR, settings.DAILY_SEND_MINUTE = 6, 45

    assert selectors.send_start(MONDAY) == at(MONDAY, 6, 45)
    assert selectors.send_start(SATURDAY) is None
    assert runs.send_cutoff(TUESDAY) == at(TUESDAY, 6, 45)


def test_the_admins_schedule_sets_time_and_weekdays(settings):
    settings.DAILY_SEND_HOUR = 7
    save_schedule(send_time=time(8, 30), weekdays=[1, 5])  # Tuesday and Saturday

    assert selectors.send_start(MONDAY) is None
    assert selectors.send_start(TUESDAY) == at(TUESDAY, 8, 30)
    assert selectors.send_start(SATURDAY) == at(SATURDAY, 8, 30)
    assert runs.send_cutoff(TUESDAY) == at(TUESDAY, 8, 30)


def test_a_skip_date_is_no_send_day_and_start_daily_send_refuses_it():
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    save_schedule(skip=[TUESDAY])

    assert not selectors.is_send_day(TUESDAY)
    assert runs.start_daily_send(day=TUESDAY) is None
    assert not SendRun.objects.exists() and not mail.outbox


def test_korean_public_holidays_are_skipped_only_with_the_switch():
    save_schedule(skip_korean_holidays=False)
    assert selectors.is_send_day(HOLIDAY_MONDAY) and selectors.is_send_day(CHUSEOK_EVE)

    SendSchedule.objects.filter(id=1).update(skip_korean_holidays=True)
    assert not selectors.is_send_day(HOLIDAY_MONDAY)
    assert not selectors.is_send_day(CHUSEOK_EVE)
    assert selectors.is_send_day(HOLIDAY_MONDAY + timedelta(days=1))


def test_weekly_digest_goes_on_tuesday_when_monday_is_a_holiday():
    make_questions("backend", 6)
    make_subscriber("weekly@example.org", frequency="weekly")
    make_subscriber("daily@example.org")
    save_schedule(skip_korean_holidays=True)
    tuesday = HOLIDAY_MONDAY + timedelta(days=1)

    assert runs.start_daily_send(day=HOLIDAY_MONDAY) is None
    runs.start_daily_send(day=tuesday)
    runs.start_daily_send(day=tuesday + timedelta(days=1))

    assert len([m for m in mail.outbox if m.to == ["weekly@example.org"]]) == 1
    assert Subscription.objects.get(subscriber__email="weekly@example.org").next_position == 6
    assert len([m for m in mail.outbox if m.to == ["daily@example.org"]]) == 2


def test_weekly_digest_is_not_sent_again_later_in_a_week_whose_monday_was_a_send_day():
    make_questions("backend", 6)
    make_subscriber("weekly@example.org", frequency="weekly")

    runs.start_daily_send(day=MONDAY)
    runs.start_daily_send(day=TUESDAY)

    assert len([m for m in mail.outbox if m.to == ["weekly@example.org"]]) == 1


# --- Beat's tick ------------------------------------------------------------------------------


def test_tick_before_the_send_time_starts_nothing():
    make_questions("backend", 2)
    make_subscriber("a@example.org")

    assert schedule.check_send_schedule(now=at(TUESDAY, 6, 59)).outcome == "not yet"
    assert not SendRun.objects.exists()


def test_tick_at_the_send_time_starts_the_run_once():
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    save_schedule(send_time=time(7, 15))

    assert schedule.check_send_schedule(now=at(TUESDAY, 7, 0)).outcome == "not yet"
    assert schedule.check_send_schedule(now=at(TUESDAY, 7, 15)).outcome == "started"
    assert schedule.check_send_schedule(now=at(TUESDAY, 7, 16)).outcome == "running"

    assert SendRun.objects.get().day == TUESDAY
    assert len([m for m in mail.outbox if m.to == ["a@example.org"]]) == 1
    assert not MissedDay.objects.exists()


def test_tick_within_the_grace_starts_on_time_without_an_alert():
    make_questions("backend", 2)
    make_subscriber("a@example.org")

    assert schedule.check_send_schedule(now=at(TUESDAY, 7, 29)).outcome == "started"
    assert not MissedDay.objects.exists()
    assert not missed_alerts()


def test_tick_on_a_day_without_a_send_does_nothing_however_late():
    assert schedule.check_send_schedule(now=at(SATURDAY, 12, 0)).outcome == "no send"
    assert not MissedDay.objects.exists() and not mail.outbox


def test_service_first_started_at_nine_sends_late_and_tells_admins_once(settings):
    settings.LATE_SEND_POLICY = "send"
    make_questions("backend", 2)
    make_subscriber("a@example.org")

    assert schedule.check_send_schedule(now=at(TUESDAY, 9, 0)).outcome == "started late"
    assert schedule.check_send_schedule(now=at(TUESDAY, 9, 1)).outcome == "running"

    missed = MissedDay.objects.get()
    assert missed.day == TUESDAY and missed.scheduled_at == at(TUESDAY, 7, 0)
    assert missed.started_at == at(TUESDAY, 9, 0) and missed.alerted_at is not None
    assert SendRun.objects.get().day == TUESDAY
    assert len([m for m in mail.outbox if m.to == ["a@example.org"]]) == 1
    [alert] = missed_alerts()
    assert "2026-12-01" in alert.subject
    assert "07:00" in alert.body and "09:00" in alert.body


def test_with_the_skip_policy_a_missed_day_waits_for_the_admins_button(settings):
    settings.LATE_SEND_POLICY = "skip"
    make_questions("backend", 2)
    make_subscriber("a@example.org")

    assert schedule.check_send_schedule(now=at(TUESDAY, 9, 0)).outcome == "missed"
    assert schedule.check_send_schedule(now=at(TUESDAY, 9, 1)).outcome == "missed"
    assert not SendRun.objects.exists()
    assert len(missed_alerts()) == 1

    run = schedule.send_missed_day(day=TUESDAY, now=at(TUESDAY, 9, 30))

    assert run.day == TUESDAY
    assert MissedDay.objects.get().started_at == at(TUESDAY, 9, 30)
    assert len(missed_alerts()) == 1
    assert len([m for m in mail.outbox if m.to == ["a@example.org"]]) == 1
    assert schedule.check_send_schedule(now=at(TUESDAY, 9, 31)).outcome == "running"


def test_a_past_missed_day_cannot_be_sent_late():
    MissedDay.objects.create(day=MONDAY, scheduled_at=at(MONDAY, 7), detected_at=at(MONDAY, 9))

    with pytest.raises(schedule.ScheduleError, match="only today's"):
        schedule.send_missed_day(day=MONDAY, now=at(TUESDAY, 8, 0))
    assert not SendRun.objects.exists()


def test_missed_day_alert_without_admins_mails_nobody(settings):
    settings.ADMINS = []
    settings.LATE_SEND_POLICY = "skip"

    schedule.check_send_schedule(now=at(TUESDAY, 10, 0))

    assert MissedDay.objects.get().alerted_at is None
    assert not mail.outbox


def test_send_daily_refuses_a_skipped_day_and_says_why(capsys):
    save_schedule(skip=[TUESDAY])

    call_command("send_daily", "--date", TUESDAY.isoformat())

    assert "not a send day" in capsys.readouterr().out


# --- Paused, everywhere -------------------------------------------------------------------


def pause(reason="Bounces at 6%"):
    runs.pause_sending(reason=reason)


def test_send_daily_says_paused_when_starting_a_run_that_will_wait(capsys):
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    pause()

    call_command("send_daily", "--date", TUESDAY.isoformat())

    out = capsys.readouterr().out
    assert "Sending is PAUSED (Bounces at 6%)" in out
    assert not [m for m in mail.outbox if m.to == ["a@example.org"]]


def test_send_daily_dry_run_says_paused(capsys):
    make_subscriber("a@example.org")
    pause()

    call_command("send_daily", "--date", TUESDAY.isoformat(), "--dry-run")

    assert "Sending is PAUSED (Bounces at 6%): a run started now would wait" in capsys.readouterr().out


def test_send_daily_dry_run_says_nothing_of_a_pause_when_sending(capsys):
    make_subscriber("a@example.org")

    call_command("send_daily", "--date", TUESDAY.isoformat(), "--dry-run")

    assert "PAUSED" not in capsys.readouterr().out


def test_send_daily_wait_shows_paused_instead_of_progress(capsys):
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    pause()

    with pytest.raises(CommandError):
        call_command("send_daily", "--date", TUESDAY.isoformat(), "--wait", "--timeout", "0")

    assert "0/1" in capsys.readouterr().out.split("PAUSED: waiting for an admin to resume sending")[0]


def test_run_page_and_list_say_paused_until_resumed(admin_client):
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    pause()
    run = runs.start_daily_send(day=TUESDAY)
    page_url = reverse("admin:mailer_sendrun_change", args=[run.pk])

    page = admin_client.get(page_url).content.decode()
    assert 'id="run-paused"' in page and "Bounces at 6%" in page
    listing = admin_client.get(reverse("admin:mailer_sendrun_changelist")).content.decode()
    assert "일시 중지" in listing or "Paused" in listing

    runs.resume_sending()
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE
    assert 'id="run-paused"' not in admin_client.get(page_url).content.decode()


def test_pause_button_asks_first_then_pauses_and_tells_admins(admin_client):
    url = reverse("admin:mailer_sendingstate_pause")

    page = admin_client.get(url).content.decode()
    assert 'id="confirm"' in page
    assert not selectors.sending_paused()

    response = admin_client.post(url, {"reason": "moving to a new domain"})

    assert response.status_code == 302
    assert selectors.sending_paused()
    state = SendingState.objects.get(id=1)
    assert "admin" in state.reason and "moving to a new domain" in state.reason
    assert [m for m in mail.outbox if m.to == ["ops@example.org"] and "moving to a new domain" in m.body]


def test_pause_button_without_a_reason_keeps_the_form_and_pauses_nothing(admin_client):
    response = admin_client.post(reverse("admin:mailer_sendingstate_pause"), {"reason": ""})

    assert response.status_code == 200 and 'id="confirm"' in response.content.decode()
    assert not selectors.sending_paused()


def test_resume_button_asks_first_then_resumes(admin_client):
    pause()
    url = reverse("admin:mailer_sendingstate_resume")
    changelist = admin_client.get(reverse("admin:mailer_sendingstate_changelist")).content.decode()
    assert 'id="resume-sending"' in changelist

    admin_client.get(url)
    assert selectors.sending_paused()
    admin_client.post(url)

    assert not selectors.sending_paused()
    changelist = admin_client.get(reverse("admin:mailer_sendingstate_changelist")).content.decode()
    assert 'id="pause-sending"' in changelist


# --- The admin's schedule and missed days ---------------------------------------------------


def test_admin_edits_the_schedule_and_its_skip_dates(admin_client, settings):
    settings.DAILY_SEND_HOUR = 7
    changelist = admin_client.get(reverse("admin:mailer_sendschedule_changelist"))
    url = changelist["Location"]
    assert admin_client.get(url).status_code == 200
    assert SendSchedule.objects.get(id=1).send_time == time(7, 0)

    response = admin_client.post(
        url,
        {
            "send_time": "06:30",
            "weekdays": ["0", "2", "4"],
            "skip_korean_holidays": "on",
            "skip_dates-TOTAL_FORMS": "1",
            "skip_dates-INITIAL_FORMS": "0",
            "skip_dates-MIN_NUM_FORMS": "0",
            "skip_dates-MAX_NUM_FORMS": "1000",
            "skip_dates-0-day": "2026-12-02",
            "skip_dates-0-note": "office move",
        },
    )

    assert response.status_code == 302
    assert selectors.send_start(MONDAY) == at(MONDAY, 6, 30)
    assert selectors.send_start(TUESDAY) is None
    assert selectors.send_start(date(2026, 12, 2)) is None  # a Wednesday, skipped
    assert not selectors.is_send_day(date(2026, 12, 25))  # Christmas, a Friday


def test_admin_schedule_refuses_no_weekdays_and_keeps_the_old_schedule(admin_client):
    save_schedule(send_time=time(7, 0))
    url = reverse("admin:mailer_sendschedule_change", args=[1])

    response = admin_client.post(
        url,
        {
            "send_time": "08:00",
            "skip_dates-TOTAL_FORMS": "0",
            "skip_dates-INITIAL_FORMS": "0",
            "skip_dates-MIN_NUM_FORMS": "0",
            "skip_dates-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert SendSchedule.objects.get(id=1).send_time == time(7, 0)


def test_missed_day_in_the_admin_sends_todays_questions_after_a_confirmation(admin_client, settings):
    # Every weekday a send day, so the wall clock's date never matters here.
    save_schedule(weekdays=range(7))
    settings.LATE_SEND_POLICY = "skip"
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    today = timezone.localdate()
    MissedDay.objects.create(day=today, scheduled_at=at(today, 7), detected_at=at(today, 9))
    changelist = admin_client.get(reverse("admin:mailer_missedday_changelist")).content.decode()
    send_url = reverse("admin:mailer_missedday_send", args=[MissedDay.objects.get().pk])
    assert send_url in changelist and 'id="late-policy"' in changelist

    confirm = admin_client.get(send_url).content.decode()
    assert 'id="confirm"' in confirm and not SendRun.objects.exists()
    admin_client.post(send_url)
    admin_client.post(send_url)  # a double click

    assert SendRun.objects.get().day == today
    assert MissedDay.objects.get().started_at is not None
    assert len([m for m in mail.outbox if m.to == ["a@example.org"]]) == 1
    assert send_url not in admin_client.get(reverse("admin:mailer_missedday_changelist")).content.decode()


def test_dashboard_shows_todays_missed_day_until_it_is_sent(admin_client, settings):
    # The dashboard asks SES for the quota: let that fail fast, offline.
    settings.SES_EMULATOR, settings.SES_SANDBOX = False, "false"
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.AWS_ACCESS_KEY_ID = settings.AWS_SECRET_ACCESS_KEY = "local"
    save_schedule(weekdays=range(7))
    today = timezone.localdate()
    MissedDay.objects.create(day=today, scheduled_at=at(today, 7), detected_at=at(today, 9))

    assert 'id="send-missed"' in admin_client.get(reverse("dashboard")).content.decode()

    runs.start_daily_send(day=today)
    assert 'id="send-missed"' not in admin_client.get(reverse("dashboard")).content.decode()


def test_send_daily_scheduled_does_what_beats_tick_does(capsys):
    # Every day a send day from 00:00: whatever the wall clock says, today's run is due (on time or late).
    save_schedule(send_time=time(0, 0), weekdays=range(7))
    make_questions("backend", 2)
    make_subscriber("a@example.org")

    call_command("send_daily", "--scheduled")
    call_command("send_daily", "--scheduled")

    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith(("started.", "started late.")) and second.endswith("running.")
    assert SendRun.objects.get().day == timezone.localdate()


def test_send_daily_scheduled_takes_no_date():
    with pytest.raises(CommandError, match="--scheduled"):
        call_command("send_daily", "--scheduled", "--date", TUESDAY.isoformat())

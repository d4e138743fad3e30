"""The operator's sending controls in a real chromium: pause and resume with
their confirmations, a paused run's page, and the send schedule's page."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import Page, expect

from mailer import selectors
from mailer.models import SendSchedule
from mailer.sending import runs
from tests.browser.conftest import errors_of
from tests.factories import make_questions, make_subscriber

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("eager_tasks"),
]

TUESDAY = date(2026, 12, 1)


def log_in(page: Page, live_server) -> None:
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "not-used-here")
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])


def test_operator_pauses_sees_the_run_paused_and_resumes(page: Page, live_server, settings):
    settings.ADMINS = [("Ops", "ops@example.org")]
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/mailer/sendingstate/")
    page.click("#pause-sending")
    expect(page.locator("#confirm-text")).to_be_visible()
    assert not selectors.sending_paused()  # the confirmation page alone changes nothing
    page.fill("input[name=reason]", "DNS moving")
    page.click("#confirm")
    expect(page.locator("#sending-state")).to_contain_text("DNS moving")
    assert selectors.sending_paused()

    run = runs.start_daily_send(day=TUESDAY)
    page.goto(f"{live_server.url}/admin/mailer/sendrun/{run.pk}/change/")
    expect(page.locator("#run-paused")).to_contain_text("일시 중지됨")

    page.goto(f"{live_server.url}/admin/mailer/sendingstate/")
    page.click("#resume-sending")
    page.click("#confirm")
    expect(page.locator("#pause-sending")).to_be_visible()
    run.refresh_from_db()
    assert run.status == "done" and not selectors.sending_paused()
    assert errors_of(page) == []


def test_operator_changes_the_send_days_and_time(page: Page, live_server):
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/mailer/sendschedule/")
    page.fill("input[name=send_time]", "06:30")
    page.uncheck("input[name=weekdays][value='0']")
    page.check("input[name=skip_korean_holidays]")
    page.fill("input[name='skip_dates-0-day']", "2026-12-02")
    page.click("input[name=_save]")

    expect(page.locator(".messagelist")).to_be_visible()
    schedule = SendSchedule.objects.get()
    assert schedule.send_time == time(6, 30) and schedule.weekdays == [1, 2, 3, 4]
    assert schedule.skip_korean_holidays and list(schedule.skip_dates.values_list("day", flat=True)) == [
        date(2026, 12, 2)
    ]
    assert errors_of(page) == []

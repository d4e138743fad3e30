"""Every page and mail that tells a reader when mail comes says the send
schedule in force (mailer.schedule_text), in Korean and English: the subscribe
page, the message after confirming, the welcome mail and the manage page."""

from datetime import time

import pytest
from django.urls import reverse

from mailer.models import SendSchedule
from subscriptions import links
from tests.factories import make_subscriber
from tests.subscriptions.conftest import code_from, mails_to

pytestmark = pytest.mark.django_db(transaction=True)

# What the old fixed wording said: none of it may be left under another schedule.
FIXED = ["Monday to Friday", "07:00", "weekday", "월요일부터 금요일까지", "오전 7시", "평일"]

MON_WED_FRI_0630 = {
    "en": {
        "days": "Monday, Wednesday and Friday at 06:30 Korean time",
        "daily": "one question Monday, Wednesday and Friday at 06:30 Korean time",
        "weekly": "5 questions in one mail every Monday at 06:30 Korean time",
        "first": "The first question arrives on the next send day at 06:30 Korean time.",
    },
    "ko": {
        "days": "월요일, 수요일, 금요일 한국 시간 오전 6시 30분",
        "daily": "월요일, 수요일, 금요일 한국 시간 오전 6시 30분에 질문 하나",
        "weekly": "매주 월요일 한국 시간 오전 6시 30분에 질문 5개를 한 번에",
        "first": "첫 질문은 다음 발송일 한국 시간 오전 6시 30분에 도착해요.",
    },
}

DEFAULT_0700 = {
    "en": {
        "days": "Monday to Friday at 07:00 Korean time",
        "daily": "one question Monday to Friday at 07:00 Korean time",
        "weekly": "5 questions in one mail every Monday at 07:00 Korean time",
        "first": "The first question arrives on the next send day at 07:00 Korean time.",
    },
    "ko": {
        "days": "월요일부터 금요일까지 한국 시간 오전 7시",
        "daily": "월요일부터 금요일까지 한국 시간 오전 7시에 질문 하나",
        "weekly": "매주 월요일 한국 시간 오전 7시에 질문 5개를 한 번에",
        "first": "첫 질문은 다음 발송일 한국 시간 오전 7시에 도착해요.",
    },
}


@pytest.fixture
def mon_wed_fri_0630():
    SendSchedule.objects.create(id=1, send_time=time(6, 30), weekdays=[0, 2, 4])


def get(client, url, language):
    return client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()


def subscribe_and_confirm(client, email, language):
    """Through the pages: subscribe, confirm with the mailed code, land on the manage page."""
    form = {"email": email, "categories": ["backend"], "frequency": "daily", "consent": "on"}
    client.post(reverse("subscriptions:subscribe"), form, HTTP_ACCEPT_LANGUAGE=language, REMOTE_ADDR="192.0.2.10")
    code = code_from(mails_to(email)[-1])
    response = client.post(reverse("subscriptions:verify"), {"code": code}, HTTP_ACCEPT_LANGUAGE=language, follow=True)
    return response.content.decode()


@pytest.mark.usefixtures("mon_wed_fri_0630")
@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_subscribe_page_says_the_admins_schedule(client, language):
    page = get(client, reverse("subscriptions:landing"), language)
    said = MON_WED_FRI_0630[language]
    assert said["days"] in page  # the lead, the footer
    assert said["daily"] in page and said["weekly"] in page  # beside each frequency
    assert not [fixed for fixed in FIXED if fixed in page]


@pytest.mark.usefixtures("mon_wed_fri_0630")
@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_message_after_confirming_and_the_welcome_mail_say_the_admins_schedule(client, language):
    page = subscribe_and_confirm(client, "reader@example.org", language)
    said = MON_WED_FRI_0630[language]
    assert said["first"] in page
    assert not [fixed for fixed in FIXED if fixed in page]

    welcome = mails_to("reader@example.org")[-1]
    html = welcome.alternatives[0][0]
    for body in (welcome.body, html):
        assert said["daily"] in body and said["first"] in body
        assert not [fixed for fixed in FIXED if fixed in body]


@pytest.mark.usefixtures("mon_wed_fri_0630")
@pytest.mark.parametrize("language", ["en", "ko"])
def test_the_manage_page_says_the_admins_schedule(client, language):
    reader = make_subscriber("reader@example.org", frequency="weekly")
    page = get(client, links.manage_path(reader.id, generation=reader.link_generation), language)
    said = MON_WED_FRI_0630[language]
    assert said["daily"] in page and said["weekly"] in page
    first_digest = {
        "en": "The first digest arrives on the next Monday at 06:30 Korean time.",
        "ko": "첫 주간 모음은 다가오는 월요일 한국 시간 오전 6시 30분에 도착해요.",
    }
    assert first_digest[language] in page
    assert not [fixed for fixed in FIXED if fixed in page]


@pytest.mark.parametrize("language", ["en", "ko"])
def test_without_a_saved_schedule_the_default_time_monday_to_friday_is_said(client, settings, language):
    settings.DAILY_SEND_HOUR, settings.DAILY_SEND_MINUTE = 7, 0
    said = DEFAULT_0700[language]

    landing = get(client, reverse("subscriptions:landing"), language)
    assert said["days"] in landing and said["daily"] in landing and said["weekly"] in landing

    page = subscribe_and_confirm(client, "reader@example.org", language)
    assert said["first"] in page and said["daily"] in page
    welcome = mails_to("reader@example.org")[-1]
    assert said["first"] in welcome.body and said["first"] in welcome.alternatives[0][0]

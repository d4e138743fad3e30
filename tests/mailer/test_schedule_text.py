"""What readers are told about when mail comes (mailer.schedule_text): the
schedule in force, in the active language."""

from datetime import time

import pytest
from django.utils import translation

from mailer.models import SendSchedule
from mailer.schedule_text import schedule_text

pytestmark = pytest.mark.django_db


def save_schedule(*, send_time=time(7, 0), weekdays=(0, 1, 2, 3, 4), skip_korean_holidays=False):
    SendSchedule.objects.create(
        id=1, send_time=send_time, weekdays=list(weekdays), skip_korean_holidays=skip_korean_holidays
    )


def said(language: str, **attributes) -> dict[str, str]:
    text = schedule_text()
    with translation.override(language):
        return {name: str(getattr(text, name)) for name in attributes or ("when", "daily_mail", "weekly_mail")}


def test_without_a_saved_schedule_the_env_time_monday_to_friday_is_said(settings):
    settings.DAILY_SEND_HOUR, settings.DAILY_SEND_MINUTE = 7, 0

    assert said("en") == {
        "when": "Monday to Friday at 07:00 Korean time",
        "daily_mail": "one question Monday to Friday at 07:00 Korean time",
        "weekly_mail": "5 questions in one mail every Monday at 07:00 Korean time",
    }
    assert said("ko") == {
        "when": "월요일부터 금요일까지 한국 시간 오전 7시",
        "daily_mail": "월요일부터 금요일까지 한국 시간 오전 7시에 질문 하나",
        "weekly_mail": "매주 월요일 한국 시간 오전 7시에 질문 5개를 한 번에",
    }


def test_the_admins_days_and_time_are_said_in_either_language():
    save_schedule(send_time=time(6, 30), weekdays=[0, 2, 4])

    assert said("en")["when"] == "Monday, Wednesday and Friday at 06:30 Korean time"
    assert said("ko")["when"] == "월요일, 수요일, 금요일 한국 시간 오전 6시 30분"


def test_every_day_and_an_afternoon_time():
    save_schedule(send_time=time(18, 0), weekdays=range(7))

    assert said("en")["when"] == "every day at 18:00 Korean time"
    assert said("ko")["when"] == "매일 한국 시간 오후 6시"


def test_the_digest_goes_on_the_weeks_first_send_day_with_digest_size_questions(settings):
    # The digest's size is its own setting, not the number of send days.
    settings.WEEKLY_DIGEST_SIZE = 5
    save_schedule(send_time=time(12, 5), weekdays=[3, 1])

    assert said("en")["weekly_mail"] == "5 questions in one mail every Tuesday at 12:05 Korean time"
    assert said("ko")["weekly_mail"] == "매주 화요일 한국 시간 오후 12시 5분에 질문 5개를 한 번에"
    assert said("en", days=True)["days"] == "Tuesday and Thursday"


def test_skipped_holidays_are_said():
    save_schedule(skip_korean_holidays=True)
    assert said("en", holidays=True)["holidays"] == "No mail on Korean public holidays."
    assert said("ko", holidays=True)["holidays"] == "한국 공휴일에는 보내지 않아요."


def test_holidays_are_not_mentioned_when_mail_goes_on_them():
    save_schedule(skip_korean_holidays=False)
    assert said("en", holidays=True)["holidays"] == ""


def test_a_frequencys_text_is_said_in_the_language_active_when_shown():
    save_schedule(send_time=time(6, 30), weekdays=[0, 2, 4])
    with translation.override("en"):
        first = schedule_text().first_mail("weekly")
    with translation.override("ko"):
        assert str(first) == "첫 주간 모음은 다가오는 월요일 한국 시간 오전 6시 30분에 도착해요."
    with translation.override("en"):
        assert str(first) == "The first digest arrives on the next Monday at 06:30 Korean time."
        assert str(schedule_text().mail("daily")) == "one question Monday, Wednesday and Friday at 06:30 Korean time"

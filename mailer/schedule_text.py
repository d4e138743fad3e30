"""What readers are told about when mail comes: the send schedule in force
(selectors.send_schedule) in words, for every page, form, message and mail
that says it.

The schedule's facts are read once per ScheduleText; each text is made when
it is read, so it comes out in the language active then (a page's, or a mail's
reader's).
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.dates import WEEKDAYS
from django.utils.functional import lazy
from django.utils.translation import gettext, ngettext, pgettext

from mailer.selectors import send_schedule
from subscriptions.models import Frequency

# Every page's footer says it, and a cached landing page reads nothing from the
# database; like beat's tick, an edit in the admin shows within a minute.
SCHEDULE_TEXT_CACHE_SECONDS = 60


def schedule_text() -> "ScheduleText":
    """The schedule in force, to be said to readers (cached for a minute)."""
    return cache.get_or_set("schedule-text:v1", _read_schedule_text, SCHEDULE_TEXT_CACHE_SECONDS)


def _read_schedule_text() -> "ScheduleText":
    schedule = send_schedule()
    return ScheduleText(
        send_time=schedule.send_time,
        weekdays=tuple(sorted(set(schedule.weekdays))),
        skip_korean_holidays=schedule.skip_korean_holidays,
        digest_size=settings.WEEKLY_DIGEST_SIZE,
    )


def _call(method, *args) -> str:
    return method(*args)


_lazy_call = lazy(_call, str)


@dataclass(frozen=True)
class ScheduleText:
    send_time: datetime.time
    weekdays: tuple[int, ...]  # date.weekday() numbers: 0 is Monday
    skip_korean_holidays: bool
    # One digest holds this many questions (WEEKLY_DIGEST_SIZE), whatever the number of send days.
    digest_size: int

    @property
    def clock(self) -> str:
        """The send time alone: "07:00", "오전 7시"."""
        hour, minute = self.send_time.hour, self.send_time.minute
        values = {"hh": f"{hour:02d}", "mm": f"{minute:02d}", "hour12": hour % 12 or 12, "minute": minute}
        # Each shape has its own entry so that a language with a 12-hour clock
        # can say "오전 7시" or "오후 6시 30분"; English keeps 24 hours.
        if hour < 12 and minute == 0:
            # xgettext:no-python-format
            text = pgettext("send time before noon, on the hour", "%(hh)s:%(mm)s")
        elif hour < 12:
            # xgettext:no-python-format
            text = pgettext("send time before noon", "%(hh)s:%(mm)s")
        elif minute == 0:
            # xgettext:no-python-format
            text = pgettext("send time from noon, on the hour", "%(hh)s:%(mm)s")
        else:
            # xgettext:no-python-format
            text = pgettext("send time from noon", "%(hh)s:%(mm)s")
        return text % values

    @property
    def time(self) -> str:
        """The send time and its zone: "07:00 Korean time"."""
        return gettext("%(clock)s Korean time") % {"clock": self.clock}

    @property
    def days(self) -> str:
        """The send days: "Monday to Friday", "Monday, Wednesday and Friday", "every day"."""
        days = self.weekdays
        if len(days) == 7:
            return gettext("every day")
        names = [str(WEEKDAYS[day]) for day in days]
        if len(days) >= 3 and days[-1] - days[0] == len(days) - 1:
            return gettext("%(first)s to %(last)s") % {"first": names[0], "last": names[-1]}
        if len(names) <= 1:
            return names[0] if names else gettext("no day")
        return gettext("%(days)s and %(last)s") % {"days": ", ".join(names[:-1]), "last": names[-1]}

    @property
    def digest_day(self) -> str:
        """The weekly digest's day: the week's first send day ("Monday")."""
        return str(WEEKDAYS[self.weekdays[0]]) if self.weekdays else gettext("no day")

    @property
    def when(self) -> str:
        """When daily mail comes: "Monday to Friday at 07:00 Korean time"."""
        return gettext("%(days)s at %(time)s") % {"days": self.days, "time": self.time}

    @property
    def holidays(self) -> str:
        """A sentence when Korean public holidays are skipped, else empty."""
        return gettext("No mail on Korean public holidays.") if self.skip_korean_holidays else ""

    @property
    def daily_mail(self) -> str:
        """What a daily reader gets: "one question Monday to Friday at 07:00 Korean time"."""
        return gettext("one question %(when)s") % {"when": self.when}

    @property
    def weekly_mail(self) -> str:
        """What a weekly reader gets: "5 questions in one mail every Monday at 07:00 Korean time"."""
        return ngettext(
            "%(count)s question in one mail every %(day)s at %(time)s",
            "%(count)s questions in one mail every %(day)s at %(time)s",
            self.digest_size,
        ) % {"count": self.digest_size, "day": self.digest_day, "time": self.time}

    @property
    def first_daily(self) -> str:
        return gettext("The first question arrives on the next send day at %(time)s.") % {"time": self.time}

    @property
    def first_weekly(self) -> str:
        return gettext("The first digest arrives on the next %(day)s at %(time)s.") % {
            "day": self.digest_day,
            "time": self.time,
        }

    def mail(self, frequency: str) -> str:
        """What a reader of `frequency` gets and when (made when shown, in the language active then)."""
        return _lazy_call(self._mail, frequency)

    def first_mail(self, frequency: str) -> str:
        """When a new reader of `frequency` gets their first mail (made when shown)."""
        return _lazy_call(self._first_mail, frequency)

    def _mail(self, frequency: str) -> str:
        return self.weekly_mail if frequency == Frequency.WEEKLY else self.daily_mail

    def _first_mail(self, frequency: str) -> str:
        return self.first_weekly if frequency == Frequency.WEEKLY else self.first_daily

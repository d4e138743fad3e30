"""The review schedule: when a question a reader did not know comes back.

Pure rules on dates, no database. A rating of "partly" or "again" makes the
question due REVIEW_INTERVALS[step] send days after the day it was rated;
"knew" retires it. Sending a review moves the step on and makes it due again
one interval later, so a review the reader ignores returns by the schedule,
never on the next day; rating it again counts that interval from the rating.
Send days are mailer.selectors.is_send_day's, so a change to the send
schedule is honoured here too.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings

from mailer.selectors import is_send_day
from subscriptions.models import Rating

# No schedule leaves a year without a send day; past that the days are not send days at all.
_MAX_DAYS_SEARCHED = 366


@dataclass(frozen=True)
class Schedule:
    review_step: int
    next_review_on: date | None


def intervals() -> list[int]:
    return list(settings.REVIEW_INTERVALS)


def add_send_days(day: date, count: int, *, send_day: Callable[[date], bool] = is_send_day) -> date:
    """The `count`-th send day after `day` (day itself not counted)."""
    found = 0
    current = day
    for _ in range(count * _MAX_DAYS_SEARCHED):
        current += timedelta(days=1)
        if send_day(current):
            found += 1
            if found == count:
                return current
    raise ValueError(f"no {count} send days after {day}")


def interval_at(step: int, steps: Sequence[int] | None = None) -> int:
    steps = list(steps) if steps is not None else intervals()
    return steps[min(step, len(steps) - 1)]


def after_rating(*, rating: str, rated_on: date, review_step: int, steps: Sequence[int] | None = None) -> Schedule:
    """The schedule once the reader rates (or re-rates) on `rated_on`."""
    if rating == Rating.KNEW:
        return Schedule(review_step=review_step, next_review_on=None)
    if rating not in (Rating.PARTLY, Rating.AGAIN):
        raise ValueError(f"unknown rating {rating!r}")
    return Schedule(review_step=review_step, next_review_on=add_send_days(rated_on, interval_at(review_step, steps)))


def after_review_sent(*, sent_on: date, review_step: int, steps: Sequence[int] | None = None) -> Schedule:
    """The schedule once a review went out on `sent_on`: the next interval, counted from then."""
    steps = list(steps) if steps is not None else intervals()
    step = min(review_step + 1, len(steps) - 1)
    return Schedule(review_step=step, next_review_on=add_send_days(sent_on, interval_at(step, steps)))

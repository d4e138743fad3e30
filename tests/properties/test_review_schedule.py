"""The review schedule over random rating sequences and days, against a reference model.

Each example: a reader with a few questions rates them on random days
(knew / partly / again, changing their mind at will); every send day the
send path's part is played: the due reviews are read, the oldest one is
"mailed" and recorded (twice, as a retried batch would). Then:

- never due before its time: what the selector offers is exactly what the
  reference schedule (written out here in weekdays) says is due, so nothing
  comes early and nothing retired comes back;
- never twice a day: a review recorded on a day is not offered again that
  day, and recording it again counts nothing;
- always eventually: a due review is mailed within as many send days as the
  reader has questions (one per daily mail, the longest due first).
"""

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailer.models import Question
from subscriptions import answers, selectors
from subscriptions.models import Subscription
from tests.factories import make_subscriber
from tests.properties.strategies import fuzz, unique

pytestmark = pytest.mark.django_db

START = date(2026, 11, 30)  # a Monday
RATING_DAYS = 40
DAYS = 90
_positions = itertools.count(10_000)


def weekdays_after(day: date, count: int) -> date:
    while count:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


events = st.lists(
    st.tuples(st.integers(0, RATING_DAYS - 1), st.integers(0, 3), st.sampled_from(["knew", "partly", "again"])),
    max_size=14,
)


@fuzz(25)
@given(
    count=st.integers(1, 4),
    ratings=events,
    intervals=st.one_of(st.just([3, 7, 21]), st.lists(st.integers(1, 6), min_size=1, max_size=3)),
)
def test_reviews_come_when_due_never_early_never_twice_a_day(settings, count, ratings, intervals):
    settings.REVIEW_INTERVALS = intervals
    reader = make_subscriber(f"{unique('review')}@example.org")
    subscription = Subscription.objects.get(subscriber=reader)
    questions = [
        Question.objects.create(
            category="backend",
            position=next(_positions),
            title="q",
            answer_md="a",
            source_key=unique("review-q"),
        )
        for _ in range(count)
    ]
    targets = [
        selectors.AnswerTarget(subscription_id=subscription.id, subscriber=reader, question=q) for q in questions
    ]
    by_day: dict[int, list[tuple[int, str]]] = {}
    for offset, index, rating in ratings:
        if index < count:
            by_day.setdefault(offset, []).append((index, rating))

    # The reference: each question's step and due day, in weekdays.
    step = [0] * count
    due: list[date | None] = [None] * count
    became_due: dict[int, date] = {}

    def interval(s: int) -> int:
        return intervals[min(s, len(intervals) - 1)]

    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        if day.weekday() < 5:
            offered = selectors.due_reviews(subscription_ids=[subscription.id], day=day).get(subscription.id, [])
            expected = {questions[i].id for i in range(count) if due[i] is not None and due[i] <= day}
            assert set(offered) == expected  # never early, never retired, every due one offered
            for i in range(count):
                if due[i] is not None and due[i] <= day:
                    became_due.setdefault(i, due[i])
            if offered:
                mailed = offered[0]
                pair = [(subscription.id, mailed)]
                assert answers.record_reviews_sent(pairs=pair, day=day) == 1
                assert answers.record_reviews_sent(pairs=pair, day=day) == 0  # a retried batch
                again = selectors.due_reviews(subscription_ids=[subscription.id], day=day).get(subscription.id, [])
                assert mailed not in again  # never twice a day
                i = [q.id for q in questions].index(mailed)
                # Always eventually: at most one other question's review went out on each send day in between.
                waited = sum(
                    1 for n in range((day - became_due.pop(i)).days) if (day - timedelta(days=n)).weekday() < 5
                )
                assert waited <= count - 1
                step[i] = min(step[i] + 1, len(intervals) - 1)
                due[i] = weekdays_after(day, interval(step[i]))
        for index, rating in by_day.get(offset, []):
            answers.rate_answer(target=targets[index], rating=rating, today=day)
            became_due.pop(index, None)  # a new rating schedules it afresh
            due[index] = None if rating == "knew" else weekdays_after(day, interval(step[index]))

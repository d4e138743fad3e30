"""The review schedule (subscriptions/reviews.py), due_reviews and record_reviews_sent."""

from datetime import date

import pytest

from subscriptions import answers, reviews, selectors
from subscriptions.models import Answer, Subscription
from tests.factories import make_questions, make_subscriber

MONDAY = date(2026, 11, 30)


def test_send_days_skip_the_weekend():
    friday = date(2026, 12, 4)
    assert reviews.add_send_days(friday, 1) == date(2026, 12, 7)
    assert reviews.add_send_days(MONDAY, 3) == date(2026, 12, 3)
    assert reviews.add_send_days(MONDAY, 5) == date(2026, 12, 7)


def test_send_days_follow_the_given_schedule():
    only_mondays = lambda day: day.weekday() == 0  # noqa: E731
    assert reviews.add_send_days(MONDAY, 2, send_day=only_mondays) == date(2026, 12, 14)


def test_partly_and_again_come_back_after_the_intervals_knew_retires(settings):
    settings.REVIEW_INTERVALS = [3, 7, 21]
    again = reviews.after_rating(rating="again", rated_on=MONDAY, review_step=0)
    assert again.next_review_on == date(2026, 12, 3)
    sent = reviews.after_review_sent(sent_on=date(2026, 12, 3), review_step=0)
    assert (sent.review_step, sent.next_review_on) == (1, reviews.add_send_days(date(2026, 12, 3), 7))
    last = reviews.after_review_sent(sent_on=date(2026, 12, 3), review_step=2)
    assert (last.review_step, last.next_review_on) == (2, reviews.add_send_days(date(2026, 12, 3), 21))
    assert reviews.after_rating(rating="knew", rated_on=MONDAY, review_step=1).next_review_on is None
    with pytest.raises(ValueError):
        reviews.after_rating(rating="maybe", rated_on=MONDAY, review_step=0)


@pytest.fixture
def reader(db):
    subscriber = make_subscriber("reader@example.org")
    subscription = Subscription.objects.get(subscriber=subscriber)
    questions = make_questions("backend", 3)
    targets = [
        selectors.AnswerTarget(subscription_id=subscription.id, subscriber=subscriber, question=q) for q in questions
    ]
    return subscription, questions, targets


def test_due_reviews_oldest_first_excluding_and_not_before(reader):
    subscription, (first, second, _third), targets = reader
    answers.rate_answer(target=targets[1], rating="again", today=MONDAY)  # due Thursday
    answers.rate_answer(target=targets[0], rating="partly", today=date(2026, 12, 1))  # due Friday
    answers.rate_answer(target=targets[2], rating="knew", today=MONDAY)
    due = lambda day, **kw: selectors.due_reviews(subscription_ids=[subscription.id], day=day, **kw)  # noqa: E731
    assert due(date(2026, 12, 2)) == {}
    assert due(date(2026, 12, 3)) == {subscription.id: [second.id]}
    assert due(date(2026, 12, 4)) == {subscription.id: [second.id, first.id]}
    assert due(date(2026, 12, 4), excluding=[second.id]) == {subscription.id: [first.id]}
    # Per subscription: another reader's new question leaves this reader's review alone.
    assert due(date(2026, 12, 4), excluding={subscription.id: [first.id]}) == {subscription.id: [second.id]}
    assert due(date(2026, 12, 4), excluding={subscription.id + 1: [first.id]}) == {
        subscription.id: [second.id, first.id]
    }


def test_record_reviews_sent_is_idempotent_per_day_and_reschedules(reader, settings):
    settings.REVIEW_INTERVALS = [3, 7, 21]
    subscription, (first, _second, _third), targets = reader
    answers.reveal_answer(target=targets[0])
    answers.rate_answer(target=targets[0], rating="again", today=MONDAY)
    thursday = date(2026, 12, 3)
    pair = [(subscription.id, first.id)]
    assert answers.record_reviews_sent(pairs=pair, day=thursday) == 1
    assert answers.record_reviews_sent(pairs=pair, day=thursday) == 0
    answer = Answer.objects.get(question=first)
    assert answer.reviews_sent == 1
    assert answer.last_review_on == thursday
    assert answer.next_review_on == reviews.add_send_days(thursday, 7)
    assert answer.revealed_at is None  # the review round starts with the answer hidden
    assert selectors.due_reviews(subscription_ids=[subscription.id], day=thursday) == {}
    # Re-rated on the review: the next interval counts from the rating.
    answers.rate_answer(target=targets[0], rating="partly", today=date(2026, 12, 4))
    answer.refresh_from_db()
    assert answer.next_review_on == reviews.add_send_days(date(2026, 12, 4), 7)


def test_a_review_rated_knew_meanwhile_is_not_recorded(reader):
    subscription, (first, *_), targets = reader
    answers.rate_answer(target=targets[0], rating="again", today=MONDAY)
    answers.rate_answer(target=targets[0], rating="knew", today=MONDAY)
    assert answers.record_reviews_sent(pairs=[(subscription.id, first.id)], day=date(2026, 12, 3)) == 0
    assert Answer.objects.get().reviews_sent == 0


def test_answers_go_with_their_subscriber(reader):
    subscription, _questions, targets = reader
    answers.rate_answer(target=targets[0], rating="again", today=MONDAY)
    subscription.subscriber.delete()
    assert not Answer.objects.exists()

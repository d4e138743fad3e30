"""Small builders for test data, going through the models' own rules."""

from datetime import UTC, datetime

from mailer.models import Question
from subscriptions.models import Subscriber, Subscription

# When test subscribers confirmed: before every send day the tests use. The
# tests' days are fixed dates (2026-11-30, ...); "a week before now" put them
# after those days' cut-offs once the calendar moved past them.
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def make_questions(category: str, count: int, *, start: int = 1, published: bool = True) -> list[Question]:
    return [
        Question.objects.create(
            category=category,
            position=position,
            title=f"{category} question {position}",
            question_md=f"Explain **topic {position}**.",
            answer_md=f"Answer to {category} {position}.",
            is_published=published,
            source_key=f"test:{category}/{position}",
        )
        for position in range(start, start + count)
    ]


def make_subscriber(
    email: str,
    *,
    categories=("backend",),
    frequency: str = "daily",
    language: str = "ko",
    activated_at=None,
    next_position: int = 1,
) -> Subscriber:
    activated_at = activated_at or LONG_AGO
    subscriber = Subscriber.objects.create(
        email=email,
        status=Subscriber.Status.ACTIVE,
        frequency=frequency,
        language=language,
        consented_at=activated_at,
        confirmed_at=activated_at,
    )
    for category in categories:
        Subscription.objects.create(
            subscriber=subscriber, category=category, activated_at=activated_at, next_position=next_position
        )
    return subscriber

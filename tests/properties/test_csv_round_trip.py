"""Subscribers exported as CSV and imported into an empty database are the same subscribers."""

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subscriptions import importing
from subscriptions.models import Frequency, Subscriber, Subscription, Verification
from subscriptions.selectors import with_mail_state
from tests.properties.strategies import fuzz, normalized, valid_emails

pytestmark = pytest.mark.django_db

moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2031, 1, 1)).flatmap(
    lambda moment: st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))]).map(
        lambda zone: moment.replace(tzinfo=zone)
    )
)
languages = st.sampled_from(["ko", "en"])
frequencies = st.sampled_from(Frequency.values)
# The tracks every test database holds (tests/conftest.py: seeded_tracks).
categories = st.lists(st.sampled_from(["backend", "frontend"]), min_size=1, unique=True)


@st.composite
def people(draw) -> list[dict]:
    addresses = draw(st.lists(valid_emails.map(normalized).filter(bool), max_size=6, unique=True))
    drawn = []
    for email in addresses:
        status = draw(st.sampled_from(Subscriber.Status.values))
        person = {
            "email": email,
            "status": status,
            "frequency": draw(frequencies),
            "language": draw(languages),
            "created_at": draw(moments),
            "confirmed_at": draw(moments) if status == "active" else draw(st.none() | moments),
            "unsubscribed_at": draw(moments) if status == "unsubscribed" else draw(st.none() | moments),
            "consented_at": draw(moments) if status == "active" else draw(st.none() | moments),
            "categories": draw(categories),
            "positions": draw(st.lists(st.integers(1, 10**6), min_size=2, max_size=2)),
            # A pending person's request; an unsubscribed person's left categories.
            "request": (draw(categories), draw(frequencies), draw(languages)),
        }
        drawn.append(person)
    return drawn


def store(person: dict) -> None:
    fields = {k: person[k] for k in ("email", "status", "frequency", "language", "confirmed_at", "unsubscribed_at")}
    subscriber = Subscriber.objects.create(**fields, consented_at=person["consented_at"])
    Subscriber.objects.filter(id=subscriber.id).update(created_at=person["created_at"])
    if person["status"] == "pending":
        chosen, frequency, language = person["request"]
        Verification.objects.create(subscriber=subscriber, categories=chosen, frequency=frequency, language=language)
    for category, position in zip(person["categories"], person["positions"], strict=False):
        Subscription.objects.create(
            subscriber=subscriber,
            category=category,
            is_active=person["status"] == "active",
            next_position=position,
            activated_at=person["created_at"],
        )


def snapshot() -> dict:
    """What a subscriber is, as far as DailyQ acts on it."""
    found = {}
    for subscriber in Subscriber.objects.prefetch_related("subscriptions", "verifications"):
        requests = sorted(subscriber.verifications.all(), key=lambda v: (v.created_at, v.id))
        pending = subscriber.status == "pending"
        found[subscriber.email] = {
            "status": subscriber.status,
            "choices": (
                (sorted(requests[-1].categories), requests[-1].frequency, requests[-1].language)
                if pending
                else (subscriber.frequency, subscriber.language)
            ),
            "reading": {s.category: s.next_position for s in subscriber.subscriptions.all() if s.is_active},
            "dates": [subscriber.created_at, subscriber.confirmed_at, subscriber.unsubscribed_at],
            "consented_at": subscriber.consented_at,
        }
    return found


def export_text() -> str:
    queryset = with_mail_state(Subscriber.objects.prefetch_related("subscriptions", "verifications").order_by("id"))
    out = io.StringIO()
    writer = csv.writer(out)
    for row in importing.export_rows(queryset):
        writer.writerow(importing.defuse_cell(value) for value in row)
    return out.getvalue()


@fuzz(60)
@given(drawn=people())
def test_export_then_import_into_an_empty_database_gives_the_same_subscribers(drawn, settings):
    settings.SES_SANDBOX = "false"
    Subscriber.objects.all().delete()
    for person in drawn:
        store(person)
    before = snapshot()

    text = export_text()
    Subscriber.objects.all().delete()
    plan = importing.plan_subscriber_import(text)
    assert plan.invalid == [] and plan.duplicates == []
    importing.import_subscribers(plan=plan, already_consented=True)

    assert snapshot() == before
    assert export_text() == text or _without_last_mail(export_text()) == _without_last_mail(text)


def _without_last_mail(text: str) -> list[list[str]]:
    index = importing.CSV_COLUMNS.index("last_mail_at")
    return [row[:index] + row[index + 1 :] for row in csv.reader(io.StringIO(text))]

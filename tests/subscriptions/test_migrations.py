"""The migrations that make stored addresses canonical, run on PostgreSQL over
rows an older DailyQ could hold: other spellings of one mailbox, addresses
SES cannot deliver to, and suppressions and SES events in any spelling."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from mailer.models import SESEvent, Suppression
from subscriptions.models import SetAsideAddress, Subscriber, Subscription, Verification

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("subscriptions", "0001_initial"), ("mailer", "0009_question_license")]
JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def old_apps(postgres):
    """The models as they were before the migrations; migrates forward again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate_forward() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def old_subscriber(apps, email, status, *, confirmed_at=None, categories=()):
    subscriber = apps.get_model("subscriptions", "Subscriber").objects.create(
        email=email, status=status, confirmed_at=confirmed_at, consented_at=confirmed_at
    )
    for category in categories:
        apps.get_model("subscriptions", "Subscription").objects.create(
            subscriber=subscriber, category=category, activated_at=confirmed_at
        )
    return subscriber.id


def test_stored_addresses_become_canonical_and_what_cannot_is_set_aside_not_lost(old_apps):
    ids = {
        "alice": old_subscriber(old_apps, "Alice@Example.org", "active", confirmed_at=JANUARY, categories=["backend"]),
        "dotted": old_subscriber(old_apps, "b\u0130lly@example.org", "pending"),
        "dotless": old_subscriber(old_apps, "v\u0131ctim@example.org", "pending"),
        "victim": old_subscriber(
            old_apps, "victim@example.org", "active", confirmed_at=JANUARY, categories=["backend"]
        ),
        "quoted-bob": old_subscriber(old_apps, '"bob"@example.org', "active", confirmed_at=JANUARY),
        "bob": old_subscriber(old_apps, "bob@example.org", "pending"),
        "carol": old_subscriber(old_apps, "carol@B\u00fccher.example", "unsubscribed", confirmed_at=JANUARY),
        "carol-ascii": old_subscriber(old_apps, "carol@xn--bcher-kva.example", "pending"),
        "dave": old_subscriber(old_apps, "dave@example.org", "active", confirmed_at=FEBRUARY, categories=["backend"]),
        "quoted-dave": old_subscriber(
            old_apps, '"Dave"@example.org', "active", confirmed_at=JANUARY, categories=["frontend"]
        ),
        "erin": old_subscriber(old_apps, "erin@example.org", "pending"),
    }
    OldVerification = old_apps.get_model("subscriptions", "Verification")
    OldVerification.objects.create(subscriber_id=ids["bob"], categories=["backend"], frequency="daily", language="ko")
    OldSuppression = old_apps.get_model("mailer", "Suppression")
    first = OldSuppression.objects.create(email='"Bounce"@Example.org', reason="bounce")
    second = OldSuppression.objects.create(email="bounce@example.org", reason="admin", detail="by hand")
    foreign = OldSuppression.objects.create(email="x\u0130@example.org", reason="bounce")
    lifted = OldSuppression.objects.create(email="Old@Example.org", reason="admin", lifted_at=JANUARY)
    OldEvent = old_apps.get_model("mailer", "SESEvent")
    OldEvent.objects.create(sns_message_id="1", kind="bounce", email="Alice@Example.org", payload={})
    OldEvent.objects.create(sns_message_id="2", kind="delivery", email="", payload={})

    migrate_forward()

    email = dict(Subscriber.objects.values_list("id", "email"))
    assert email[ids["alice"]] == "alice@example.org"
    assert email[ids["victim"]] == "victim@example.org"
    assert email[ids["quoted-bob"]] == "bob@example.org"  # the active one keeps the address
    assert email[ids["carol"]] == "carol@xn--bcher-kva.example"  # unsubscribed before pending
    assert email[ids["dave"]] == "dave@example.org"  # both active: the one already spelled canonically
    assert email[ids["erin"]] == "erin@example.org"
    set_aside = {row.subscriber_id: row for row in SetAsideAddress.objects.all()}
    assert sorted(set_aside) == sorted(ids[n] for n in ["dotted", "dotless", "bob", "carol-ascii", "quoted-dave"])
    for name, stored, reason, kept_by in [
        ("dotted", "b\u0130lly@example.org", "invalid", None),
        ("dotless", "v\u0131ctim@example.org", "invalid", None),
        ("bob", "bob@example.org", "duplicate", ids["quoted-bob"]),
        ("carol-ascii", "carol@xn--bcher-kva.example", "duplicate", ids["carol"]),
        ("quoted-dave", '"Dave"@example.org', "duplicate", ids["dave"]),
    ]:
        row = set_aside[ids[name]]
        assert (row.email, row.reason, row.kept_by_id) == (stored, reason, kept_by)
        subscriber = Subscriber.objects.get(id=ids[name])
        assert subscriber.email == f"subscriber-{subscriber.id}@set-aside.invalid"
        assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
        assert not subscriber.subscriptions.filter(is_active=True).exists()
    # What the set-aside reader had is said, and their history stays.
    assert "active, receiving frontend" in set_aside[ids["quoted-dave"]].detail
    assert Subscription.objects.filter(subscriber_id=ids["quoted-dave"], category="frontend").exists()
    assert Verification.objects.get(subscriber_id=ids["bob"]).revoked_at is not None
    assert Subscription.objects.get(subscriber_id=ids["dave"]).is_active

    suppressions = {row.id: row for row in Suppression.objects.all()}
    assert (suppressions[first.id].email, suppressions[first.id].lifted_at) == ("bounce@example.org", None)
    assert suppressions[second.id].email == "bounce@example.org"
    assert suppressions[second.id].lifted_at is not None
    assert f"suppression #{first.id} holds bounce@example.org" in suppressions[second.id].detail
    assert suppressions[second.id].detail.endswith("by hand")
    assert suppressions[foreign.id].email == "x\u0130@example.org" and suppressions[foreign.id].lifted_at is None
    assert suppressions[lifted.id].email == "old@example.org"
    assert sorted(SESEvent.objects.values_list("email", flat=True)) == ["", "alice@example.org"]


@pytest.mark.parametrize("email", ["Erin@example.org", "v\u0131ctim@example.org", "erin@example.org"])
def test_the_database_refuses_a_second_or_non_canonical_spelling(postgres, email):
    Subscriber.objects.create(email="erin@example.org")
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscriber.objects.create(email=email)


def test_the_database_keeps_one_suppression_in_force_per_address(postgres):
    Suppression.objects.create(email="bounce@example.org", reason="bounce")
    with pytest.raises(IntegrityError), transaction.atomic():
        Suppression.objects.create(email="bounce@example.org", reason="admin")

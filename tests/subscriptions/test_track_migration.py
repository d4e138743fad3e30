"""The migration that makes categories Track rows, run on PostgreSQL over a
database an older DailyQ left: subscriptions at their cursors, deliveries,
questions and the start positions set in the old category settings."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from mailer.models import Delivery, Question
from subscriptions import tracks
from subscriptions.models import Subscription, Track

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("subscriptions", "0005_reader_loop"), ("mailer", "0019_bank_wrap_notice")]
JANUARY = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def old_apps(postgres):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    migrate_forward()


def migrate_forward() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_categories_become_tracks_and_every_row_keeps_its_place(old_apps):
    OldQuestion = old_apps.get_model("mailer", "Question")
    questions = {
        (category, n): OldQuestion.objects.create(
            category=category, position=n, title=f"{category} {n}", question_md="?", answer_md="!",
            source_key=f"test:{category}/{n}",
        ).id
        for category in ("backend", "frontend")
        for n in (1, 2, 3)
    }  # fmt: skip
    # Going back to 0019 wrote settings rows from the tracks; an old database had one row at most.
    old_apps.get_model("mailer", "CategorySettings").objects.all().delete()
    old_apps.get_model("mailer", "CategorySettings").objects.create(category="frontend", start_position=3)
    Subscriber = old_apps.get_model("subscriptions", "Subscriber")
    OldSubscription = old_apps.get_model("subscriptions", "Subscription")
    reader = Subscriber.objects.create(email="reader@example.org", status="active", confirmed_at=JANUARY)
    backend = OldSubscription.objects.create(
        subscriber=reader, category="backend", next_position=2, activated_at=JANUARY
    )
    frontend = OldSubscription.objects.create(
        subscriber=reader, category="frontend", next_position=3, is_active=False, activated_at=JANUARY
    )
    run = old_apps.get_model("mailer", "SendRun").objects.create(day=date(2026, 1, 5), cutoff=JANUARY, status="done")
    delivery = old_apps.get_model("mailer", "Delivery").objects.create(
        run=run, subscription=backend, question_ids=[questions[("backend", 1)]], status="sent"
    )

    migrate_forward()

    assert [(t.slug, t.name_ko, t.name_en, t.is_active) for t in tracks.all_tracks()] == [
        ("backend", "백엔드", "Backend", True),
        ("frontend", "프론트엔드", "Frontend", True),
    ]
    assert Track.objects.get(slug="frontend").start_position == 3  # moved from the old settings row
    assert Track.objects.get(slug="backend").start_position == 1
    stored = {s.id: (s.category, s.next_position, s.is_active) for s in Subscription.objects.all()}
    assert stored == {backend.id: ("backend", 2, True), frontend.id: ("frontend", 3, False)}
    assert Delivery.objects.get(id=delivery.id).subscription_id == backend.id
    assert sorted(Question.objects.values_list("category", "position")) == sorted(questions)


def test_a_category_only_old_questions_name_becomes_a_track_named_by_its_slug(old_apps):
    # An operator who had patched a third category into the code keeps its questions and readers.
    old_apps.get_model("mailer", "Question").objects.create(
        category="devops", position=1, title="Deploys", question_md="?", answer_md="!", source_key="test:devops/1"
    )
    old_apps.get_model("mailer", "CategorySettings").objects.create(category="mobile", start_position=2)

    migrate_forward()

    devops = Track.objects.get(slug="devops")
    assert (devops.name_ko, devops.name_en, devops.start_position) == ("devops", "devops", 1)
    assert Track.objects.get(slug="mobile").start_position == 2


def test_the_migration_reverses_to_the_old_category_settings(postgres):
    Track.objects.filter(slug="backend").update(start_position=4)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    settings_rows = dict(apps.get_model("mailer", "CategorySettings").objects.values_list("category", "start_position"))
    migrate_forward()
    assert settings_rows["backend"] == 4

"""The bench database: created if missing, migrated, seeded in bulk.

Seeding is done by PostgreSQL itself (INSERT ... SELECT over
generate_series), so 100,000 subscribers and subscriptions take seconds.
Every subscriber is active, daily, confirmed a week ago; one subscription
each, backend and frontend alternating, cursors spread over the sequence;
one in five reads English, the rest Korean.
"""

import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def ensure_database(database_url: str) -> bool:
    """CREATE DATABASE if it does not exist; True if it was created."""
    import dj_database_url
    import psycopg2
    from psycopg2 import sql

    config = dj_database_url.parse(database_url)
    connection = psycopg2.connect(
        dbname="postgres",
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
            if cursor.fetchone():
                return False
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            return True
    finally:
        connection.close()


def migrate(env: dict) -> None:
    for command in (["migrate", "--noinput", "-v", "0"], ["load_starter_questions"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=BASE_DIR, env=env, check=True, stdout=subprocess.DEVNULL
        )


def seeded_count() -> int:
    from django.db import connection

    from subscriptions.models import Subscriber, Subscription

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), (SELECT count(*) FROM {Subscriber._meta.db_table}) "  # noqa: S608
            f"FROM {Subscription._meta.db_table} WHERE is_active"
        )
        active, subscribers = cursor.fetchone()
    return active if active == subscribers else -1


def seed(count: int) -> float:
    """Replace every subscriber with `count` fresh ones; returns seconds taken."""
    from django.db import connection

    from subscriptions.models import Subscriber, Subscription

    subscribers = Subscriber._meta.db_table
    subscriptions = Subscription._meta.db_table
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {subscribers} RESTART IDENTITY CASCADE")
        cursor.execute(
            f"""
            INSERT INTO {subscribers}
                (email, status, frequency, language, consented_at, confirmed_at, created_at, updated_at,
                 link_generation)
            SELECT 'reader' || g || '@bench.example', 'active', 'daily',
                   CASE WHEN g %% 5 = 0 THEN 'en' ELSE 'ko' END,
                   now() - interval '8 days', now() - interval '8 days',
                   now() - interval '8 days', now() - interval '8 days', 0
            FROM generate_series(1, %s) AS g
            """,  # noqa: S608
            [count],
        )
        cursor.execute(
            f"""
            INSERT INTO {subscriptions}
                (subscriber_id, category, is_active, next_position, created_at, activated_at)
            SELECT id, CASE WHEN id % 2 = 0 THEN 'backend' ELSE 'frontend' END, true, 1 + id % 30,
                   now() - interval '8 days', now() - interval '7 days'
            FROM {subscribers}
            """  # noqa: S608
        )
    vacuum()
    return time.monotonic() - started


def vacuum() -> None:
    from django.db import connection

    from mailer.models import Delivery, SendRun
    from subscriptions.models import Subscriber, Subscription

    tables = [m._meta.db_table for m in (Subscriber, Subscription, Delivery, SendRun)]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {', '.join(tables)}")


def reset_runs() -> None:
    """Forget every send run, delivery, suppression and pause; the subscribers stay."""
    from django.db import connection

    from mailer.models import SendingState, SendRun, SESEvent, Suppression

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {SendRun._meta.db_table} RESTART IDENTITY CASCADE")
        cursor.execute(f"TRUNCATE {SESEvent._meta.db_table}, {Suppression._meta.db_table}")
        cursor.execute(f"DELETE FROM {SendingState._meta.db_table}")  # noqa: S608
    vacuum()


def limit_active(count: int) -> None:
    """Leave only the first `count` subscriptions active (all of them when None)."""
    from django.db import connection

    from subscriptions.models import Subscription

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Subscription._meta.db_table} SET is_active = (id <= %s) "  # noqa: S608
            "WHERE is_active IS DISTINCT FROM (id <= %s)",
            [count, count],
        )

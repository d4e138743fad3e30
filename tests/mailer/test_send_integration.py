"""A whole send day on real parts: two Celery worker processes on Redis and
PostgreSQL, started by `manage.py send_daily` as cron would, mailing through
django-ses to the SES emulator."""

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.db import connection

from bench.harness import start_worker, stop_all, wait_until
from mailer.models import Delivery, Question, SendRun
from mailservice.services import HEARTBEAT_CACHE_KEY
from subscriptions.models import Subscription
from tests.conftest import BASE_DIR
from tests.factories import make_questions, make_subscriber

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MONDAY = date(2026, 11, 30)  # daily and weekly subscriptions are both due


@pytest.fixture
def worker_env(postgres, redis_url, ses, settings):
    database = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": redis_url,
        "CELERY_QUEUE": f"test-send-{uuid.uuid4().hex[:8]}",
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "AWS_SES_REGION_NAME": "us-east-1",
        "AWS_SES_REGION_ENDPOINT_URL": ses.url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "SITE_URL": "https://dailyq.example",
        "ADMINS": "",
        # The emulator reports a sandboxed 200-per-day, 1-per-second account;
        # this test is about exactly-once delivery, so it speaks as a
        # production account would (the sandbox, quota and rate limiter have
        # their own tests).
        "SES_SANDBOX": "false",
        "SES_QUOTA_CAP": "false",
        "SES_MAX_SEND_RATE": "1000",
    }


@pytest.fixture
def workers(worker_env):
    # Both pools: prefork, and the threads the deployment docs recommend.
    processes = [
        start_worker(worker_env, pool="prefork", concurrency=2, hostname="send0@%h"),
        start_worker(worker_env, pool="threads", concurrency=8, hostname="send1@%h"),
    ]
    yield processes
    stop_all(processes, timeout=30)


def send_daily(env):
    return subprocess.run(
        [sys.executable, "manage.py", "send_daily", "--date", MONDAY.isoformat(), "--wait", "--timeout", "240"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_day_of_500_subscriptions_sends_each_exactly_once(worker_env, workers, ses):
    backend = make_questions("backend", 12)
    frontend = make_questions("frontend", 12)
    by_category = {"backend": backend, "frontend": frontend}
    expected = {}
    for n in range(500):
        category = "backend" if n % 2 else "frontend"
        weekly = n % 10 == 0
        start = n % 12 + 1
        email = f"reader{n}@example.org"
        make_subscriber(email, categories=[category], frequency="weekly" if weekly else "daily", next_position=start)
        titles = [q.title for q in by_category[category]]
        count = 5 if weekly else 1
        expected[email] = [titles[(start - 1 + i) % 12] for i in range(count)]

    result = send_daily(worker_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "500/500" in result.stdout and "Done" in result.stdout

    received = ses.messages()
    assert len(received) == 500
    per_recipient = Counter(message.to for message in received)
    assert set(per_recipient) == set(expected) and max(per_recipient.values()) == 1
    for message in received:
        for title in expected[message.to]:
            assert title in message.text, (message.to, title)

    assert SendRun.objects.get().status == SendRun.Status.DONE
    assert Counter(Delivery.objects.values_list("status", flat=True)) == {"sent": 500}
    assert Delivery.objects.filter(ses_message_id="").count() == 0
    assert {m.id for m in received} == set(Delivery.objects.values_list("ses_message_id", flat=True))
    # Cursors moved by one question (five for the weekly digests).
    for subscription in Subscription.objects.select_related("subscriber"):
        number = int(subscription.subscriber.email.removeprefix("reader").split("@")[0])
        count = 5 if number % 10 == 0 else 1
        last = Question.objects.get(category=subscription.category, title=expected[subscription.subscriber.email][-1])
        assert subscription.next_position == last.position + 1, (number, count)

    again = send_daily(worker_env)
    assert again.returncode == 0, again.stderr
    assert len(ses.messages()) == 500
    assert Delivery.objects.count() == 500


def database_sessions() -> int:
    """Sessions PostgreSQL has opened to the test database so far (counted as each connects)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_worker_keeps_its_database_connection_from_batch_to_batch(worker_env, ses):
    # Celery's Django fixup closes every connection around every task unless
    # CELERY_DB_REUSE_MAX is set: each batch then paid for a new PostgreSQL
    # session. One worker thread sends ten batches here.
    make_questions("backend", 3)
    for n in range(40):
        make_subscriber(f"reader{n}@example.org")
    env = {**worker_env, "SEND_BATCH_SIZE": "4", "SEND_PARALLELISM": "1"}
    cache.delete(HEARTBEAT_CACHE_KEY)
    worker = start_worker(env, pool="threads", concurrency=1, hostname=f"reuse-{uuid.uuid4().hex[:4]}@%h")
    try:
        # The worker's first heartbeat (a task) says it is consuming.
        wait_until(lambda: cache.get(HEARTBEAT_CACHE_KEY), timeout=60, processes=[worker], what="consuming")
        before = database_sessions()
        result = send_daily(env)
        opened = database_sessions() - before
    finally:
        worker.stop(timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Counter(Delivery.objects.values_list("status", flat=True)) == {"sent": 40}
    assert len(ses.messages()) == 40
    # The worker's one thread, and send_daily's own connection (the sweeper's
    # and the report's tasks share the worker's): not one per batch.
    assert opened <= 3, f"{opened} database sessions for 10 batches"


def enqueue_batch_again(env, ids):
    """A batch task delivered a second time (a broker redelivery, a retry), on the real workers."""
    script = (
        "import json, sys\n"
        "from mailer.tasks import send_delivery_batch as task\n"
        "print(json.dumps(task.delay(ids=json.loads(sys.argv[1])).get(timeout=120)))\n"
    )
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script.replace("sys.argv[1]", repr(json.dumps(ids)))],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_reviews_go_out_exactly_once_under_a_double_trigger_and_a_retried_batch(worker_env, workers, ses):
    from subscriptions.answers import rate_answer
    from subscriptions.models import Answer
    from subscriptions.selectors import AnswerTarget

    questions = make_questions("backend", 12)
    for n in range(40):
        make_subscriber(f"r{n}@example.org", next_position=6, frequency="weekly" if n % 4 == 0 else "daily")
    for subscription in Subscription.objects.select_related("subscriber"):
        for question, days_ago in ((questions[0], 21), (questions[1], 14)):
            target = AnswerTarget(subscription.id, subscription.subscriber, question)
            rate_answer(target=target, rating="again", today=MONDAY - timedelta(days=days_ago))

    triggers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "send_daily", "--date", MONDAY.isoformat(), "--wait", "--timeout", "240"],
            cwd=BASE_DIR,
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for trigger in triggers:
        _out, err = trigger.communicate(timeout=300)
        assert trigger.returncode == 0, err
    again = enqueue_batch_again(worker_env, list(Delivery.objects.values_list("id", flat=True)))
    assert again.returncode == 0, again.stdout + again.stderr  # ran on a worker; it must send nothing

    received = ses.messages()
    assert len(received) == 40 and len({m.to for m in received}) == 40
    for message in received:
        weekly = int(message.to.removeprefix("r").split("@")[0]) % 4 == 0
        # The oldest due review in a daily mail, both in a weekly digest: each once.
        text = message.text.replace("\r\n", "\n")
        assert text.count(questions[0].title + "\n") == 1, message.to
        assert text.count(questions[1].title + "\n") == (1 if weekly else 0), message.to
    sent = Counter(Answer.objects.filter(reviews_sent__gt=0).values_list("question_id", flat=True))
    assert sent == {questions[0].id: 40, questions[1].id: 10}
    assert set(Answer.objects.filter(reviews_sent__gt=0).values_list("reviews_sent", "last_review_on")) == {(1, MONDAY)}
    # Reviews took no new question's place: daily cursors moved by one, weekly by five.
    assert Counter(Subscription.objects.values_list("next_position", flat=True)) == {7: 30, 11: 10}

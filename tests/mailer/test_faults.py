"""Failures a real deployment meets: workers lost mid-batch, batches cut by their time limit."""

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bench.fake_ses import FakeSES
from mailer.models import Delivery, SendRun
from mailer.services import UNKNOWN_REASON, claim_lease, start_daily_send, sweep_expired_claims
from tests.conftest import BASE_DIR
from tests.factories import make_questions, make_subscriber

TUESDAY = date(2026, 12, 1)

pytestmark = pytest.mark.django_db(transaction=True)


def test_claims_of_lost_workers_are_listed_as_unknown_and_the_run_finishes(monkeypatch):
    from mailer import services

    make_questions("backend", 1)
    for n in range(3):
        make_subscriber(f"r{n}@example.org")
    monkeypatch.setattr(services, "enqueue_pending_deliveries", lambda *, run_id: 0)
    run = start_daily_send(day=TUESDAY)
    # A worker claimed two rows and died before recording anything.
    lost = list(run.deliveries.order_by("id")[:2])
    Delivery.objects.filter(id__in=[d.id for d in lost]).update(
        status="sending", claim="dead", claimed_at=timezone.now() - claim_lease() - timedelta(seconds=1)
    )
    Delivery.objects.exclude(id__in=[d.id for d in lost]).update(status="sent", sent_at=timezone.now())

    assert sweep_expired_claims() == 2

    assert Counter(Delivery.objects.values_list("status", flat=True)) == {"failed": 2, "sent": 1}
    assert all(d.reason.startswith(UNKNOWN_REASON) for d in Delivery.objects.filter(status="failed"))
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE
    assert sweep_expired_claims() == 0  # nothing else is touched


def test_fresh_claims_are_left_alone():
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = SendRun.objects.create(day=TUESDAY, cutoff=timezone.now(), status="sending")
    Delivery.objects.create(
        run=run, subscription=make_subscriber("b@example.org").subscriptions.get(), status="sending",
        claimed_at=timezone.now(),
    )  # fmt: skip
    assert sweep_expired_claims() == 0


@pytest.mark.slow
def test_batches_cut_by_their_time_limit_send_nothing_twice(postgres, redis_url, settings):
    """Real workers whose batches outlast the soft time limit: each batch stops
    mid-way, the row in flight is listed as unknown, the rest go back to the
    queue, and in the end every delivery is terminal and none went twice."""
    fake = FakeSES(latency=0.25).start()
    try:
        make_questions("backend", 3)
        for n in range(24):
            make_subscriber(f"r{n}@example.org")
        database = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "REDIS_URL": redis_url,
            "CELERY_QUEUE": f"test-faults-{uuid.uuid4().hex[:8]}",
            "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "AWS_SES_REGION_NAME": "us-east-1",
            "AWS_SES_REGION_ENDPOINT_URL": fake.url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SES_SANDBOX": "false",
            "SES_QUOTA_CAP": "false",
            "SES_MAX_SEND_RATE": "1000",
            "SEND_BATCH_SIZE": "8",
            "CELERY_TASK_SOFT_TIME_LIMIT": "1",
            "CELERY_TASK_TIME_LIMIT": "30",
            "ADMINS": "",
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mailservice", "worker", "--concurrency=2", "--loglevel=WARNING"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "send_daily",
                    "--date",
                    TUESDAY.isoformat(),
                    "--wait",
                    "--timeout",
                    "120",
                ],
                cwd=BASE_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr

        statuses = Counter(Delivery.objects.values_list("status", flat=True))
        assert set(statuses) <= {"sent", "failed"}, statuses
        unknown = Delivery.objects.filter(status="failed", reason__startswith=UNKNOWN_REASON)
        assert statuses["failed"] == unknown.count(), list(Delivery.objects.values_list("reason", flat=True))
        assert unknown.count() >= 1  # the limit really cut batches
        received = Counter(m["to"][0] for m in fake.accepted)
        assert max(received.values()) == 1  # nobody got two
        sent = set(Delivery.objects.filter(status="sent").values_list("subscription__subscriber__email", flat=True))
        assert sent <= set(received)
        # Whatever SES got beyond the recorded sends is among the listed unknowns.
        unknown_emails = set(unknown.values_list("subscription__subscriber__email", flat=True))
        assert set(received) - sent <= unknown_emails
    finally:
        fake.stop()

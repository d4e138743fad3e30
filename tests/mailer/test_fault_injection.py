"""The fault-injection suite: a few thousand deliveries on real worker
processes, Redis, PostgreSQL and a fake SES, while things break.

After each run: the run completes, every delivery is terminal, nobody
received two mails, every recorded send reached SES, and whatever SES got
beyond the recorded sends is among the deliveries listed as fate unknown.
"""

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date, timedelta

import pytest
from django.db import connection

from bench.fake_ses import FakeSES
from mailer.models import Delivery, SendRun
from mailer.services import UNKNOWN_REASON, requeue_stalled_runs, sweep_expired_claims
from tests.conftest import BASE_DIR
from tests.factories import make_questions
from tests.mailer.seeding import seed_subscribers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TUESDAY = date(2026, 12, 1)


class Deployment:
    """Worker processes, `send_daily` and a fake SES, with the knobs to break them."""

    def __init__(self, *, redis_url, settings, fake: FakeSES, batch_size=25, soft_limit=15):
        database = connection.settings_dict
        self.fake = fake
        self.env = {
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
            "SES_MAX_SEND_RATE": "2000",
            "SEND_BATCH_SIZE": str(batch_size),
            "CELERY_VISIBILITY_TIMEOUT": "10",
            # A short lease keeps the test short; it must outlast a batch's
            # hard time limit, as the default does in production.
            "CELERY_TASK_SOFT_TIME_LIMIT": str(soft_limit),
            "CELERY_TASK_TIME_LIMIT": str(soft_limit + 2),
            "DELIVERY_CLAIM_LEASE_SECONDS": str(soft_limit + 3),
            "ADMINS": "",
            "LOG_LEVEL": "WARNING",
        }
        self.workers: list[subprocess.Popen] = []
        self.lease = soft_limit + 3
        settings.DELIVERY_CLAIM_LEASE_SECONDS = self.lease  # the test's sweeper acts as beat's would

    def start_worker(self, concurrency=3):
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mailservice", "worker", f"--concurrency={concurrency}",
             "--loglevel=ERROR", f"--hostname=fault{len(self.workers)}-{uuid.uuid4().hex[:4]}@%h"],
            cwd=BASE_DIR, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def start_send(self):
        subprocess.run(
            [sys.executable, "manage.py", "send_daily", "--date", TUESDAY.isoformat()],
            cwd=BASE_DIR, env=self.env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def pool_children(self, worker):
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in children]

    def wait_until_done(self, timeout=300, during=None):
        """Wait for the run to finish, sweeping expired claims as beat would."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if during:
                during()
            if SendRun.objects.filter(day=TUESDAY, status="done").exists():
                return
            sweep_expired_claims()
            requeue_stalled_runs(quiet_for=timedelta(seconds=self.lease))
            time.sleep(0.5)
        progress = Counter(Delivery.objects.values_list("status", flat=True))
        raise AssertionError(f"run did not finish: {progress}")

    def stop(self):
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def assert_nothing_lost_or_doubled(fake: FakeSES, total: int):
    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    assert sum(statuses.values()) == total
    assert set(statuses) <= {"sent", "failed"}, statuses  # every delivery terminal
    received = Counter(m["to"][0] for m in fake.accepted)
    assert not received or max(received.values()) == 1, received.most_common(3)  # nobody got two
    sent = set(Delivery.objects.filter(status="sent").values_list("subscription__subscriber__email", flat=True))
    unknown = Delivery.objects.filter(status="failed", reason__startswith=UNKNOWN_REASON)
    other_failures = Delivery.objects.filter(status="failed").exclude(reason__startswith=UNKNOWN_REASON)
    assert not other_failures.exists(), list(other_failures.values_list("reason", flat=True)[:3])
    assert sent <= set(received)  # every recorded send reached SES
    unknown_emails = set(unknown.values_list("subscription__subscriber__email", flat=True))
    assert set(received) - sent <= unknown_emails  # the rest is listed
    assert len(received) == len(sent) + len(set(received) & unknown_emails)
    return statuses, len(unknown_emails)


@pytest.fixture
def make_deployment(postgres, redis_url, settings):
    made = []

    def make(**options):
        fake = FakeSES(latency=0.02).start()
        make_questions("backend", 5)
        make_questions("frontend", 5)
        made.append(Deployment(redis_url=redis_url, settings=settings, fake=fake, **options))
        return made[-1]

    yield make
    for deployment in made:
        deployment.stop()
        deployment.fake.stop()


@pytest.fixture
def deployment(make_deployment):
    return make_deployment()


def test_workers_killed_again_and_again(deployment):
    total = seed_subscribers(2000)
    first = deployment.start_worker()
    deployment.start_worker()
    deployment.start_send()
    kills = []

    def chaos():
        # kill -9 a pool process now and then, and once a whole worker.
        if len(kills) < 6 and len(deployment.fake.accepted) > 150 * (len(kills) + 1):
            if len(kills) == 3 and first.poll() is None:
                first.kill()
                deployment.start_worker()
                kills.append("worker")
            else:
                live = [w for w in deployment.workers if w.poll() is None]
                children = [pid for w in live for pid in deployment.pool_children(w)]
                if children:
                    os.kill(random.choice(children), signal.SIGKILL)  # noqa: S311
                    kills.append("child")

    deployment.wait_until_done(during=chaos)
    assert len(kills) >= 4, kills
    assert_nothing_lost_or_doubled(deployment.fake, total)


def test_database_connections_terminated_mid_run(deployment):
    total = seed_subscribers(1500)
    deployment.start_worker()
    deployment.start_worker()
    deployment.start_send()
    database = connection.settings_dict["NAME"]
    terminated = []

    def chaos():
        if len(terminated) < 3 and len(deployment.fake.accepted) > 300 * (len(terminated) + 1):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [database],
                )
                terminated.append(cursor.rowcount)

    deployment.wait_until_done(during=chaos)
    assert len(terminated) == 3
    assert_nothing_lost_or_doubled(deployment.fake, total)


def test_ses_throttling_and_server_errors(make_deployment):
    # Retries with backoff make batches long: give them time, as in production.
    deployment = make_deployment(soft_limit=120)
    deployment.fake.throttle_rate = 0.30
    deployment.fake.error_rate = 0.05
    total = seed_subscribers(1000)
    deployment.start_worker()
    deployment.start_worker()
    deployment.start_send()

    deployment.wait_until_done()

    statuses, unknown = assert_nothing_lost_or_doubled(deployment.fake, total)
    assert statuses == {"sent": total} and unknown == 0  # all delivered eventually
    assert deployment.fake.refused.count("throttling") > 100
    # The shared rate held: no one-second window above SES_MAX_SEND_RATE.
    arrivals = sorted(m["at"] for m in deployment.fake.accepted)
    busiest = max(sum(1 for u in arrivals[i : i + 2100] if u < t + 1.0) for i, t in enumerate(arrivals))
    assert busiest <= 2000


def test_send_daily_started_twice_at_once_makes_one_run(deployment):
    total = seed_subscribers(600)
    deployment.start_worker()
    command = [sys.executable, "manage.py", "send_daily", "--date", TUESDAY.isoformat()]
    starts = [subprocess.Popen(command, cwd=BASE_DIR, env=deployment.env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in starts] == [0, 0]

    deployment.wait_until_done()

    assert SendRun.objects.count() == 1
    statuses, _unknown = assert_nothing_lost_or_doubled(deployment.fake, total)
    assert statuses == {"sent": total}


def test_redis_restarted_during_a_run(deployment, redis_url):
    if not redis_url.startswith("redis://127.0.0.1:6379"):
        pytest.skip("restarts only the local Redis this machine runs")
    total = seed_subscribers(1500)
    deployment.start_worker()
    deployment.start_worker()
    deployment.start_send()
    restarted = []

    def chaos():
        if not restarted and len(deployment.fake.accepted) > 300:
            # Redis keeps nothing on disk here: the queued batches vanish with it.
            subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True, timeout=10)
            subprocess.run(
                ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
                 "--save", "", "--appendonly", "no"],
                check=True, capture_output=True, timeout=10,
            )  # fmt: skip
            restarted.append(time.monotonic())

    deployment.wait_until_done(timeout=240, during=chaos)
    assert restarted
    assert_nothing_lost_or_doubled(deployment.fake, total)

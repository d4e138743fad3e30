"""Real deployments for the fault tests: worker processes, `send_daily` and a
fake SES, with the knobs to break them, and the checks every run must pass."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import date

from django.db import connection

from bench.fake_ses import FakeSES
from mailer.models import Delivery, SendRun
from mailer.services import UNKNOWN_REASON
from tests.conftest import BASE_DIR

TUESDAY = date(2026, 12, 1)


class Deployment:
    """Worker processes, `send_daily` and a fake SES, with the knobs to break them."""

    def __init__(
        self, *, redis_url, settings, fake: FakeSES, batch_size=25, soft_limit=15, batch_seconds=None, parallelism=16
    ):
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
            "SEND_PARALLELISM": str(parallelism),
            "CELERY_VISIBILITY_TIMEOUT": "10",
            # A short lease keeps the test short; it must outlast a batch's
            # hard time limit, as the default does in production.
            "CELERY_TASK_SOFT_TIME_LIMIT": str(soft_limit),
            "CELERY_TASK_TIME_LIMIT": str(soft_limit + 2),
            "DELIVERY_CLAIM_LEASE_SECONDS": str(soft_limit + 3),
            "SEND_BATCH_SECONDS": str(batch_seconds or int(soft_limit * 0.8)),
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

    def wait_until_done(self, timeout=240, during=None):
        """Wait for the run to finish, sweeping expired claims as beat would."""
        deadline = time.monotonic() + timeout
        next_sweep = time.monotonic() + 4
        while time.monotonic() < deadline:
            if during:
                during()
            if SendRun.objects.filter(day=TUESDAY, status="done").exists():
                return
            if time.monotonic() >= next_sweep:
                # Beat's sweep, in this deployment's own environment (its broker).
                subprocess.run(
                    [sys.executable, "manage.py", "sweep_sends"],
                    cwd=BASE_DIR, env=self.env, capture_output=True, timeout=60,
                )  # fmt: skip
                next_sweep = time.monotonic() + 4
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

"""Real deployments for the fault tests: worker processes, `send_daily` and a
fake SES, with the knobs to break them, and the checks every run must pass.

A deployment runs on the test's PostgreSQL and a Redis, or on the embedded
default (SQLite, kombu's filesystem broker and the file cache under a folder
of its own): the test process then reads the SQLite file directly.
"""

import contextlib
import json
import os
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from django.db import connection
from django.db.models import F

from bench.fake_ses import FakeSES
from bench.harness import Process, python_command, start_process, start_worker, stop_all
from mailer.models import Delivery, SendRun
from mailer.sending.reasons import UNKNOWN_REASON
from tests.conftest import BASE_DIR

TUESDAY = date(2026, 12, 1)


class Deployment:
    """Worker processes, `send_daily` and a fake SES, with the knobs to break them.

    `embedded_in`: a folder for the embedded default (VAR_DIR); without it the
    deployment uses the test's PostgreSQL database and `redis_url`.
    """

    def __init__(
        self,
        *,
        redis_url,
        settings,
        fake: FakeSES,
        batch_size=25,
        soft_limit=15,
        batch_seconds=None,
        parallelism=16,
        max_send_rate=2000,
        embedded_in: Path | None = None,
        extra_env: dict | None = None,
    ):
        self.fake = fake
        self.embedded_in = embedded_in
        self.env = {
            **os.environ,
            "CELERY_QUEUE": f"test-faults-{uuid.uuid4().hex[:8]}",
            "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "AWS_SES_REGION_NAME": "us-east-1",
            "AWS_SES_REGION_ENDPOINT_URL": fake.url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SES_SANDBOX": "false",
            "SES_QUOTA_CAP": "false",
            "SES_MAX_SEND_RATE": str(max_send_rate),
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
            **(extra_env or {}),
        }
        if embedded_in is None:
            database = connection.settings_dict
            self.env["DATABASE_URL"] = (
                f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
            )
            self.env["REDIS_URL"] = redis_url
        else:
            for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
                self.env.pop(name, None)
            self.env["VAR_DIR"] = str(embedded_in)
            self.manage("migrate", "--noinput")
        self.workers: list[Process] = []
        self.webhook: Webhook | None = None
        self.lease = soft_limit + 3
        self.sweeps: list[tuple[float, dict]] = []  # (when, what the sweep reported)
        settings.DELIVERY_CLAIM_LEASE_SECONDS = self.lease  # the test's sweeper acts as beat's would

    # -- processes --

    def start_worker(self, concurrency=3, pool="prefork") -> Process:
        worker = start_worker(
            self.env,
            pool=pool,
            concurrency=concurrency,
            loglevel="ERROR",
            hostname=f"fault{len(self.workers)}-{uuid.uuid4().hex[:4]}@%h",
        )
        self.workers.append(worker)
        return worker

    def manage(self, *args, timeout=120) -> str:
        done = subprocess.run(
            python_command("manage.py", *args),
            cwd=BASE_DIR, env=self.env, check=True, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        return done.stdout

    def start_send(self):
        self.manage("send_daily", "--date", TUESDAY.isoformat())

    def seed(self, subscribers: int, questions: int = 5) -> int:
        """Questions in both categories and `subscribers` readers, in the deployment's own database."""
        from tests.factories import make_questions
        from tests.mailer.seeding import seed_subscribers

        if self.embedded_in is None:
            make_questions("backend", questions)
            make_questions("frontend", questions)
            return seed_subscribers(subscribers)
        self.manage(
            "shell",
            "-c",
            "from tests.factories import make_questions; from tests.mailer.seeding import seed_subscribers; "
            f"make_questions('backend', {questions}); make_questions('frontend', {questions}); "
            f"seed_subscribers({subscribers})",
        )
        return subscribers

    def start_webhook(self, cert_pem: bytes, topic: str) -> "Webhook":
        """The SES event webhook of this deployment (tests/mailer/webhook_process.py)."""
        pem = Path(self.env.get("VAR_DIR") or BASE_DIR / "var") / f"sns-{uuid.uuid4().hex[:8]}.pem"
        pem.parent.mkdir(parents=True, exist_ok=True)
        pem.write_bytes(cert_pem)
        process = start_process(
            "webhook",
            python_command("-m", "tests.mailer.webhook_process", str(pem)),
            {**self.env, "AWS_SNS_EVENT_TRUSTED_TOPIC_ARNS": topic},
            output=None,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.webhook = Webhook(process, pem)
        return self.webhook

    def pool_children(self, worker):
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
        return [int(pid) for pid in children]

    def sweep(self) -> dict:
        """Beat's sweep, in this deployment's own environment (its broker and database)."""
        report = json.loads(self.manage("sweep_sends", "--json", timeout=60))
        self.sweeps.append((time.time(), report))
        return report

    def wait_until_done(self, timeout=240, during=None, sweep_every=4):
        """Wait for the run to finish, sweeping expired claims as beat would."""
        deadline = time.monotonic() + timeout
        next_sweep = time.monotonic() + sweep_every
        while time.monotonic() < deadline:
            if during:
                during()
            if self.run_status() == "done":
                return
            if time.monotonic() >= next_sweep:
                with contextlib.suppress(subprocess.SubprocessError):  # one that met a fault: the next sweeps
                    self.sweep()
                next_sweep = time.monotonic() + sweep_every
            time.sleep(0.5)
        progress = Counter(row["status"] for row in self.deliveries())
        raise AssertionError(f"run did not finish: {progress}")

    def stop(self):
        if self.webhook:
            self.webhook.close()
        stop_all(self.workers, timeout=30)

    # -- what the deployment's database holds --

    def run_status(self) -> str | None:
        if self.embedded_in is None:
            return SendRun.objects.filter(day=TUESDAY).values_list("status", flat=True).first()
        row = self._sqlite("SELECT status FROM mailer_sendrun WHERE day = ?", [TUESDAY.isoformat()])
        return row[0][0] if row else None

    def deliveries(self) -> list[dict]:
        """Every delivery: id, status, reason, claimed_at and its reader's address."""
        if self.embedded_in is None:
            return list(
                Delivery.objects.values(
                    "id", "status", "reason", "claimed_at", email=F("subscription__subscriber__email")
                )
            )
        rows = self._sqlite(
            "SELECT d.id, d.status, d.reason, d.claimed_at, r.email FROM mailer_delivery d "
            "JOIN subscriptions_subscription s ON s.id = d.subscription_id "
            "JOIN subscriptions_subscriber r ON r.id = s.subscriber_id",
        )
        return [
            {"id": i, "status": status, "reason": reason, "claimed_at": _parse_time(claimed), "email": email}
            for i, status, reason, claimed, email in rows
        ]

    def claimed_before(self, moment) -> int:
        """Deliveries still claimed (sending) by a claim made before `moment`."""
        return sum(1 for row in self.deliveries() if row["status"] == "sending" and row["claimed_at"] < moment)

    def _sqlite(self, sql: str, params=()) -> list[tuple]:
        with sqlite3.connect(f"file:{self.embedded_in / 'db.sqlite3'}?mode=ro", uri=True, timeout=20) as db:
            return db.execute(sql, params).fetchall()


class Webhook:
    """A deployment's webhook process: `publish` hands it one SNS notification."""

    def __init__(self, process: Process, pem: Path):
        self.process = process
        self.pem = pem
        self.published = 0

    def publish(self, notification: dict) -> None:
        self.process.stdin.write(json.dumps(notification) + "\n")
        self.process.stdin.flush()
        self.published += 1

    def close(self) -> list[int]:
        """Wait for what was published to be handled; returns each answer's status code."""
        if self.process.stdin.closed:
            return []
        self.process.stdin.close()
        answers = [int(line) for line in self.process.stdout.read().split()]
        self.process.wait(timeout=60)
        self.pem.unlink(missing_ok=True)
        return answers


def _parse_time(value: str | None) -> datetime | None:
    # Django keeps SQLite's datetimes as UTC text without an offset.
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def assert_nothing_lost_or_doubled(fake: FakeSES, total: int, rows: list[dict] | None = None):
    """Every delivery terminal, nobody mailed twice, every recorded send at SES,
    and whatever SES got beyond those among the deliveries listed as unknown.
    Returns the statuses and how many deliveries are listed as unknown."""
    if rows is None:
        rows = list(Delivery.objects.values("status", "reason", email=F("subscription__subscriber__email")))
    statuses = Counter(row["status"] for row in rows)
    assert sum(statuses.values()) == total
    assert set(statuses) <= {"sent", "failed"}, statuses  # every delivery terminal
    received = Counter(m["to"][0] for m in fake.accepted)
    assert not received or max(received.values()) == 1, received.most_common(3)  # nobody got two
    sent = {row["email"] for row in rows if row["status"] == "sent"}
    unknown = {row["email"] for row in rows if row["status"] == "failed" and row["reason"].startswith(UNKNOWN_REASON)}
    other_failures = [row["reason"] for row in rows if row["status"] == "failed" and row["email"] not in unknown]
    assert not other_failures, other_failures[:3]
    assert sent <= set(received)  # every recorded send reached SES
    assert set(received) - sent <= unknown  # the rest is listed
    assert len(received) == len(sent) + len(set(received) & unknown)
    return statuses, len(unknown)

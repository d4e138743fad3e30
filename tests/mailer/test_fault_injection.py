"""The fault-injection suite: a few thousand deliveries on real worker
processes, Redis, PostgreSQL and a fake SES, while things break.

After each run: the run completes, every delivery is terminal, nobody
received two mails, every recorded send reached SES, and whatever SES got
beyond the recorded sends is among the deliveries listed as fate unknown.
"""

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from bench.fake_ses import FakeSES
from bench.proc import cpu_seconds
from mailer.models import SendRun
from tests.conftest import BASE_DIR, free_port, service_missing
from tests.factories import make_questions
from tests.mailer import sns as sns_side
from tests.mailer.deployment import TUESDAY, Deployment, assert_nothing_lost_or_doubled
from tests.mailer.seeding import seed_subscribers
from tests.mailer.sns import TOPIC, notification, signed

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]
signing_key = sns_side.signing_key  # fixture


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
    arrivals = sorted(m["arrived"] for m in deployment.fake.accepted)
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


class PrivateRedis:
    """A Redis server of this test's own, so restarting it disturbs nobody else."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).returncode:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)

    def stop(self):
        # Nothing is saved: the queued batches vanish with it.
        self.process.kill()
        self.process.wait()


@pytest.fixture
def private_redis(redis_url):  # redis_url: the Redis tools must be here (fails, not skips, under CI)
    if not shutil.which("redis-server"):
        service_missing("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def test_redis_restarted_during_a_run(postgres, private_redis, settings):
    fake = FakeSES(latency=0.02).start()
    deployment = Deployment(redis_url=private_redis.url, settings=settings, fake=fake)
    try:
        make_questions("backend", 5)
        make_questions("frontend", 5)
        total = seed_subscribers(1500)
        deployment.start_worker()
        deployment.start_worker()
        deployment.start_send()
        restarted = []

        def chaos():
            if not restarted and len(fake.accepted) > 300:
                private_redis.stop()
                private_redis.start()
                restarted.append(len(fake.accepted))

        deployment.wait_until_done(during=chaos)
        assert restarted and restarted[0] < total
        assert_nothing_lost_or_doubled(fake, total)
    finally:
        deployment.stop()
        fake.stop()


# The scenario: a worker of the thread pool (as deployed) killed with
# kill -9 three times during a day's send and started again each time.
THREADS = 8


@pytest.fixture(params=["postgres-redis", "embedded"])
def stack(request, tmp_path):
    """Where the deployment keeps its state: PostgreSQL and Redis, or the embedded default."""
    if request.param == "postgres-redis":
        request.getfixturevalue("postgres")
        return {"redis_url": request.getfixturevalue("redis_url"), "max_send_rate": 60}
    # Without Redis each process paces itself.
    return {"redis_url": None, "embedded_in": tmp_path, "max_send_rate": 60}


def test_a_worker_killed_three_times_mid_send_leaves_unknown_only_what_was_in_flight(stack, settings, signing_key):
    fake = FakeSES(latency=0.02).start()
    deployment = Deployment(
        settings=settings, fake=fake, soft_limit=8,
        extra_env={"AWS_SES_CONFIGURATION_SET": "dailyq-events", "SES_SEND_EVENTS": "true",
                   "SEND_EVENT_GRACE_SECONDS": "15"},
        **stack,
    )  # fmt: skip
    try:
        total = deployment.seed(3000)
        # The victim is the only worker, so at each kill it holds claimed rows: beside
        # another worker (on the filesystem broker above all) it could sit idle.
        victim = [deployment.start_worker(concurrency=THREADS, pool="threads")]
        webhook = deployment.start_webhook(signing_key[1], TOPIC)
        deployment.start_send()
        kills = []  # when each kill -9 happened
        victim_cpu = []  # (when, CPU-seconds used) of the current victim

        def victim_is_sending() -> bool:
            # It used CPU in the last second: an idle worker (nothing queued
            # for it) would lose nothing to a kill.
            now = time.monotonic()
            if victim_cpu and now - victim_cpu[-1][0] < 1:
                return False
            victim_cpu.append((now, cpu_seconds([victim[0].pid])))
            if len(victim_cpu) < 2:
                return False
            (then, before), (_now, used) = victim_cpu[-2:]
            return used - before > 0.015 * (now - then)

        def chaos():
            # SES publishes a Send event for each message it accepted (event publishing, via SNS).
            for accepted in fake.accepted[webhook.published :]:
                webhook.publish(signed(signing_key, notification(fake.send_event(accepted))))
            # A kill once the last one's claims were swept, at 10%, 35% and 60% of the day.
            if len(kills) == 3 or len(fake.accepted) < total * (0.1 + 0.25 * len(kills)):
                return
            if (kills and deployment.claimed_before(kills[-1]) > 0) or not victim_is_sending():
                return
            victim[0].kill()
            victim[0].wait()
            kills.append(timezone.now())
            victim[0] = deployment.start_worker(concurrency=THREADS, pool="threads")
            victim_cpu.clear()

        deployment.wait_until_done(timeout=400, during=chaos, sweep_every=2)
        # Unknowns (at most one per killed sending thread) wait for their Send
        # event or, past the grace period, are sent again.
        deadline = time.monotonic() + 120
        while any(row["status"] != "sent" for row in deployment.deliveries()) and time.monotonic() < deadline:
            chaos()
            deployment.sweep()
            time.sleep(1)
        assert webhook.close() == [200] * webhook.published

        rows = deployment.deliveries()
        received = Counter(to for m in fake.accepted for to in m["to"])
        assert len(kills) == 3, kills
        unknown_per_crash = [
            sum(report["unknown"] for at, report in deployment.sweeps if kill.timestamp() <= at < later)
            for kill, later in zip(kills, [k.timestamp() for k in kills[1:]] + [math.inf], strict=True)
        ]
        figures = {
            "unknown_per_crash": unknown_per_crash,
            "confirmed_by_send_event": sum(report["confirmed"] for _at, report in deployment.sweeps),
            "resent_after_grace": sum(report["resent"] for _at, report in deployment.sweeps),
            "missed": sum(1 for row in rows if row["email"] not in received),
            "unknown_but_mailed": sum(1 for row in rows if row["status"] == "failed" and row["email"] in received),
            "mailed_twice": sum(1 for n in received.values() if n > 1),
            "statuses": Counter(row["status"] for row in rows),
        }
        print("embedded" if "embedded_in" in stack else "postgres-redis", figures)
        assert sum(unknown_per_crash) > 0  # the kills cut sends short
        assert all(n <= THREADS for n in unknown_per_crash), figures
        assert figures["mailed_twice"] == 0 and figures["missed"] == 0, figures
        assert figures["statuses"] == {"sent": total}, figures
        assert sum(received.values()) == total
    finally:
        deployment.stop()
        fake.stop()

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

import pytest
from django.db import connection

from bench.fake_ses import FakeSES
from mailer.models import SendRun
from tests.conftest import BASE_DIR
from tests.factories import make_questions
from tests.mailer.deployment import TUESDAY, Deployment, assert_nothing_lost_or_doubled
from tests.mailer.seeding import seed_subscribers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


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

"""An announcement to 2,000 people beside a daily send, on real parts: two
Celery worker processes on Redis and PostgreSQL, `manage.py announce` and
`manage.py send_daily` started at the same moment, a fake SES that notes when
each mail arrived. Each reader gets each mail once, and the two runs together
stay within the one SES rate the shared limiter paces."""

import math
import subprocess
import time
from collections import Counter

import pytest

from bench.fake_ses import FakeSES
from bench.harness import python_command
from mailer import pacing
from mailer.models import Delivery, SendRun
from subscriptions.models import Subscriber, Subscription
from tests.conftest import BASE_DIR
from tests.factories import LONG_AGO, make_questions
from tests.mailer.deployment import TUESDAY, Deployment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

PEOPLE = 2000
# Mails a second. Two thread-pool workers sent 190-440 a second unpaced on these machines
# (README, "Running it like production"), so the shared limiter, not the host, sets the pace.
RATE = 120
SUBJECT = "DailyQ moves to a new domain"


def seed_people() -> int:
    """2,000 active people: half daily, half weekly (no digest on a Tuesday); every
    fifth of the daily ones reads both categories. Returns the daily mails due."""
    people = Subscriber.objects.bulk_create(
        Subscriber(
            email=f"person{n}@example.org",
            status=Subscriber.Status.ACTIVE,
            frequency="daily" if n % 2 else "weekly",
            consented_at=LONG_AGO,
            confirmed_at=LONG_AGO,
        )
        for n in range(PEOPLE)
    )
    subscriptions = []
    for n, person in enumerate(people):
        categories = ["backend", "frontend"] if n % 10 == 1 else ["backend" if n % 4 < 2 else "frontend"]
        subscriptions += [Subscription(subscriber=person, category=c, activated_at=LONG_AGO) for c in categories]
    Subscription.objects.bulk_create(subscriptions)
    return Subscription.objects.filter(subscriber__frequency="daily").count()


@pytest.fixture
def deployment(postgres, redis_url, settings):
    fake = FakeSES(latency=0.02).start()
    made = Deployment(redis_url=redis_url, settings=settings, fake=fake, max_send_rate=RATE, soft_limit=30)
    yield made
    made.stop()
    fake.stop()


def test_announcement_to_2000_beside_a_daily_send_mails_each_once_within_the_shared_rate(deployment, tmp_path):
    make_questions("backend", 5)
    make_questions("frontend", 5)
    daily_due = seed_people()
    body = tmp_path / "notice.md"
    body.write_text("We now send from **new.example**.\n\nNothing else changes.", encoding="utf-8")
    deployment.start_worker(concurrency=8, pool="threads")
    deployment.start_worker(concurrency=8, pool="threads")

    # Both doors at once, as an operator's announcement and cron's daily send would meet.
    commands = [
        ["announce", "--subject", SUBJECT, "--body-file", str(body)],
        ["send_daily", "--date", TUESDAY.isoformat()],
    ]
    started = [
        subprocess.Popen(python_command("manage.py", *args), cwd=BASE_DIR, env=deployment.env, text=True)
        for args in commands
    ]
    for process in started:
        assert process.wait(timeout=120) == 0

    deadline = time.monotonic() + 300
    while SendRun.objects.exclude(status=SendRun.Status.DONE).exists() or SendRun.objects.count() < 2:
        assert time.monotonic() < deadline, Counter(Delivery.objects.values_list("run__kind", "status"))
        time.sleep(0.5)

    announcement_run = SendRun.objects.get(kind=SendRun.Kind.ANNOUNCEMENT)
    daily_run = SendRun.objects.get(kind=SendRun.Kind.DAILY, day=TUESDAY)
    assert announcement_run.total == PEOPLE and daily_run.total == daily_due
    assert Counter(Delivery.objects.values_list("status", flat=True)) == {"sent": PEOPLE + daily_due}

    accepted = deployment.fake.accepted
    assert len(accepted) == PEOPLE + daily_due
    # Each delivery reached SES once, and each person got the announcement once.
    tagged = Counter(int(m["tags"]["dailyq-delivery"]) for m in accepted)
    assert max(tagged.values()) == 1 and len(tagged) == PEOPLE + daily_due
    notices = Counter(m["to"][0] for m in accepted if SUBJECT in m["subject"])
    assert len(notices) == PEOPLE and max(notices.values()) == 1
    assert set(tagged) == set(Delivery.objects.values_list("id", flat=True))
    # The two runs overlapped: the limiter shared the rate between them.
    first_daily = min(m["arrived"] for m in accepted if SUBJECT not in m["subject"])
    last_notice = max(m["arrived"] for m in accepted if SUBJECT in m["subject"])
    assert first_daily < last_notice

    # The shared rate held: no one-second window above SES's max send rate, give or take what
    # the limiter allows by design: a block booked up to BINDING_SPAN ahead, and one request
    # held up on its way by a busy machine. Two runs pacing apart would take about twice RATE.
    arrivals = sorted(m["arrived"] for m in accepted)
    busiest = max(sum(1 for later in arrivals[i : i + RATE * 2] if later < t + 1.0) for i, t in enumerate(arrivals))
    assert busiest <= RATE + math.ceil(pacing.BINDING_SPAN * RATE) + 1, busiest

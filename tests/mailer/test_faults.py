"""Failures a real deployment meets: workers lost mid-batch, batches cut by their time limit."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from bench.fake_ses import FakeSES
from mailer.models import Delivery, SendRun
from mailer.sending.reasons import UNKNOWN_REASON
from mailer.sending.recovery import claim_lease, sweep_expired_claims
from mailer.sending.runs import start_daily_send
from tests.factories import make_questions, make_subscriber
from tests.mailer.deployment import TUESDAY, Deployment, assert_nothing_lost_or_doubled

pytestmark = pytest.mark.django_db(transaction=True)


def test_claims_of_lost_workers_are_listed_as_unknown_and_the_run_finishes(monkeypatch):
    from mailer.sending import runs

    make_questions("backend", 1)
    for n in range(3):
        make_subscriber(f"r{n}@example.org")
    monkeypatch.setattr(runs, "enqueue_pending_deliveries", lambda *, run_id: 0)
    run = start_daily_send(day=TUESDAY)
    # A worker claimed two rows and died before recording anything.
    lost = list(run.deliveries.order_by("id")[:2])
    Delivery.objects.filter(id__in=[d.id for d in lost]).update(
        status="sending", claim="dead", claimed_at=timezone.now() - claim_lease() - timedelta(seconds=1)
    )
    Delivery.objects.exclude(id__in=[d.id for d in lost]).update(status="sent", sent_at=timezone.now())

    assert sweep_expired_claims().unknown == 2  # no journal: nothing tells what they did

    assert Counter(Delivery.objects.values_list("status", flat=True)) == {"failed": 2, "sent": 1}
    assert all(d.reason.startswith(UNKNOWN_REASON) for d in Delivery.objects.filter(status="failed"))
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE
    assert sweep_expired_claims().swept == 0  # nothing else is touched


def test_fresh_claims_are_left_alone():
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = SendRun.objects.create(day=TUESDAY, cutoff=timezone.now(), status="sending")
    Delivery.objects.create(
        run=run, subscription=make_subscriber("b@example.org").subscriptions.get(), status="sending",
        claimed_at=timezone.now(),
    )  # fmt: skip
    assert sweep_expired_claims().swept == 0


@pytest.mark.slow
def test_batches_cut_by_their_time_limit_send_nothing_twice(postgres, redis_url, settings):
    """Real workers whose batches outlast the soft time limit: each batch stops
    mid-way, the row in flight is listed as unknown, the rest go back to the
    queue, and in the end every delivery is terminal and none went twice."""
    fake = FakeSES(latency=0.25).start()
    # Batches of 8 (parallelism 1: no smaller ones at the end) take 2 s against a 1 s soft limit; their
    # own stop (SEND_BATCH_SECONDS) is set past the limit, so the limit does the cutting.
    deployment = Deployment(
        redis_url=redis_url, settings=settings, fake=fake, batch_size=8, soft_limit=1, batch_seconds=60, parallelism=1
    )
    try:
        make_questions("backend", 3)
        for n in range(24):
            make_subscriber(f"r{n}@example.org")
        deployment.start_worker(concurrency=2)
        deployment.start_send()
        deployment.wait_until_done(timeout=180)

        _statuses, unknown = assert_nothing_lost_or_doubled(fake, total=24)
        assert unknown >= 1  # the limit really cut batches
    finally:
        deployment.stop()
        fake.stop()

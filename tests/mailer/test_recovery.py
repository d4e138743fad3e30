"""What happens when a start, an admin mail or a worker fails: tried again, nothing lost, nothing twice."""

import os
import time
import uuid
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from bench.fake_ses import FakeSES
from bench.proc import free_port
from mailer import alerts, pacing, tasks
from mailer.journal import Outcome, discard_journal, open_journal, read_journal
from mailer.models import Delivery, SendRun
from mailer.sending import batch, reasons, recovery, runs
from mailer.sending.recovery import claim_lease
from subscriptions.models import Subscription
from tests.factories import make_questions, make_subscriber

TUESDAY = date(2026, 12, 1)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake_ses(settings):
    server = FakeSES(latency=0, max_24_hour_send=50000, max_send_rate=200).start()
    settings.EMAIL_BACKEND = "django_ses.SESBackend"
    settings.SES_EMULATOR = False
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.AWS_SES_REGION_ENDPOINT_URL = server.url
    settings.AWS_ACCESS_KEY_ID = settings.AWS_SECRET_ACCESS_KEY = "local"
    settings.SES_SANDBOX = "false"
    settings.SES_MAX_SEND_RATE = 1000
    settings.SES_QUOTA_CAP = True
    settings.ADMINS = []
    pacing.reset_schedule()
    yield server
    server.stop()
    pacing.reset_schedule()


def test_a_start_that_failed_is_started_again_by_the_sweeper(fake_ses, settings, eager_tasks):
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # SES unreachable: no quota

    with pytest.raises(Exception):  # noqa: B017 (botocore's connection error)
        runs.start_daily_send(day=TUESDAY)
    run = SendRun.objects.get(day=TUESDAY)
    assert (run.status, Delivery.objects.count()) == ("created", 0)  # nothing half-made
    assert recovery.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY) == 0  # still unreachable

    settings.AWS_SES_REGION_ENDPOINT_URL = fake_ses.url
    assert recovery.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY + timedelta(days=1)) == 0
    assert recovery.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY) == 1

    run.refresh_from_db()
    assert run.status == "done"
    assert [m["to"] for m in fake_ses.accepted] == [["a@example.org"]]
    assert recovery.requeue_stalled_runs(quiet_for=timedelta(0), today=TUESDAY) == 0


def test_admin_mail_that_fails_midway_is_retried_for_the_admins_not_reached(fake_ses, settings, eager_tasks):
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = runs.start_daily_send(day=TUESDAY)  # no ADMINS yet: no report
    settings.ADMINS = [("One", "one@example.org"), ("Two", "two@example.org"), ("Three", "three@example.org")]
    fake_ses.accepted.clear()
    fake_ses.script = ["", "rejected"]  # one's report goes, two's is refused once

    # throw=False: the task's retry runs here and now, as a worker would run it later.
    result = tasks.send_run_report.apply(kwargs={"run_id": run.id}, throw=False)

    assert result.get() == 2  # the retry's count: two and three
    assert fake_ses.refused == ["rejected"]
    assert [m["to"][0] for m in fake_ses.accepted] == ["one@example.org", "two@example.org", "three@example.org"]
    assert alerts.send_run_report(run_id=run.id) == 0  # and never again


def test_a_pause_alert_that_fails_midway_reaches_the_others_once(fake_ses, settings):
    settings.ADMINS = [("One", "one@example.org"), ("Two", "two@example.org")]
    fake_ses.script = ["", "rejected"]  # one's goes, two's is refused once
    tasks.send_pause_alert.apply(kwargs={"reason": "bounce rate 7.00%"}, throw=False)
    assert fake_ses.refused == ["rejected"]
    assert [m["to"][0] for m in fake_ses.accepted] == ["one@example.org", "two@example.org"]


# --- A worker lost mid-batch: its journal, the Send events, the grace period ----------


def use_journal(journal_in, settings, tmp_path, request):
    if journal_in == "redis":
        request.getfixturevalue("redis_url")
    else:  # the embedded default: a file per claim under VAR_DIR
        settings.REDIS_URL, settings.VAR_DIR = "", tmp_path


def lost_claim(run, *, journaled: int, sent_at=None) -> str:
    """What a worker killed mid-batch leaves: every row of the run claimed (the
    lease expired), the first `journaled` ones' outcomes (sent) in its journal."""
    claim = uuid.uuid4().hex
    journal = open_journal(claim)
    journal.begin()
    run.deliveries.update(
        status="sending", claim=claim, claimed_at=timezone.now() - claim_lease() - timedelta(seconds=1)
    )
    for delivery in run.deliveries.order_by("id")[:journaled]:
        journal.append(Outcome(delivery.id, delivery.subscription_id, "sent", ses_message_id=f"ses-{delivery.id}",
                               sent_at=sent_at or timezone.now(), next_position=2))  # fmt: skip
    return claim


def sending_run(readers: int) -> SendRun:
    make_questions("backend", 3)
    for n in range(readers):
        make_subscriber(f"r{n}@example.org")
    run = SendRun.objects.create(
        day=TUESDAY, cutoff=runs.send_cutoff(TUESDAY), status="sending", started_at=timezone.now()
    )
    runs._create_deliveries(run)
    return run


@pytest.mark.parametrize("journal_in", ["redis", "file"])
def test_a_lost_batch_is_settled_from_its_journal_and_only_the_mail_in_flight_stays_unknown(
    fake_ses, eager_tasks, settings, tmp_path, request, journal_in
):
    use_journal(journal_in, settings, tmp_path, request)
    run = sending_run(5)
    claim = lost_claim(run, journaled=2)  # it sent r0 and r1, and was sending r2 when it died

    report = recovery.sweep_expired_claims()

    assert (report.recovered, report.unknown, report.returned) == (2, 1, 2)
    rows = list(run.deliveries.order_by("id").values_list("status", "reason", "ses_message_id"))
    assert [status for status, _reason, _id in rows] == ["sent", "sent", "failed", "sent", "sent"]
    assert rows[0][2] == f"ses-{run.deliveries.order_by('id').first().id}"
    assert rows[2][1] == reasons.UNKNOWN_REASON + "the worker stopped while sending it"
    # r3 and r4 were never started: queued again and sent (once); r2 is left alone.
    assert sorted(to for m in fake_ses.accepted for to in m["to"]) == ["r3@example.org", "r4@example.org"]
    cursors = dict(Subscription.objects.values_list("subscriber__email", "next_position"))
    assert cursors == {"r0@example.org": 2, "r1@example.org": 2, "r2@example.org": 1,
                       "r3@example.org": 2, "r4@example.org": 2}  # fmt: skip
    assert read_journal(claim) is None
    run.refresh_from_db()
    assert run.status == "done"
    if journal_in == "file":
        assert list((tmp_path / "journal").iterdir()) == []


def test_a_lost_batch_without_its_journal_is_all_of_unknown_fate(fake_ses, eager_tasks, settings):
    run = sending_run(3)
    claim = lost_claim(run, journaled=2)
    discard_journal(claim)  # Redis restarted without persistence, and the worker died before noticing

    report = recovery.sweep_expired_claims()

    assert (report.recovered, report.unknown, report.returned) == (0, 3, 0)
    assert set(run.deliveries.values_list("status", flat=True)) == {"failed"}
    assert fake_ses.accepted == []


def test_a_journal_lost_mid_batch_makes_the_batch_write_down_what_it_sent_at_once(fake_ses, eager_tasks, redis_url):
    run = sending_run(4)
    seen = {}

    def break_things(accepted):
        sending = Delivery.objects.filter(status="sending")
        if len(fake_ses.accepted) == 2:  # the journal vanishes (a Redis restart) after the second send
            discard_journal(sending.values_list("claim", flat=True).first())
        if len(fake_ses.accepted) == 3:  # what the database holds while the third is being sent
            seen.update(run.deliveries.order_by("id").values_list("subscription__subscriber__email", "status"))

    fake_ses.on_accept = break_things
    batch.send_delivery_batch(ids=list(run.deliveries.values_list("id", flat=True)))

    assert seen == {"r0@example.org": "sent", "r1@example.org": "sent",
                    "r2@example.org": "sending", "r3@example.org": "sending"}  # fmt: skip
    assert set(run.deliveries.values_list("status", flat=True)) == {"sent"}
    assert len(fake_ses.accepted) == 4
    claim = run.deliveries.values_list("claim", flat=True).first()
    assert read_journal(claim) is None  # written down: the batch discarded its journal


@pytest.mark.parametrize("v2", [True, False])
def test_each_daily_mail_names_its_delivery_in_a_message_tag_and_its_configuration_set(
    fake_ses, eager_tasks, settings, v2
):
    settings.USE_SES_V2 = v2
    settings.AWS_SES_CONFIGURATION_SET = "dailyq-events"
    make_questions("backend", 1)
    make_subscriber("a@example.org")

    runs.start_daily_send(day=TUESDAY)

    [accepted] = fake_ses.accepted
    assert accepted["tags"] == {batch.DELIVERY_TAG: str(Delivery.objects.get().id)}
    assert accepted["configuration_set"] == "dailyq-events"


def unknown_delivery(*, claimed_minutes_ago: float) -> Delivery:
    """A delivery whose worker died while sending it, claimed that long ago."""
    run = sending_run(1)
    run.deliveries.update(
        status="failed",
        reason=reasons.UNKNOWN_REASON + "the worker stopped while sending it",
        claim="lost",
        claimed_at=timezone.now() - timedelta(minutes=claimed_minutes_ago),
    )
    SendRun.objects.filter(id=run.id).update(status="done")
    return run.deliveries.get()


def send_events_arrived(minutes_ago: float):
    """Send events were arriving that long ago (another reader's mail, say)."""
    cache.set(recovery.LAST_SEND_EVENT_KEY, (timezone.now() - timedelta(minutes=minutes_ago)).timestamp(), None)


def test_an_unknown_delivery_without_a_send_event_is_sent_again_after_the_grace_period(fake_ses, eager_tasks, settings):
    settings.SES_SEND_EVENTS, settings.SEND_EVENT_GRACE_SECONDS = True, 900
    delivery = unknown_delivery(claimed_minutes_ago=10)
    send_events_arrived(minutes_ago=1)

    assert recovery.resend_unknown_deliveries() == 0  # within the grace period
    assert fake_ses.accepted == []

    Delivery.objects.filter(id=delivery.id).update(claimed_at=timezone.now() - timedelta(minutes=16))
    assert recovery.resend_unknown_deliveries() == 1

    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.reason == ""
    assert [m["to"] for m in fake_ses.accepted] == [["r0@example.org"]]
    assert Subscription.objects.get().next_position == 2
    assert SendRun.objects.get().status == "done"
    assert recovery.resend_unknown_deliveries() == 0  # once


@pytest.mark.parametrize("why", ["send events not configured", "no send event since", "a later run mails it"])
def test_an_unknown_delivery_is_left_for_an_admin_when_nothing_shows_it_was_lost(fake_ses, eager_tasks, settings, why):
    settings.SES_SEND_EVENTS, settings.SEND_EVENT_GRACE_SECONDS = why != "send events not configured", 900
    delivery = unknown_delivery(claimed_minutes_ago=30)
    # Events stopped before this mail could have been sent: the silence may be the pipeline's.
    send_events_arrived(minutes_ago=40 if why == "no send event since" else 1)
    if why == "a later run mails it":
        later = SendRun.objects.create(day=TUESDAY + timedelta(days=1), cutoff=timezone.now(), status="done")
        Delivery.objects.create(run=later, subscription=delivery.subscription, status="sent")

    assert recovery.resend_unknown_deliveries() == 0

    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.reason.startswith(reasons.UNKNOWN_REASON)
    assert fake_ses.accepted == []


def test_the_sweeper_deletes_journal_files_nobody_will_read(settings, tmp_path):
    settings.REDIS_URL, settings.VAR_DIR = "", tmp_path
    orphan, fresh = open_journal(uuid.uuid4().hex), open_journal(uuid.uuid4().hex)
    orphan.begin()  # its batch wrote its outcomes down and died before deleting it
    fresh.begin()
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(tmp_path / "journal" / f"{orphan.claim}.log", (week_ago, week_ago))

    recovery.sweep_expired_claims()

    assert [path.stem for path in (tmp_path / "journal").iterdir()] == [fresh.claim]
    orphan.discard()
    fresh.discard()

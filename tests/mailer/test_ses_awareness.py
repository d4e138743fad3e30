"""Knowing SES's rules: the sandbox, the quota, throttling and errors, a paused account."""

import itertools
import json
import os
import subprocess
import sys
from datetime import date
from email.header import decode_header, make_header

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from bench.fake_ses import FakeSES
from mailer import pacing, ses
from mailer.models import Delivery, SendingState, SendRun
from mailer.sending.reasons import QUOTA_REASON
from mailer.sending.runs import resume_sending, retry_failed_deliveries, start_daily_send
from subscriptions.models import Subscriber, Subscription
from tests.conftest import BASE_DIR
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
    settings.SES_SANDBOX = "auto"
    settings.SES_MAX_SEND_RATE = 1000
    settings.SES_QUOTA_CAP = True
    settings.ADMINS = []
    pacing.reset_schedule()
    yield server
    server.stop()
    pacing.reset_schedule()


@pytest.fixture
def moto_sandbox(ses, settings):
    """The emulator as an SES account: auto mode, a sandbox-sized quota."""
    settings.SES_EMULATOR = False
    settings.SES_SANDBOX = "auto"
    settings.SES_MAX_SEND_RATE = 1000
    settings.SES_QUOTA_CAP = False
    settings.ADMINS = []
    pacing.reset_schedule()
    yield ses
    pacing.reset_schedule()


# --- The sandbox -----------------------------------------------------------------------


def test_auto_mode_falls_back_to_the_quota_when_get_account_is_missing(moto_sandbox):
    status = ses.account_status(refresh=True)
    assert status.sandbox is True
    assert "send quota" in status.decided_by and "GetAccount" in status.decided_by
    assert status.max_24_hour_send == 200


def test_auto_mode_asks_get_account_when_it_answers(fake_ses):
    fake_ses.production_access = True
    status = ses.account_status(refresh=True)
    assert (status.sandbox, status.decided_by) == (False, "SESv2 GetAccount.ProductionAccessEnabled")
    fake_ses.production_access = False
    assert ses.account_status(refresh=True).sandbox is True


def test_setting_overrides_auto_detection(fake_ses, settings):
    settings.SES_SANDBOX = "true"
    assert ses.account_status(refresh=True).decided_by == "SES_SANDBOX=true"
    assert ses.sandbox_enabled() is True


def test_sandbox_allows_verified_addresses_and_domains_only(moto_sandbox):
    moto_sandbox.verify("friend@example.org", "team.example")
    allowed = ses.allowed_recipients(["friend@example.org", "anyone@team.example", "stranger@example.org"])
    assert allowed == {"friend@example.org", "anyone@team.example"}


def test_daily_send_in_the_sandbox_skips_unverified_recipients(moto_sandbox, eager_tasks):
    moto_sandbox.verify("friend@example.org")
    make_questions("backend", 1)
    make_subscriber("friend@example.org")
    make_subscriber("stranger@example.org")

    start_daily_send(day=TUESDAY)

    outcome = dict(Delivery.objects.values_list("subscription__subscriber__email", "status"))
    assert outcome == {"friend@example.org": "sent", "stranger@example.org": "skipped"}
    assert Delivery.objects.get(status="skipped").reason == "sandbox: recipient not verified"
    assert [m.to for m in moto_sandbox.messages()] == ["friend@example.org"]


def test_sandbox_refuses_unverified_visitors_plainly(moto_sandbox, eager_tasks, client):
    form = {"email": "stranger@example.org", "categories": ["backend"], "frequency": "daily", "consent": "on"}
    response = client.post(reverse("subscriptions:subscribe"), form, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403
    assert "test mode" in response.content.decode()
    assert not Subscriber.objects.exists() and moto_sandbox.messages() == []

    moto_sandbox.verify("friend@example.org")
    form["email"] = "friend@example.org"
    assert client.post(reverse("subscriptions:subscribe"), form).status_code == 302
    assert [m.to for m in moto_sandbox.messages()] == ["friend@example.org"]


def test_ses_status_command_reports_mode_quota_and_identities(moto_sandbox, capsys):
    moto_sandbox.verify("friend@example.org")
    call_command("ses_status")
    out = capsys.readouterr().out
    assert "Sandbox: yes" in out and "send quota" in out
    assert "200" in out and "friend@example.org" in out


# --- Quota, throttling and errors ------------------------------------------------------


def test_run_is_capped_at_the_remaining_quota(fake_ses, eager_tasks):
    fake_ses.max_24_hour_send = 3
    make_questions("backend", 1)
    for n in range(5):
        make_subscriber(f"r{n}@example.org")

    run = start_daily_send(day=TUESDAY)

    statuses = sorted(Delivery.objects.values_list("status", flat=True))
    assert statuses == ["deferred", "deferred", "sent", "sent", "sent"]
    assert len(fake_ses.accepted) == 3 and fake_ses.calls == 3  # nothing pushed into SES to fail
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE


def test_retrying_deferred_deliveries_is_capped_at_the_remaining_quota(fake_ses, eager_tasks):
    fake_ses.max_24_hour_send = 2
    make_questions("backend", 1)
    for n in range(5):
        make_subscriber(f"r{n}@example.org")
    run = start_daily_send(day=TUESDAY)
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["deferred"] * 3 + ["sent"] * 2

    fake_ses.max_24_hour_send = 3  # one more mail allowed in the 24 hours
    assert retry_failed_deliveries(run=run) == 1

    statuses = sorted(Delivery.objects.values_list("status", "reason"))
    assert statuses == [("deferred", QUOTA_REASON)] * 2 + [("sent", "")] * 3
    assert len(fake_ses.accepted) == 3 and fake_ses.calls == 3  # nothing pushed into SES past the quota
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE

    assert retry_failed_deliveries(run=run) == 0  # no quota left: all stay deferred, with their reason
    assert Delivery.objects.filter(status="deferred", reason=QUOTA_REASON).count() == 2
    assert len(fake_ses.accepted) == 3


def test_an_unlimited_quota_caps_nothing(fake_ses, eager_tasks):
    fake_ses.max_24_hour_send = -1  # SES's way of saying "no 24-hour limit"
    make_questions("backend", 1)
    for n in range(5):
        make_subscriber(f"r{n}@example.org")

    run = start_daily_send(day=TUESDAY)

    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["sent"] * 5
    assert len(fake_ses.accepted) == 5
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE


def test_an_unlimited_quota_is_not_read_as_the_sandbox(fake_ses, capsys):
    fake_ses.production_access = None  # no GetAccount: the quota decides
    fake_ses.max_24_hour_send = -1
    status = ses.account_status(refresh=True)
    assert status.sandbox is False and "send quota" in status.decided_by
    assert status.unlimited and status.remaining_24_hours > 10**12
    call_command("ses_status")
    assert "no 24-hour limit" in capsys.readouterr().out

    fake_ses.max_24_hour_send = 200  # a new account's quota still reads as the sandbox
    assert ses.account_status(refresh=True).sandbox is True


def test_throttling_and_server_errors_are_retried_with_backoff(fake_ses, eager_tasks):
    fake_ses.script = ["throttling", "server", "throttling"]
    make_questions("backend", 1)
    make_subscriber("a@example.org")

    start_daily_send(day=TUESDAY)

    assert Delivery.objects.get().status == "sent"
    assert fake_ses.calls == 4 and len(fake_ses.accepted) == 1


def test_rejection_fails_the_delivery_without_retry(fake_ses, eager_tasks):
    fake_ses.script = ["rejected"]
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    make_subscriber("b@example.org")

    start_daily_send(day=TUESDAY)

    failed = Delivery.objects.get(status="failed")
    assert "MessageRejected" in failed.reason
    assert Delivery.objects.filter(status="sent").count() == 1
    assert fake_ses.calls == 2
    assert Subscription.objects.get(deliveries=failed).next_position == 1


def test_daily_quota_exceeded_defers_the_rest_of_the_run(fake_ses, eager_tasks, settings):
    settings.SEND_BATCH_SIZE = 2
    fake_ses.script = ["quota"]
    make_questions("backend", 1)
    for n in range(5):
        make_subscriber(f"r{n}@example.org")

    start_daily_send(day=TUESDAY)

    statuses = sorted(Delivery.objects.values_list("status", flat=True))
    assert statuses == ["deferred"] * 5
    assert fake_ses.calls == 1  # after the quota answer, nothing more was tried
    assert SendRun.objects.get().status == SendRun.Status.DONE


def test_paused_account_pauses_the_run_and_alerts_admins_until_resumed(fake_ses, eager_tasks, settings):
    settings.ADMINS = [("Ops", "ops@example.org")]
    settings.SEND_BATCH_SIZE = 2
    fake_ses.script = ["paused"]
    make_questions("backend", 1)
    for n in range(4):
        make_subscriber(f"r{n}@example.org")

    run = start_daily_send(day=TUESDAY)

    assert SendingState.objects.get().paused
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
    # "paused", in the site's language (Korean by default), in the encoded Subject header SES got.
    alerts = [m for m in fake_ses.accepted if "일시 중지" in str(make_header(decode_header(m["subject"])))]
    assert [m["to"] for m in alerts] == [["ops@example.org"]]
    run.refresh_from_db()
    assert run.status == SendRun.Status.SENDING

    resume_sending()

    assert not SendingState.objects.get().paused
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE


def test_verification_mail_survives_throttling(fake_ses, eager_tasks, django_capture_on_commit_callbacks):
    from subscriptions import services

    fake_ses.production_access = True
    fake_ses.script = ["throttling", "throttling"]
    with django_capture_on_commit_callbacks(execute=True):
        services.request_subscription(
            email="a@example.org", categories=["backend"], frequency="daily", language="en", client_ip="192.0.2.1"
        )
    assert [m["to"] for m in fake_ses.accepted] == [["a@example.org"]]
    assert mail.outbox == []  # it went through SES, not the test outbox


# --- One rate limit for every process ---------------------------------------------------

PACER_SCRIPT = """
import json, sys, django
django.setup()
from mailer.pacing import pacer, BULK
rate, count = float(sys.argv[1]), int(sys.argv[2])
print(json.dumps([pacer.wait_for_slot(rate=rate, priority=BULK) for _ in range(count)]))
"""


# How much of the rate the processes achieve, and how late a woken sender is,
# depend on the machine's load: bench/pacer_model.py --check measures them.
@pytest.mark.parametrize("rate", [40.0, 400.0])  # one slot per booking; blocks of 7
def test_limiter_holds_one_rate_across_processes(redis_url, rate):
    pacing.reset_schedule()
    workers, each = 4, int(rate / 4)
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "mailservice.settings"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PACER_SCRIPT, str(rate), str(each)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    slots = sorted(slot for p in processes for slot in json.loads(p.communicate(timeout=60)[0]))

    # Every process took its slots from the one schedule: no two alike, each
    # at least an interval after the one before, so no second holds more
    # than the rate.
    assert len(slots) == workers * each
    assert min(b - a for a, b in itertools.pairwise(slots)) >= 0.999 / (rate * pacing.MARGIN)
    assert max(sum(1 for u in slots[i:] if u < t + 1.0) for i, t in enumerate(slots)) <= rate
    pacing.reset_schedule()


class FakeClock:
    """time for mailer.pacing: monotonic() and time() move only when told, or when sleep() is called."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.mark.parametrize("busy", [pacing.STALE / 2, pacing.STALE * 2])
def test_a_booked_slot_left_unused_is_dropped_not_sent_on_late(redis_url, settings, monkeypatch, busy):
    settings.REDIS_URL = redis_url
    pacing.reset_schedule()
    clock = FakeClock()
    monkeypatch.setattr(pacing, "time", clock)
    pacer = pacing.Pacer()
    answers = redis_answers(pacer)
    rate = 2000.0  # a booking holds a block of 9 slots
    interval = 1 / (rate * pacing.MARGIN)

    first = pacer.wait_for_slot(rate=rate, priority=pacing.BULK)
    clock.sleep(busy)  # the sender was busy before it wanted its next slot
    second = pacer.wait_for_slot(rate=rate, priority=pacing.BULK)

    if busy < pacing.STALE:  # the next slot of the block, still fresh
        assert len(answers) == 1
        assert second == pytest.approx(first + interval)
    else:  # the rest of the block went stale: dropped, and a new block booked
        assert len(answers) == 2
        assert second >= first + 9 * interval * 0.999
    pacing.reset_schedule()


def redis_answers(pacer: pacing.Pacer) -> list[bool]:
    """Whether each of `pacer`'s calls to the Redis schedule was granted, as they are made."""
    answers = []
    book = pacer._book

    def counted_book(*args):
        answer = book(*args)
        answers.append(answer[0])
        return answer

    pacer._book = counted_book
    return answers


def test_waiting_bulk_senders_of_a_process_share_one_booking(redis_url, settings):
    import threading

    settings.REDIS_URL = redis_url
    pacing.reset_schedule()
    pacer = pacing.Pacer()
    answers = redis_answers(pacer)  # granted or refused, per call to Redis
    rounds, senders = 10, 16
    together = threading.Barrier(senders)

    def sender():
        for _ in range(rounds):
            together.wait()  # all want a slot at the same moment
            pacer.wait_for_slot(rate=100_000.0, priority=pacing.BULK)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Far below the rate, one call books for all who wait; none is turned
    # away for the slots the process itself just booked.
    assert all(answers), answers
    assert len(answers) <= 2 * rounds, len(answers)
    pacing.reset_schedule()


def test_while_the_rate_binds_one_booking_serves_the_waiting_senders(redis_url, settings):
    import threading

    settings.REDIS_URL = redis_url
    pacing.reset_schedule()
    pacer = pacing.Pacer()
    rate = 400.0  # 5 ms of the schedule holds one slot, 20 ms hold seven
    answers, slots = redis_answers(pacer), []

    def sender():
        for _ in range(20):
            slots.append(pacer.wait_for_slot(rate=rate, priority=pacing.BULK))

    threads = [threading.Thread(target=sender) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Sixteen senders always waiting keep the rate binding: a call books a
    # slot for each of them, up to 20 ms of the schedule, not a Redis call per mail.
    granted = sum(1 for answer in answers if answer)
    assert len(slots) == 320
    assert granted <= len(slots) / 3, (granted, len(answers))
    ordered = sorted(slots)
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= 0.999 / (rate * pacing.MARGIN)
    pacing.reset_schedule()


def test_a_bulk_booking_is_granted_ahead_not_refused_until_the_schedule_comes(redis_url, settings):
    settings.REDIS_URL = redis_url
    pacing.reset_schedule()
    other, pacer = pacing.Pacer(), pacing.Pacer()  # two worker processes
    interval = 1 / (500.0 * pacing.MARGIN)
    # The other process booked ~16 ms of the schedule for its waiting senders.
    theirs = other._book_slots(interval, ahead=1.0, count=8, timeout=5)
    answers = redis_answers(pacer)
    [(_due, slot)] = pacer._book_bulk(interval, 1, timeout=5)

    # Granted at once, up to BINDING_SPAN ahead: a booker told to come back
    # when the schedule was one slot ahead would have to wake within that
    # slot's 2 ms, and the time it overslept would be lost to every sender.
    assert answers == [True]
    assert slot >= theirs[-1][1] + interval * 0.999
    pacing.reset_schedule()


def test_transactional_mails_reuse_one_ses_connection(fake_ses, eager_tasks, django_capture_on_commit_callbacks):
    from subscriptions import services

    fake_ses.production_access = True
    ses.account_status(refresh=True)  # its own calls (quota, account) are not mail
    before = fake_ses.connections
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            services.request_subscription(
                email=f"r{n}@example.org",
                categories=["backend"],
                frequency="daily",
                language="en",
                client_ip=f"192.0.2.{n}",
            )
    assert len(fake_ses.accepted) == 3
    # One connection for the three mails (a new client per mail would open three).
    assert fake_ses.connections - before == 1


def test_setting_the_endpoint_again_gives_a_new_process_connection(fake_ses, settings):
    first = ses.reusable_connection()
    assert ses.reusable_connection() is first
    # A new endpoint can get the address of one gone before it (a test's fake
    # SES, on a port used before): the old client's kept-alive sockets would
    # still reach the old one's handlers.
    settings.AWS_SES_REGION_ENDPOINT_URL = fake_ses.url
    assert ses.reusable_connection() is not first


def test_every_send_on_the_shared_connection_takes_a_slot_as_it_leaves(fake_ses, settings, monkeypatch):
    from django.core.mail import EmailMessage

    fake_ses.production_access = True
    connection = ses.reusable_connection()
    taken = []  # (priority, messages SES had accepted) at each slot
    wait_for_slot = pacing.pacer.wait_for_slot

    def recorded(*, rate, priority, **kwargs):
        taken.append((priority, len(fake_ses.accepted)))
        return wait_for_slot(rate=rate, priority=priority, **kwargs)

    monkeypatch.setattr(pacing.pacer, "wait_for_slot", recorded)

    def message(n):
        return EmailMessage("paced", "body", settings.DEFAULT_FROM_EMAIL, [f"r{n}@example.org"], connection=connection)

    for n in range(3):
        ses.send_message(lambda n=n: message(n), priority=pacing.BULK)
    for n in range(3, 6):
        message(n).send()  # not through send_message: the connection paces it all the same

    # One slot per send, taken after the message before it reached SES (the
    # arrivals' spacing at the endpoint is bench.run's busiest-window figure).
    assert len(fake_ses.accepted) == 6
    assert taken == [(pacing.BULK, n) for n in range(3)] + [(pacing.TRANSACTIONAL, n) for n in range(3, 6)]


def test_a_batch_out_of_time_puts_what_it_did_not_reach_back_on_the_queue(fake_ses, eager_tasks, settings):
    fake_ses.production_access = True
    fake_ses.latency = 0.15
    settings.SEND_BATCH_SECONDS = 0.3  # two or three sends per batch, then the rest go back
    make_questions("backend", 1)
    for n in range(8):
        make_subscriber(f"r{n}@example.org")
    run = start_daily_send(day=TUESDAY)

    assert sorted(to for m in fake_ses.accepted for to in m["to"]) == sorted(f"r{n}@example.org" for n in range(8))
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    claims = set(Delivery.objects.values_list("claim", flat=True))
    assert len(claims) >= 3  # the first batch stopped and later batches sent the rest
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE

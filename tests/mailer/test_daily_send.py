"""The daily send, through its service and its command, with tasks run in-process.

The end-to-end run on real Celery workers is in test_send_integration.py.
"""

import re
import threading
import time
from datetime import date, timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from mailer import alerts
from mailer.models import Delivery, Question, SendRun
from mailer.sending import batch, bulk_sql, daily_email, runs
from mailer.sending.runs import start_daily_send
from subscriptions.models import Subscriber, Subscription
from tests.factories import make_questions, make_subscriber

MONDAY = date(2026, 11, 30)
TUESDAY = MONDAY + timedelta(days=1)
SATURDAY = MONDAY + timedelta(days=5)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(eager_tasks, settings):
    settings.SITE_URL = "https://dailyq.example"
    settings.ADMINS = [("Ops", "ops@example.org")]
    mail.outbox.clear()


def mails_to(address):
    return [m for m in mail.outbox if m.to == [address]]


def test_each_due_subscription_gets_its_next_question_once():
    make_questions("backend", 3)
    make_questions("frontend", 3)
    make_subscriber("a@example.org", categories=["backend"], next_position=2)
    make_subscriber("b@example.org", categories=["backend", "frontend"])

    run = start_daily_send(day=TUESDAY)

    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE and run.total == 3
    [a_mail] = mails_to("a@example.org")
    assert a_mail.subject == "[DailyQ 백엔드] backend question 2"
    assert sorted(m.subject for m in mails_to("b@example.org")) == [
        "[DailyQ 백엔드] backend question 1",
        "[DailyQ 프론트엔드] frontend question 1",
    ]
    assert Subscription.objects.get(subscriber__email="a@example.org").next_position == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}

    again = start_daily_send(day=TUESDAY)
    assert again.id == run.id
    assert len(mail.outbox) == 3 + 1  # three questions and the run report, nothing twice
    assert Delivery.objects.count() == 3


def test_weekly_subscribers_get_five_questions_on_monday_only():
    make_questions("backend", 7)
    make_subscriber("weekly@example.org", frequency="weekly", next_position=4)

    start_daily_send(day=TUESDAY)
    assert mails_to("weekly@example.org") == []

    start_daily_send(day=MONDAY)
    [digest] = mails_to("weekly@example.org")
    # Positions 4..7 then wrap to 1: five questions in one mail.
    for position in [4, 5, 6, 7, 1]:
        assert f"backend question {position}" in digest.body
    assert Subscription.objects.get().next_position == 2


def test_cursor_wraps_around_when_the_questions_run_out():
    make_questions("backend", 2)
    make_subscriber("a@example.org", next_position=3)
    start_daily_send(day=TUESDAY)
    assert mails_to("a@example.org")[0].subject.endswith("backend question 1")
    assert Subscription.objects.get().next_position == 2


def test_unpublished_questions_are_passed_over():
    make_questions("backend", 1)
    make_questions("backend", 1, start=2, published=False)
    make_questions("backend", 1, start=3)
    make_subscriber("a@example.org", next_position=2)
    start_daily_send(day=TUESDAY)
    assert mails_to("a@example.org")[0].subject.endswith("backend question 3")


def test_subscriptions_activated_after_the_cutoff_start_the_next_send_day():
    make_questions("backend", 3)
    cutoff = runs.send_cutoff(TUESDAY)
    make_subscriber("early@example.org", activated_at=cutoff - timedelta(minutes=1))
    make_subscriber("late@example.org", activated_at=cutoff + timedelta(minutes=1))

    start_daily_send(day=TUESDAY)
    assert len(mails_to("early@example.org")) == 1 and mails_to("late@example.org") == []

    start_daily_send(day=TUESDAY + timedelta(days=1))
    assert len(mails_to("late@example.org")) == 1


def test_weekends_send_nothing():
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    assert start_daily_send(day=SATURDAY) is None
    assert not SendRun.objects.exists() and mail.outbox == []


def test_category_without_questions_is_skipped_with_a_reason():
    make_subscriber("a@example.org", categories=["frontend"])
    start_daily_send(day=TUESDAY)
    delivery = Delivery.objects.get()
    assert delivery.status == "skipped" and "no published questions" in delivery.reason
    assert SendRun.objects.get().status == SendRun.Status.DONE


def test_unsubscribed_or_suppressed_before_the_batch_runs_are_skipped(monkeypatch):
    from mailer.suppressions import suppress_address

    make_questions("backend", 2)
    gone = make_subscriber("gone@example.org")
    make_subscriber("bounced@example.org")
    make_subscriber("ok@example.org")
    # The run's deliveries are created, but no worker takes them yet...
    monkeypatch.setattr(runs, "enqueue_pending_deliveries", lambda *, run_id: 0)
    run = start_daily_send(day=TUESDAY)
    # ...and meanwhile one subscriber leaves and another address bounces.
    Subscription.objects.filter(subscriber=gone).update(is_active=False)
    suppress_address(email="BOUNCED@example.org", reason="bounce")

    batch.send_delivery_batch(ids=list(run.deliveries.values_list("id", flat=True)))

    outcomes = dict(Delivery.objects.values_list("subscription__subscriber__email", "reason"))
    assert outcomes["gone@example.org"] == "unsubscribed before the send"
    assert outcomes["bounced@example.org"] == "address suppressed"
    assert outcomes["ok@example.org"] == ""
    assert [m.to for m in mail.outbox if "ops@" not in m.to[0]] == [["ok@example.org"]]
    # Only what was sent moves its cursor.
    assert dict(Subscription.objects.values_list("subscriber__email", "next_position")) == {
        "gone@example.org": 1,
        "bounced@example.org": 1,
        "ok@example.org": 2,
    }


def test_a_batch_claimed_elsewhere_is_not_sent_again():
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = start_daily_send(day=TUESDAY)
    ids = list(run.deliveries.values_list("id", flat=True))
    result = batch.send_delivery_batch(ids=ids)  # a redelivered task
    assert result.claimed == 0
    assert len(mails_to("a@example.org")) == 1


def test_failures_are_recorded_and_retried_from_the_admin_service(ses, settings):
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    settings.ADMINS = []
    settings.DEFAULT_FROM_EMAIL = "DailyQ <unverified@nowhere.example>"  # SES refuses this sender

    run = start_daily_send(day=TUESDAY)

    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    assert "MessageRejected" in delivery.reason
    assert Subscription.objects.get().next_position == 1
    run.refresh_from_db()
    assert run.status == SendRun.Status.DONE

    settings.DEFAULT_FROM_EMAIL = "DailyQ <dailyq@example.com>"
    assert runs.retry_failed_deliveries(run=run) == 1
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.ses_message_id
    assert Subscription.objects.get().next_position == 2
    assert [m.subject for m in ses.messages()] == ["[DailyQ 백엔드] backend question 1"]


def test_the_mail_has_both_parts_absolute_links_and_one_click_unsubscribe(client):
    make_questions("backend", 1)
    make_subscriber("a@example.org", categories=["backend", "frontend"])
    make_questions("frontend", 1)
    start_daily_send(day=TUESDAY)
    message = next(m for m in mails_to("a@example.org") if "백엔드" in m.subject)

    html = message.alternatives[0][0]
    assert message.body.strip() and "<" not in message.body.split("https://")[0]
    assert "backend question 1" in message.body and "backend question 1" in html
    links = re.findall(r'href="([^"]+)"', html)
    assert links and all(re.match(r"https://dailyq\.example(/|$)", link) for link in links)
    assert "style=" in html and "<script" not in html  # inlined CSS, no scripts

    header = message.extra_headers["List-Unsubscribe"]
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<(https://dailyq\.example(/unsubscribe/[^>]+))>", header)
    assert url and url.group(1) in message.body

    response = client.__class__(enforce_csrf_checks=True).post(url.group(2), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    # The backend mail unsubscribes from backend only.
    assert dict(Subscription.objects.values_list("category", "is_active")) == {"backend": False, "frontend": True}
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE


def test_answer_page_linked_from_the_mail_asks_first_then_shows_the_answer(client):
    [question] = make_questions("backend", 1)
    make_subscriber("a@example.org")
    start_daily_send(day=TUESDAY)
    link = re.search(r"https://dailyq\.example(/answer/[^/\s]+/)", mails_to("a@example.org")[0].body).group(1)
    page = client.get(link)
    assert page.status_code == 200
    assert question.title in page.content.decode()
    assert question.answer_md not in page.content.decode()  # think first
    shown = client.post(link, {"action": "reveal"}, follow=True)
    assert question.answer_md in shown.content.decode()


def test_run_report_goes_to_admins_once():
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = start_daily_send(day=TUESDAY)
    [report] = mails_to("ops@example.org")
    assert "완료 1," in report.subject  # in the site's language, Korean by default
    assert alerts.send_run_report(run_id=run.id) == 0


def test_two_triggers_at_once_make_one_run(postgres):
    make_questions("backend", 1)
    for n in range(20):
        make_subscriber(f"r{n}@example.org")
    errors = []

    def trigger():
        try:
            start_daily_send(day=TUESDAY)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert SendRun.objects.count() == 1
    assert Delivery.objects.count() == 20
    assert len([m for m in mail.outbox if m.to != ["ops@example.org"]]) == 20


def test_send_daily_command_dry_run_reports_and_writes_nothing(capsys):
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    make_subscriber("w@example.org", frequency="weekly", categories=["frontend"])
    call_command("send_daily", "--date", MONDAY.isoformat(), "--dry-run")
    out = capsys.readouterr().out
    assert "2 deliveries would be created" in out
    assert "daily/backend: 1" in out and "weekly/frontend: 1" in out
    assert "frontend has no published questions" in out
    assert not SendRun.objects.exists() and mail.outbox == []


def test_send_daily_command_waits_and_shows_progress(capsys):
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    call_command("send_daily", "--date", TUESDAY.isoformat(), "--wait")
    out = capsys.readouterr().out
    assert "1/1" in out and "sent 1" in out and "Done" in out
    call_command("send_daily", "--date", SATURDAY.isoformat())
    assert "not a send day" in capsys.readouterr().out


def test_beat_task_sends_today_in_korean_time(settings):
    from mailer.tasks import start_daily_send as start_daily_send_task

    make_questions("backend", 1)
    make_subscriber("a@example.org", activated_at=timezone.now() - timedelta(days=3))
    result = start_daily_send_task.delay(day=TUESDAY.isoformat()).get()
    assert SendRun.objects.get().id == result
    assert SendRun.objects.get().day == TUESDAY


# --- One render per question set, personalised per reader --------------------------


def direct_daily_email(delivery, questions):
    """The day's mail rendered from scratch for this one reader (what the shared render must equal)."""
    from mailer.emails import build_email
    from subscriptions.links import answer_url, manage_url, unsubscribe_url

    subscription = delivery.subscription
    subscriber = subscription.subscriber
    context = daily_email.daily_email_context(
        category=subscription.category, day=delivery.run.day, questions=questions, language=subscriber.language
    )
    for shown, question in zip(context["questions"], questions, strict=True):
        shown["answer_url"] = answer_url(subscription.id, question.id)
    return build_email(
        "daily_question",
        to=subscriber.email,
        language=subscriber.language,
        context={
            **context,
            "manage_url": manage_url(subscriber.id),
            "unsubscribe_url": unsubscribe_url(subscriber.id, subscription.category),
        },
    )


@pytest.mark.parametrize("frequency", ["daily", "weekly"])
def test_shared_render_gives_each_reader_the_mail_a_direct_render_gives(frequency):
    questions = make_questions("backend", 5)
    questions[0].question_md = "Why is `SELECT *` & <b>friends</b> risky?\n\n- one\n- two"
    questions[0].save()
    readers = [
        make_subscriber(f"{name}@example.org", frequency=frequency, language=language)
        for name, language in [("a", "ko"), ("b", "ko"), ("c", "en")]
    ]
    run = start_daily_send(day=MONDAY)
    deliveries = Delivery.objects.filter(run=run).select_related("run", "subscription__subscriber")
    assert deliveries.count() == 3
    bodies = set()
    for delivery in deliveries:
        picked = [Question.objects.get(id=qid) for qid in delivery.question_ids]
        # Tokens carry the second they were signed in: both renders sign in the same one.
        with mock.patch("time.time", return_value=time.time()):
            shared = build_mail(delivery, picked)
            direct = direct_daily_email(delivery, picked)
            expected_unsubscribe = unsubscribe_url_of(delivery)
        assert shared.subject == direct.subject
        assert shared.body == direct.body
        assert shared.alternatives == direct.alternatives
        assert shared.extra_headers["List-Unsubscribe"] == f"<{expected_unsubscribe}>"
        bodies.add(shared.body)
    assert len(bodies) == len(readers)  # each reader's own links


def build_mail(delivery, questions):
    subscriber = delivery.subscription.subscriber
    return daily_email.build_daily_email(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        language=subscriber.language,
        category=delivery.subscription.category,
        day=delivery.run.day,
        questions=questions,
        subscription_id=delivery.subscription_id,
    )


def unsubscribe_url_of(delivery):
    from subscriptions.links import unsubscribe_url

    return unsubscribe_url(delivery.subscription.subscriber_id, delivery.subscription.category)


def test_an_edited_question_is_rendered_afresh():
    [question] = make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = start_daily_send(day=TUESDAY)
    delivery = Delivery.objects.select_related("run", "subscription__subscriber").get(run=run)
    before = build_mail(delivery, [question])
    question.title = "Edited after the first render"
    question.save()
    after = build_mail(delivery, [question])
    assert "Edited after the first render" not in before.subject
    assert "Edited after the first render" in after.subject and "Edited after the first render" in after.body


@pytest.mark.parametrize("vendor", ["postgresql", "other"])  # one statement of arrays, or Django's bulk_update
def test_outcomes_are_written_only_to_rows_the_claim_still_holds(vendor, monkeypatch, request):
    if vendor == "postgresql":
        request.getfixturevalue("postgres")  # its statement runs on PostgreSQL only
    make_questions("backend", 1)
    for name in "abc":
        make_subscriber(f"{name}@example.org")
    run = SendRun.objects.create(day=TUESDAY, cutoff=runs.send_cutoff(TUESDAY))
    runs._create_deliveries(run)  # pending rows, not sent
    if vendor != connection.vendor:
        monkeypatch.setattr(connection, "vendor", vendor)
    deliveries = list(run.deliveries.order_by("id"))
    Delivery.objects.filter(id__in=[d.id for d in deliveries[:2]]).update(claim="mine")
    Delivery.objects.filter(id=deliveries[2].id).update(claim="the sweeper's")
    sent_at = timezone.now()
    for n, delivery in enumerate(deliveries):
        delivery.status, delivery.reason, delivery.ses_message_id = "sent", f"reason {n}", f"id-{n}"
        delivery.sent_at, delivery.attempts = sent_at - timedelta(seconds=n), n

    written = bulk_sql.bulk_set(
        Delivery,
        {d.id: (d.status, d.reason, d.ses_message_id, d.sent_at, d.attempts) for d in deliveries},
        ["status", "reason", "ses_message_id", "sent_at", "attempts"],
        claim="mine",
    )

    assert written == {deliveries[0].id, deliveries[1].id}
    rows = {d.id: d for d in Delivery.objects.all()}
    for n, delivery in enumerate(deliveries[:2]):
        row = rows[delivery.id]
        assert (row.status, row.reason, row.ses_message_id, row.attempts) == ("sent", f"reason {n}", f"id-{n}", n)
        assert row.sent_at == sent_at - timedelta(seconds=n)
    untouched = rows[deliveries[2].id]
    assert (untouched.status, untouched.ses_message_id, untouched.sent_at) == ("pending", "", None)

    subscription = deliveries[0].subscription
    moved = {subscription.id: (7, sent_at)}
    assert bulk_sql.bulk_set(Subscription, moved, ["next_position", "last_sent_at"]) == {subscription.id}
    subscription.refresh_from_db()
    assert (subscription.next_position, subscription.last_sent_at) == (7, sent_at)


def test_the_end_of_a_run_is_cut_into_smaller_batches_for_every_worker_slot(settings, monkeypatch):
    from mailer import tasks

    settings.SEND_BATCH_SIZE, settings.SEND_PARALLELISM = 8, 4
    make_questions("backend", 1)
    for n in range(60):
        make_subscriber(f"r{n}@example.org")
    run = SendRun.objects.create(day=TUESDAY, cutoff=runs.send_cutoff(TUESDAY))
    runs._create_deliveries(run)
    batches = []
    monkeypatch.setattr(tasks.send_delivery_batch, "delay", lambda *, ids: batches.append(ids))

    assert runs.enqueue_pending_deliveries(run_id=run.id) == len(batches)

    sizes = [len(ids) for ids in batches]
    assert sorted(i for ids in batches for i in ids) == sorted(run.deliveries.values_list("id", flat=True))
    # Each batch takes a quarter (4 slots) of what is left, between 2 (a quarter
    # of the size) and 8: full batches while more than 32 remain, then shrinking.
    assert sizes == [8, 8, 8, 8, 7, 6, 4, 3, 2, 2, 2, 2]


@pytest.mark.parametrize("vendor", ["postgresql", "other"])  # one INSERT of arrays, or Django's bulk_create
def test_a_run_gets_one_row_per_due_subscription_however_often_it_is_created(vendor, monkeypatch, request):
    if vendor == "postgresql":
        request.getfixturevalue("postgres")  # its statement runs on PostgreSQL only
    make_questions("backend", 3)
    make_subscriber("daily@example.org", next_position=2)
    make_subscriber("weekly@example.org", frequency="weekly")
    make_subscriber("front@example.org", categories=["frontend"])  # no frontend questions
    if vendor != connection.vendor:
        monkeypatch.setattr(connection, "vendor", vendor)
    run = SendRun.objects.create(day=MONDAY, cutoff=runs.send_cutoff(MONDAY))

    assert runs._create_deliveries(run) == 3
    assert runs._create_deliveries(run) == 3  # a second trigger adds nothing

    backend = list(Question.objects.filter(category="backend").order_by("position").values_list("id", flat=True))
    rows = {
        d.subscription.subscriber.email: (d.question_ids, d.status, d.reason, d.attempts, d.claim, d.sent_at)
        for d in Delivery.objects.select_related("subscription__subscriber")
    }
    assert rows == {
        "daily@example.org": ([backend[1]], "pending", "", 0, "", None),
        # up to five questions: the three there are, none twice
        "weekly@example.org": (backend, "pending", "", 0, "", None),
        "front@example.org": ([], "skipped", "no published questions in this category", 0, "", None),
    }


def test_a_batch_reads_the_send_rate_once_not_per_mail(monkeypatch, settings):
    from mailer import pacing

    settings.ADMINS = []  # no run report mail: it reads the rate too

    make_questions("backend", 1)
    for n in range(6):
        make_subscriber(f"r{n}@example.org")
    reads = []
    real = pacing.send_rate
    monkeypatch.setattr(pacing, "send_rate", lambda: reads.append(1) or real())
    start_daily_send(day=TUESDAY)
    assert len(mails_to("r5@example.org")) == 1
    assert len(reads) == 2  # sizing the batches, then the one batch; not once per mail


def test_a_pause_over_send_days_mails_each_reader_one_question_on_resume():
    make_questions("backend", 3)
    make_subscriber("a@example.org")
    runs.pause_sending(reason="bounce rate too high")
    monday, tuesday = start_daily_send(day=MONDAY), start_daily_send(day=TUESDAY)
    assert mails_to("a@example.org") == []

    runs.resume_sending()

    assert [m.subject for m in mails_to("a@example.org")] == ["[DailyQ 백엔드] backend question 1"]
    assert Subscription.objects.get().next_position == 2
    old = Delivery.objects.get(run=monday)
    assert (old.status, old.reason) == ("skipped", f"superseded by the run of {TUESDAY.isoformat()}")
    assert Delivery.objects.get(run=tuesday).status == "sent"
    assert set(SendRun.objects.values_list("status", flat=True)) == {"done"}


def test_a_retry_leaves_out_readers_a_later_run_already_mailed(ses, settings):
    make_questions("backend", 5)
    make_subscriber("a@example.org")
    make_subscriber("b@example.org")
    settings.ADMINS = []
    settings.DEFAULT_FROM_EMAIL = "DailyQ <unverified@nowhere.example>"  # SES refuses this sender
    monday = start_daily_send(day=MONDAY)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"failed"}
    settings.DEFAULT_FROM_EMAIL = "DailyQ <dailyq@example.com>"
    Subscriber.objects.filter(email="b@example.org").update(status=Subscriber.Status.UNSUBSCRIBED)
    start_daily_send(day=TUESDAY)  # a carries Monday's question 1 on Tuesday; b is not due
    start_daily_send(day=TUESDAY + timedelta(days=1))
    Subscriber.objects.filter(email="b@example.org").update(status=Subscriber.Status.ACTIVE)

    assert runs.retry_failed_deliveries(run=monday) == 1  # b's; a's question went out on Tuesday

    statuses = dict(Delivery.objects.filter(run=monday).values_list("subscription__subscriber__email", "status"))
    assert statuses == {"a@example.org": "failed", "b@example.org": "sent"}
    a = Subscription.objects.get(subscriber__email="a@example.org")
    assert a.next_position == 3  # never moved back
    assert sorted(m.subject for m in ses.messages() if m.to == "a@example.org") == [
        "[DailyQ 백엔드] backend question 1",
        "[DailyQ 백엔드] backend question 2",
    ]


def _delivery_index_reads() -> int:
    """Index entries PostgreSQL has read on the deliveries table so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, as the statement ends
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sum(idx_tup_read) FROM pg_stat_user_indexes WHERE relname = 'mailer_delivery'")
        return int(cursor.fetchone()[0] or 0)


def test_a_day_s_send_reads_each_delivery_a_few_times_not_once_per_batch(postgres, settings):
    from tests.mailer.seeding import seed_subscribers

    settings.ADMINS, settings.SEND_BATCH_SIZE = [], 50
    make_questions("backend", 1)
    make_questions("frontend", 1)
    total = seed_subscribers(1000)
    # Yesterday's run, all sent, and the statistics PostgreSQL took of it.
    monday = SendRun.objects.create(day=MONDAY, cutoff=runs.send_cutoff(MONDAY), status=SendRun.Status.DONE)
    runs._create_deliveries(monday)
    monday.deliveries.update(status=Delivery.Status.SENT)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mailer_delivery")
    before = _delivery_index_reads()

    start_daily_send(day=TUESDAY)  # in ~40 batches of at most 50

    assert Delivery.objects.filter(run__day=TUESDAY, status="sent").count() == total
    # Each delivery's row is read about eleven times in all (claimed, read,
    # written, counted...). Claiming each batch through an index on status
    # reads every pending row of the run each time: 44 per delivery here, and
    # a 100,000 run's work would grow with its square.
    read = _delivery_index_reads() - before
    assert read < 20 * total, read


@pytest.mark.parametrize("v2", [True, False])
def test_the_emulator_takes_a_daily_mail_with_its_delivery_tag_and_configuration_set(ses, settings, v2):
    settings.USE_SES_V2 = v2
    settings.AWS_SES_CONFIGURATION_SET = "dailyq-events"  # named on the send; the emulator keeps no sets
    settings.ADMINS = []
    make_questions("backend", 1)
    make_subscriber("a@example.org")

    start_daily_send(day=TUESDAY)

    delivery = Delivery.objects.get()
    assert delivery.status == "sent" and delivery.ses_message_id
    assert [m.subject for m in ses.messages()] == ["[DailyQ 백엔드] backend question 1"]

"""Per-question figures (mailed, opened, answers, ratings, reviews), the hardest questions and
unsubscribe reasons: the reads, the admin and the dashboard."""

import re
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailer import dashboard, question_stats
from mailer.models import Delivery, SendRun
from subscriptions import answers, links, selectors
from subscriptions.models import Subscription, UnsubscribeReason
from tests.conftest import free_port
from tests.factories import LONG_AGO, make_questions, make_subscriber

pytestmark = pytest.mark.django_db
with_dashboard = pytest.mark.urls("mailservice.urls")
MONDAY = date(2026, 11, 30)


def reader_with(name: str, questions, statuses=("sent",)):
    subscriber = make_subscriber(f"{name}@example.org")
    subscription = Subscription.objects.get(subscriber=subscriber)
    for offset, status in enumerate(statuses):
        run, _ = SendRun.objects.get_or_create(day=date(2026, 11, 2 + offset), defaults={"cutoff": LONG_AGO})
        Delivery.objects.create(
            run=run, subscription=subscription, status=status, question_ids=[q.id for q in questions]
        )
    return subscriber, subscription


def target(subscriber, subscription, question):
    return selectors.AnswerTarget(subscription_id=subscription.id, subscriber=subscriber, question=question)


@pytest.fixture
def figures_data():
    first, second, third = make_questions("backend", 3)
    for i, rating in enumerate(["again", "again", "partly", "knew"]):
        subscriber, subscription = reader_with(f"r{i}", [first, second], statuses=("sent", "failed"))
        answers.reveal_answer(target=target(subscriber, subscription, first), text="mine" if i < 2 else None)
        answers.rate_answer(target=target(subscriber, subscription, first), rating=rating, today=MONDAY)
        answers.rate_answer(
            target=target(subscriber, subscription, second), rating="knew" if i else "again", today=MONDAY
        )
    subscription = Subscription.objects.get(subscriber__email="r0@example.org")
    answers.record_reviews_sent(pairs=[(subscription.id, first.id)], day=date(2026, 12, 3))
    return first, second, third


def test_question_figures_count_each_kind(figures_data):
    first, second, third = figures_data
    found = question_stats.question_figures()
    assert found[first.id] == question_stats.QuestionFigures(
        mailed=4, opened=4, answers_written=2, knew=1, partly=1, again=2, reviews_sent=1
    )
    assert found[second.id] == question_stats.QuestionFigures(mailed=4, opened=4, knew=3, again=1)
    assert third.id not in found
    assert question_stats.question_figures(question_ids=[second.id]).keys() == {second.id}
    assert question_stats.mailed_counts(question_ids=[]) == {}


def test_question_figures_take_two_queries_however_many_questions(figures_data):
    with CaptureQueriesContext(connection) as queries:
        question_stats.question_figures(question_ids=[q.id for q in figures_data])
    assert len(queries) == 2


def test_hardest_questions_rank_by_share_of_again_with_a_minimum(figures_data):
    first, second, _third = figures_data
    assert [h.question_id for h in question_stats.hardest_questions(min_ratings=4)] == [first.id, second.id]
    assert question_stats.hardest_questions(min_ratings=5) == []


def test_unsubscribe_reasons_are_counted_once_per_unsubscribe_without_a_person(client):
    subscriber = make_subscriber("leaver@example.org")
    url = links.unsubscribe_url(subscriber.id).split("://", 1)[1].split("/", 1)[1]
    page = client.post("/" + url)
    assert page.status_code == 200
    assert 'id="unsubscribe-reason"' in page.content.decode()
    reason_path = "/" + url + "reason/"
    assert client.post(reason_path, {"reason": "too_hard"}).status_code == 200
    client.post(reason_path, {"reason": "too_easy"})
    assert list(UnsubscribeReason.objects.values_list("reason", "detail")) == [("too_hard", "")]
    assert {f.name for f in UnsubscribeReason._meta.get_fields()} == {"id", "reason", "detail", "created_at"}


def test_other_reason_keeps_its_text_and_bad_input_is_refused(client):
    subscriber = make_subscriber("leaver@example.org")
    path = "/" + links.unsubscribe_url(subscriber.id).split("://", 1)[1].split("/", 1)[1]
    client.post(path)
    refused = client.post(path + "reason/", {"reason": "other", "detail": "x" * 501})
    assert refused.status_code == 400
    assert "x" * 501 in refused.content.decode()
    assert client.post(path + "reason/", {"reason": "bogus"}).status_code == 400
    assert client.post(path + "reason/", {"reason": "other", "detail": "Too long answers"}).status_code == 200
    assert list(UnsubscribeReason.objects.values_list("reason", "detail")) == [("other", "Too long answers")]
    assert client.post("/unsubscribe/forged/reason/", {"reason": "too_hard"}).status_code == 404


@with_dashboard
def test_dashboard_lists_hardest_questions_and_reasons(admin_client, figures_data, settings, monkeypatch):
    monkeypatch.setattr(dashboard, "HARDEST_MIN_RATINGS", 4)
    # SES out of reach: the dashboard's quota part says so quickly.
    settings.SES_EMULATOR = False
    settings.SES_SANDBOX = "false"
    settings.AWS_SES_REGION_NAME = "us-east-1"
    settings.AWS_SES_REGION_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.AWS_ACCESS_KEY_ID = "local"
    settings.AWS_SECRET_ACCESS_KEY = "local"
    first, _second, _third = figures_data
    UnsubscribeReason.objects.create(reason="too_many")
    UnsubscribeReason.objects.create(reason="other", detail="bad timing")
    page = admin_client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    row = re.search(rf'<tr id="hardest-{first.id}">(.*?)</tr>', page, re.S)[1]
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)] == [
        first.title, "4", "4", "2", "1", "1", "2 (50%)", "1"
    ]  # fmt: skip
    assert re.search(r'<tr id="reason-too_many"><th scope="row">[^<]+</th><td>1</td>', page)
    assert "bad timing" in page


def test_admin_question_list_and_form_show_the_figures(admin_client, figures_data):
    first, _second, _third = figures_data
    listing = admin_client.get(reverse("admin:mailer_question_changelist")).content.decode()
    assert "4 · 4 · 2 · 1/1/2 · 1" in listing
    detail = admin_client.get(reverse("admin:mailer_question_change", args=[first.pk])).content.decode()
    assert "4 · 4 · 2 · 1/1/2 · 1" in detail


def test_the_manage_page_offers_the_reason_once_right_after_an_unsubscribe(client):
    subscriber = make_subscriber("leaver@example.org")
    manage = links.manage_path(subscriber.id)
    assert 'id="unsubscribe-reason"' not in client.get(manage).content.decode()
    client.post(manage, {"action": "unsubscribe"})
    page = client.get(manage).content.decode()
    action = re.search(r'<form method="post" action="([^"]+)" class="card" id="unsubscribe-reason">', page)[1]
    assert 'id="unsubscribe-reason"' not in client.get(manage).content.decode()
    assert client.post(action, {"reason": "too_many"}).status_code == 200
    assert list(UnsubscribeReason.objects.values_list("reason", flat=True)) == ["too_many"]

"""The answer page (/answer/<token>/) through the test client: answer first, reveal, rate."""

import re
from datetime import date

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailer.models import Delivery, Question, SendRun
from subscriptions import links, tokens
from subscriptions.models import ANSWER_MAX_LENGTH, Answer, Subscription
from subscriptions.services import rotate_reader_links
from tests.factories import LONG_AGO, make_questions, make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    subscriber = make_subscriber("reader@example.org")
    return subscriber, Subscription.objects.get(subscriber=subscriber)


@pytest.fixture
def question():
    (first,) = make_questions("backend", 1)
    first.answer_md = "The **model** answer."
    first.save()
    return first


def path_for(subscription, question) -> str:
    return links.answer_path(subscription.id, question.id)


def test_get_shows_the_question_not_the_answer_and_counts_one_open(client, reader, question):
    _subscriber, subscription = reader
    page = client.get(path_for(subscription, question))
    assert page.status_code == 200
    html = page.content.decode()
    assert question.title in html
    assert "model" not in html
    assert 'name="text"' in html
    client.get(path_for(subscription, question))
    answer = Answer.objects.get()
    assert answer.opened_from_mail_at is not None
    assert (answer.subscription_id, answer.question_id) == (subscription.id, question.id)


def test_show_the_answer_keeps_the_own_answer_escaped(client, reader, question):
    _subscriber, subscription = reader
    path = path_for(subscription, question)
    response = client.post(path, {"action": "answer", "text": "<script>alert(1)</script> TCP handshake"})
    assert response.status_code == 302
    html = client.get(path).content.decode()
    assert "<strong>model</strong>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; TCP handshake" in html
    assert "<script>alert(1)" not in html
    assert Answer.objects.get().text == "<script>alert(1)</script> TCP handshake"


def test_just_show_me_the_answer_ignores_the_box(client, reader, question):
    _subscriber, subscription = reader
    path = path_for(subscription, question)
    client.post(path, {"action": "reveal", "text": "half a thought"})
    answer = Answer.objects.get()
    assert answer.revealed_at is not None
    assert answer.text == ""
    assert "<strong>model</strong>" in client.get(path).content.decode()


def test_too_long_answer_is_refused_and_kept_in_the_box(client, reader, question):
    _subscriber, subscription = reader
    path = path_for(subscription, question)
    long_text = "x" * (ANSWER_MAX_LENGTH + 1)
    response = client.post(path, {"action": "answer", "text": long_text})
    assert response.status_code == 400
    html = response.content.decode()
    assert long_text in html
    assert "model" not in html
    assert not Answer.objects.exists()  # refused before anything was stored


def test_rating_again_schedules_a_review_and_a_change_replaces_it(client, reader, question):
    _subscriber, subscription = reader
    path = path_for(subscription, question)
    client.post(path, {"action": "reveal"})
    assert client.post(path, {"rating": "again"}).status_code == 302
    answer = Answer.objects.get()
    assert answer.rating == "again"
    assert answer.next_review_on is not None
    assert answer.next_review_on > timezone.localdate()
    client.post(path, {"rating": "partly"})
    answer.refresh_from_db()
    assert answer.rating == "partly"
    assert Answer.objects.count() == 1
    client.post(path, {"rating": "knew"})
    answer.refresh_from_db()
    assert (answer.rating, answer.next_review_on) == ("knew", None)
    assert 'aria-pressed="true"' in client.get(path).content.decode()


def test_an_unknown_rating_is_refused_and_changes_nothing(client, reader, question):
    _subscriber, subscription = reader
    path = path_for(subscription, question)
    client.post(path, {"rating": "again"})
    response = client.post(path, {"rating": "maybe"})
    assert response.status_code == 400
    assert Answer.objects.get().rating == "again"


@pytest.mark.parametrize(
    "make",
    [
        lambda s, q: "not-a-token",
        lambda s, q: tokens.make_token(tokens.Purpose.MANAGE, {"u": s.id, "q": q.id}),
        lambda s, q: tokens.make_token(tokens.Purpose.MANAGE, {"s": s.subscriber_id}),
        lambda s, q: signing.dumps({"u": s.id, "q": q.id}, salt="dailyq.unsubscribe"),
        lambda s, q: tokens.make_token(tokens.Purpose.ANSWER, {"u": s.id, "q": q.id + 999}),
        lambda s, q: tokens.make_token(tokens.Purpose.ANSWER, {"u": s.id + 999, "q": q.id}),
        lambda s, q: tokens.make_token(tokens.Purpose.ANSWER, {"u": str(s.id), "q": q.id}),
    ],
    ids=["garbage", "manage-purpose", "manage-token", "unsubscribe-salt", "no-question", "no-subscription", "str-id"],
)
def test_a_bad_or_other_purpose_token_is_a_404_and_stores_nothing(reader, question, make):
    _subscriber, subscription = reader
    client = Client(enforce_csrf_checks=False)
    url = reverse("subscriptions:answer", args=[make(subscription, question)])
    assert client.get(url).status_code == 404
    assert client.post(url, {"rating": "again", "action": "answer", "text": "x"}).status_code == 404
    assert not Answer.objects.exists()


def test_the_manage_token_does_not_open_the_answer_page_nor_the_answer_token_manage(client, reader, question):
    _subscriber, subscription = reader
    answer_token = path_for(subscription, question).rstrip("/").rsplit("/", 1)[1]
    assert client.get(reverse("subscriptions:manage", args=[answer_token])).status_code == 404
    assert client.get(reverse("subscriptions:unsubscribe", args=[answer_token])).status_code == 404


def test_a_question_of_another_category_is_refused(client, reader):
    _subscriber, subscription = reader
    (frontend,) = make_questions("frontend", 1)
    assert client.get(path_for(subscription, frontend)).status_code == 404
    assert not Answer.objects.exists()


def test_links_of_an_earlier_generation_stop(client, reader, question):
    subscriber, subscription = reader
    old = path_for(subscription, question)
    rotate_reader_links(subscriber=subscriber)
    assert client.get(old).status_code == 404
    assert client.get(path_for(subscription, question)).status_code == 200


def test_post_needs_csrf(reader, question):
    _subscriber, subscription = reader
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(path_for(subscription, question), {"rating": "again"}).status_code == 403
    assert not Answer.objects.filter(rating="again").exists()


def test_the_page_is_rate_limited_per_client(client, reader, question, settings):
    settings.READER_PAGE_REQUESTS_PER_CLIENT_PER_MINUTE = 3
    _subscriber, subscription = reader
    path = path_for(subscription, question)
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(path)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert client.get(path, REMOTE_ADDR="198.51.100.7").status_code == 200


def test_answer_url_is_absolute_and_matches_the_path(reader, question, settings):
    settings.SITE_URL = "https://dailyq.example"
    _subscriber, subscription = reader
    url = links.answer_url(subscription.id, question.id)
    assert url == "https://dailyq.example" + path_for(subscription, question)
    routed = links.ReaderLinks.routed()
    assert routed.answer_url(subscription.id, question.id, generation=0) == url


def sent_delivery(subscription, question_ids, day=date(2026, 11, 30)):
    run, _ = SendRun.objects.get_or_create(day=day, defaults={"cutoff": LONG_AGO})
    return Delivery.objects.create(
        run=run, subscription=subscription, question_ids=question_ids, status="sent", sent_at=timezone.now()
    )


def test_my_questions_lists_answers_ratings_and_due_filter(client, reader):
    subscriber, subscription = reader
    first, second = make_questions("backend", 2)
    sent_delivery(subscription, [first.id])
    sent_delivery(subscription, [second.id], day=date(2026, 12, 1))
    client.post(path_for(subscription, first), {"action": "answer", "text": "my own words"})
    client.post(path_for(subscription, first), {"rating": "again"})
    Answer.objects.filter(question=first).update(next_review_on=timezone.localdate())  # due today
    manage = links.manage_path(subscriber.id)
    html = client.get(manage).content.decode()
    assert first.title in html and second.title in html
    assert "my own words" in html
    assert path_for(subscription, first) in html
    due_only = client.get(manage + "?due=1").content.decode()
    assert first.title in due_only
    assert second.title not in due_only
    assert re.search(r"my-questions", due_only)


def test_my_questions_shows_an_english_reader_the_english_title(client):
    subscriber = make_subscriber("english-reader@example.org", language="en")
    subscription = Subscription.objects.get(subscriber=subscriber)
    translated, korean_only = make_questions("backend", 2)
    Question.objects.filter(id=translated.id).update(title_en="What is MVCC?", answer_md_en="Versions of rows.")
    sent_delivery(subscription, [translated.id, korean_only.id])
    html = client.get(links.manage_path(subscriber.id)).content.decode()
    assert f'<a href="{path_for(subscription, translated)}" lang="en">What is MVCC?</a>' in html
    # No English text: the Korean title, marked as Korean.
    assert f'<a href="{path_for(subscription, korean_only)}" lang="ko">{korean_only.title}</a>' in html

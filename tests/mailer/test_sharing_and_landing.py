"""A question page's link preview and share link, and the landing page's readers and sample question."""

import re
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from mailer.archive import active_readers, pick_sample_question, sample_question
from mailer.models import Question
from subscriptions.models import Subscriber, Subscription
from tests.factories import make_questions, make_subscriber

pytestmark = pytest.mark.django_db

TUESDAY = date(2026, 12, 1)


def meta_tags(page: str) -> dict[str, str]:
    return dict(re.findall(r'<meta (?:property|name)="([^"]+)" content="([^"]*)"', page))


def test_a_question_page_previews_its_question_and_not_its_answer(client, settings):
    settings.SITE_URL = "https://dailyq.example"
    [question] = make_questions("backend", 1)
    question.question_md = "트랜잭션 **격리 수준**을 설명해 주세요."
    question.answer_md = "정답: MVCC."
    question.save()
    path = reverse("mailer:question", args=[question.pk])
    page = client.get(path, HTTP_HOST="127.0.0.1").content.decode()
    tags = meta_tags(page)
    assert tags["og:title"] == question.title
    assert tags["og:description"] == "트랜잭션 격리 수준을 설명해 주세요." == tags["description"]
    assert tags["og:site_name"] == "DailyQ"
    assert tags["og:type"] == "article"
    assert tags["og:url"] == f"https://dailyq.example{path}"
    assert "MVCC" not in str(tags)


def test_the_share_button_is_a_plain_link_to_the_page_on_site_url(client, settings):
    settings.SITE_URL = "https://dailyq.example"
    [question] = make_questions("backend", 1)
    page = client.get(reverse("mailer:question", args=[question.pk])).content.decode()
    share = re.search(r"<a [^>]*data-share[^>]*>", page).group(0)
    assert f'href="https://dailyq.example/questions/{question.pk}/"' in share
    assert re.search(r'<script src="/static/js/share\.js" defer></script>', page)


def test_active_readers_are_people_with_mail_coming(client):
    make_subscriber("both@example.org", categories=("backend", "frontend"))
    make_subscriber("one@example.org")
    paused = make_subscriber("paused@example.org")
    Subscription.objects.filter(subscriber=paused).update(is_active=False)
    gone = make_subscriber("gone@example.org")
    Subscriber.objects.filter(pk=gone.pk).update(status=Subscriber.Status.UNSUBSCRIBED)
    Subscriber.objects.create(email="pending@example.org")
    assert active_readers() == 2


def test_active_readers_are_counted_once_then_read_from_the_cache(django_assert_num_queries):
    make_subscriber("a@example.org")
    with django_assert_num_queries(1):
        assert active_readers() == 1
    make_subscriber("b@example.org")
    with django_assert_num_queries(0):
        assert active_readers() == 1
    cache.delete("landing:active-readers")
    assert active_readers() == 2


def test_the_sample_question_is_the_same_all_day_and_turns_through_the_bank():
    questions = make_questions("backend", 3) + make_questions("frontend", 2)
    assert pick_sample_question(day=TUESDAY) == pick_sample_question(day=TUESDAY)
    week = [pick_sample_question(day=TUESDAY + timedelta(days=n)).id for n in range(5)]
    assert sorted(week) == sorted(question.id for question in questions)


def test_the_sample_question_is_never_an_unpublished_one():
    make_questions("backend", 2, published=False)
    [published] = make_questions("backend", 1, start=3)
    for n in range(4):
        assert pick_sample_question(day=TUESDAY + timedelta(days=n)).id == published.id


def test_the_landing_page_shows_readers_and_links_the_days_question(client, settings):
    make_questions("backend", 2)
    make_subscriber("a@example.org")
    make_subscriber("b@example.org", categories=("backend", "frontend"))
    page = client.get(reverse("subscriptions:landing"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2 readers get a question by mail." in page
    today = sample_question(day=timezone.localdate())
    assert f'href="{reverse("mailer:question", args=[today.id])}"' in page
    assert today.title in page


def test_the_landing_page_works_with_an_empty_bank_and_no_readers(client):
    response = client.get(reverse("subscriptions:landing"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    assert "sample question" not in page and "readers get" not in page
    assert 'id="subscribe"' in page


def test_the_landing_page_reads_nothing_from_the_database_while_cached(client, django_assert_num_queries):
    make_questions("backend", 3)
    make_subscriber("a@example.org")
    client.get(reverse("subscriptions:landing"))
    with django_assert_num_queries(0):
        assert client.get(reverse("subscriptions:landing")).status_code == 200


def test_no_sample_question_once_nothing_is_published():
    [only] = make_questions("backend", 1)
    assert sample_question(day=TUESDAY).id == only.id
    Question.objects.update(is_published=False)
    assert pick_sample_question(day=TUESDAY) is None

"""Question pages, the archive, and the admin for questions and send runs."""

import re
import threading
from datetime import date

import pytest
from django.core import mail
from django.db import connection, transaction
from django.urls import reverse

from mailer.models import Delivery, Question, SendRun
from mailer.questions import move_question, save_question
from mailer.sending.runs import start_daily_send
from subscriptions.links import manage_url
from tests.factories import make_questions, make_subscriber

pytestmark = pytest.mark.django_db(transaction=True)
TUESDAY = date(2026, 12, 1)


def test_question_page_shows_the_rendered_answer_and_hides_unpublished(client):
    [question] = make_questions("backend", 1)
    question.answer_md = "### 핵심\n\n- **ACID**\n\n<script>alert(1)</script>"
    question.save()
    page = client.get(reverse("mailer:question", args=[question.pk])).content.decode()
    assert "<strong>ACID</strong>" in page and "<script>alert" not in page

    Question.objects.update(is_published=False)
    assert client.get(reverse("mailer:question", args=[question.pk])).status_code == 404


def test_archive_paginates_a_category(client):
    make_questions("frontend", 45)
    first = client.get(reverse("mailer:archive", args=["frontend"])).content.decode()
    assert "frontend question 1<" in first and "frontend question 21<" not in first
    third = client.get(reverse("mailer:archive", args=["frontend"]), {"page": 3}).content.decode()
    assert "frontend question 41<" in third
    assert client.get(reverse("mailer:archive", args=["cooking"])).status_code == 404


def test_manage_page_lists_the_questions_received(client, eager_tasks):
    make_questions("backend", 2)
    subscriber = make_subscriber("a@example.org")
    start_daily_send(day=TUESDAY)
    path = manage_url(subscriber.id).split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path).content.decode()
    assert "backend question 1" in page and "backend question 2" not in page


def test_move_question_reorders_and_keeps_positions_unique():
    questions = make_questions("backend", 4)
    move_question(question=questions[3], position=1)
    assert list(Question.objects.order_by("position").values_list("title", flat=True)) == [
        "backend question 4",
        "backend question 1",
        "backend question 2",
        "backend question 3",
    ]
    move_question(question=questions[3], position=99)
    assert Question.objects.order_by("position").last().title == "backend question 4"


def test_admin_question_form_previews_and_moves(admin_client):
    questions = make_questions("backend", 3)
    url = reverse("admin:mailer_question_change", args=[questions[2].pk])
    page = admin_client.get(url).content.decode()
    assert "dailyq-preview" in page and "<strong>topic 3</strong>" in page

    data = {
        "category": "backend",
        "move_to": "1",
        "title": "Moved",
        "question_md": "",
        "answer_md": "A.",
        "is_published": "on",
        "source_key": questions[2].source_key,
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Question.objects.get(position=1).title == "Moved"
    assert Question.objects.count() == 3


def test_admin_publishes_unpublishes_and_deletes_questions(admin_client):
    first, second = make_questions("backend", 2)
    changelist = reverse("admin:mailer_question_changelist")

    admin_client.post(changelist, {"action": "unpublish", "_selected_action": [first.pk, second.pk]})
    assert not Question.objects.filter(is_published=True).exists()
    admin_client.post(changelist, {"action": "publish", "_selected_action": [second.pk]})
    assert list(Question.objects.filter(is_published=True)) == [second]

    admin_client.post(reverse("admin:mailer_question_delete", args=[first.pk]), {"post": "yes"})
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"})
    assert not Question.objects.exists()


def test_a_send_run_cannot_be_deleted_from_the_admin(admin_client, eager_tasks):
    # A day's run is what keeps the day from being sent twice: without it, the
    # next trigger would mail every reader that day's question again.
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = start_daily_send(day=TUESDAY)
    assert admin_client.post(reverse("admin:mailer_sendrun_delete", args=[run.pk]), {"post": "yes"}).status_code == 403
    admin_client.post(
        reverse("admin:mailer_sendrun_changelist"),
        {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"},
    )
    assert SendRun.objects.filter(pk=run.pk).exists()


def test_admin_run_page_shows_progress_and_retries_failures(admin_client, eager_tasks):
    make_questions("backend", 1)
    make_subscriber("a@example.org")
    run = start_daily_send(day=TUESDAY)
    Delivery.objects.update(status="failed", reason="Throttling")
    page = admin_client.get(reverse("admin:mailer_sendrun_change", args=[run.pk])).content.decode()
    assert 'id="run-progress"' in page and "failed" in page

    mail.outbox.clear()
    admin_client.post(
        reverse("admin:mailer_sendrun_changelist"), {"action": "retry_failed", "_selected_action": [run.pk]}
    )
    assert Delivery.objects.get().status == "sent"
    assert SendRun.objects.get().status == "done"
    assert [m.to for m in mail.outbox] == [["a@example.org"]]


def test_admin_preview_and_test_send_of_todays_mail(admin_client, ses):
    make_questions("backend", 2)
    subscriber = make_subscriber("a@example.org", next_position=2)
    subscription = subscriber.subscriptions.get()
    url = reverse("admin:mailer_preview", args=[subscription.pk])

    page = admin_client.get(url).content.decode()
    assert "backend question 2" in page and "List-Unsubscribe" in page
    html = admin_client.get(reverse("admin:mailer_preview_html", args=[subscription.pk]))
    assert "backend question 2" in html.content.decode()
    assert "default-src 'none'" in html["Content-Security-Policy"]

    admin_client.post(url, {"to": "editor@example.org"})
    [sent] = ses.messages()
    assert sent.to == "editor@example.org" and sent.subject.startswith("[TEST]")
    assert "backend question 2" in sent.text and "backend question 2" in sent.html
    assert subscription.deliveries.count() == 0  # a test send is not a delivery
    # The editor who gets it cannot act on the reader's subscription: no link carries a token of theirs.
    assert "List-Unsubscribe" not in dict(sent.headers)
    for body in (sent.text, sent.html):
        links = set(re.findall(r"https?://[^\s\"<>]+", body))
        assert links and not [link for link in links if "/manage/" in link or "/unsubscribe/" in link], links

    refused = admin_client.post(url, {"to": "nope\nBcc: x@example.org"})
    assert refused.status_code == 200 and "errorlist" in refused.content.decode()
    assert len(ses.messages()) == 1


def test_subscription_admin_links_to_the_preview(admin_client):
    make_subscriber("a@example.org")
    page = admin_client.get(reverse("admin:subscriptions_subscription_changelist")).content.decode()
    assert re.search(r'href="/admin/mailer/sendrun/preview/\d+/"', page)


def test_admin_moves_a_question_to_another_category_at_its_end(admin_client):
    backend = make_questions("backend", 2)
    make_questions("frontend", 3)
    data = {
        "category": "frontend",
        "move_to": str(backend[0].position),
        "title": backend[0].title,
        "question_md": backend[0].question_md,
        "answer_md": "A.",
        "is_published": "on",
        "source_key": backend[0].source_key,
    }
    # Left as it was, the move is to the end of its new category ...
    response = admin_client.post(reverse("admin:mailer_question_change", args=[backend[0].pk]), data)
    assert response.status_code == 302
    assert Question.objects.get(pk=backend[0].pk).position == 4
    # ... and a position changed is a place in the new category.
    response = admin_client.post(
        reverse("admin:mailer_question_change", args=[backend[1].pk]),
        {**data, "title": "B2", "move_to": "3", "source_key": backend[1].source_key},
    )
    assert response.status_code == 302
    frontend = list(Question.objects.filter(category="frontend").order_by("position").values_list("title", flat=True))
    assert frontend == ["frontend question 1", "frontend question 2", "B2", "frontend question 3", "backend question 1"]
    assert not Question.objects.filter(category="backend").exists()


def test_admin_adds_questions_at_the_end_or_where_asked(admin_client):
    make_questions("backend", 2)
    add = reverse("admin:mailer_question_add")
    data = {"category": "backend", "title": "New", "question_md": "Q?", "answer_md": "A.", "is_published": "on"}
    assert admin_client.post(add, {**data, "move_to": "", "source_key": ""}).status_code == 302
    assert admin_client.post(add, {**data, "title": "First", "move_to": "1", "source_key": ""}).status_code == 302
    titles = list(Question.objects.filter(category="backend").order_by("position").values_list("title", flat=True))
    assert titles == ["First", "backend question 1", "backend question 2", "New"]
    assert list(Question.objects.order_by("position").values_list("position", flat=True)) == [1, 2, 3, 4]
    # Written here, without a source key: each gets its own.
    keys = Question.objects.filter(title__in=["New", "First"]).values_list("source_key", flat=True)
    assert len(set(keys)) == 2 and all(key.startswith("admin:") for key in keys)


def test_questions_added_at_once_to_an_empty_category_get_their_own_places(postgres):
    # One admin's save is still open when another's starts: the second waits for the category
    # (its Track row's lock: on SQLite the second writer fails with "database table is locked" instead).
    first_saved, second_done = threading.Event(), threading.Event()
    errors = []

    def first():
        try:
            with transaction.atomic():
                save_question(question=Question(category="frontend", title="A", answer_md=".", source_key="t:a"))
                first_saved.set()
                second_done.wait(timeout=1)  # the second finishes meanwhile unless it waits for this one
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def second():
        first_saved.wait(timeout=10)
        try:
            save_question(question=Question(category="frontend", title="B", answer_md=".", source_key="t:b"))
        except Exception as exc:
            errors.append(exc)
        finally:
            second_done.set()
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert list(Question.objects.order_by("position").values_list("title", "position")) == [("A", 1), ("B", 2)]


def test_readers_go_on_after_the_last_question_they_got_when_questions_move():
    questions = make_questions("frontend", 5)
    new, middle, done = (make_subscriber(f"{name}@example.org", categories=["frontend"], next_position=position)
                         for name, position in (("new", 1), ("middle", 4), ("done", 6)))  # fmt: skip
    inserted = save_question(
        question=Question(category="frontend", title="Inserted", answer_md=".", source_key="t:ins"), position=1
    )
    assert inserted.position == 1

    def next_title(subscriber):
        cursor = subscriber.subscriptions.get().next_position
        return Question.objects.filter(category="frontend", position__gte=cursor).order_by("position").first()

    # "middle" got questions 1-3: next is still question 4, not question 3 again.
    assert next_title(middle).title == "frontend question 4"
    assert next_title(new).title == "Inserted"  # got nothing yet: starts at the new first
    assert next_title(done) is None  # got all five: still at the end (the sequence wraps)
    # Question 2 moved behind "middle" (who had it): they go on with question 4.
    move_question(question=questions[1], position=6)
    assert next_title(middle).title == "frontend question 4"
    # Question 5 (not had) moved ahead of them: they go on with question 4, and get 5 at the wrap.
    move_question(question=questions[4], position=1)
    assert next_title(middle).title == "frontend question 4"
    assert next_title(new).title == "frontend question 5"  # its cursor stayed 1

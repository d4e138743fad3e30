"""The daily mail: build it for a reader, preview it, test-send it."""

from datetime import date

from django.conf import settings
from django.urls import reverse

from mailer import selectors
from mailer.emails import absolute_url, email_message, personalise, plain_text, render_shared_email
from mailer.gate import MailResult, send_built_email
from mailer.markdown import render_markdown
from mailer.models import Delivery, Question, SendRun
from mailer.sending.runs import send_cutoff
from subscriptions.links import ReaderLinks
from subscriptions.models import Category, Frequency, Subscription


def build_daily_email(
    *,
    subscriber_id: int,
    email: str,
    language: str,
    category: str,
    day: date,
    questions: list[Question],
    connection=None,
    test: bool = False,
    reader_links=None,
    link_generation: int | None = None,
):
    """A reader's mail of `day`: its question(s), links and unsubscribe headers.

    Everything but the reader's own links is rendered once per day, category,
    language and question set (render_shared_email), then personalised. A
    `test` mail (an admin's test send, which goes to another address) carries
    no link that acts on the reader: both go to the landing page, and it has
    no List-Unsubscribe headers. `reader_links` (subscriptions.links.ReaderLinks):
    the links' routes, when a batch has them already; `link_generation`: the
    reader's Subscriber.link_generation, when the batch read it (else it is read).
    """
    shared = render_shared_email(
        "daily_question",
        lambda: daily_email_context(category=category, day=day, questions=questions),
        language=language,
        personal=("manage_url", "unsubscribe_url"),
        key=(category, day, tuple((q.id, q.title, q.question_md) for q in questions)),
    )
    if test:
        landing = absolute_url(reverse("subscriptions:landing"))
        links, headers = {"manage_url": landing, "unsubscribe_url": landing}, {}
    else:
        routed = reader_links or ReaderLinks.routed()
        unsubscribe_link = routed.unsubscribe_url(subscriber_id, category, generation=link_generation)
        links = {
            "manage_url": routed.manage_url(subscriber_id, generation=link_generation),
            "unsubscribe_url": unsubscribe_link,
        }
        headers = {"List-Unsubscribe": f"<{unsubscribe_link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return email_message(personalise(shared, links), to=email, connection=connection, headers=headers)


def daily_email_context(*, category: str, day: date, questions: list[Question]) -> dict:
    """What the daily_question templates get, but the reader's links (manage_url, unsubscribe_url)."""
    return {
        "category": Category(category).label,
        "weekly": len(questions) > 1,
        "day": day,
        "questions": [_mailed_question(q) for q in questions],
    }


def _mailed_question(question: Question) -> dict:
    question_html = render_markdown(question.question_md) if question.question_md else ""
    return {
        "title": question.title,
        "question_html": question_html,
        "question_md": question.question_md,
        "prompt": plain_text(question_html),  # for the inbox preview line
        "url": absolute_url(reverse("mailer:question", args=[question.id])),
    }


def preview_daily_email(*, subscription: Subscription, day: date, test: bool = False):
    """The mail `subscription` would get on `day` (unsent), or None without questions.

    `test`: the form of it a test send carries (see build_daily_email).
    """
    delivery = preview_delivery(subscription=subscription, day=day)
    found = Question.objects.in_bulk(delivery.question_ids)
    questions = [found[i] for i in delivery.question_ids if i in found]
    if not questions:
        return None
    subscriber = subscription.subscriber
    return build_daily_email(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        language=subscriber.language,
        category=subscription.category,
        day=day,
        questions=questions,
        test=test,
    )


def send_test_mail(*, subscription: Subscription, to: str, day: date) -> MailResult:
    """Send `subscription`'s mail of `day` to `to` (an admin's test send), if the gate lets it through.

    The reader's own links (manage, unsubscribe) are not in it: whoever gets
    the test mail must not be able to act on the reader's subscription.
    """

    def build():
        message = preview_daily_email(subscription=subscription, day=day, test=True)
        if message is None:
            raise ValueError("This category has no published questions.")
        message.to = [to]
        message.subject = f"[TEST] {message.subject}"
        return message

    return send_built_email(kind="daily_question", to=to, build=build)


def preview_delivery(*, subscription: Subscription, day: date) -> Delivery:
    """An unsaved delivery holding what `subscription` would get on `day`."""
    count = settings.WEEKLY_DIGEST_SIZE if subscription.subscriber.frequency == Frequency.WEEKLY else 1
    picked = selectors.question_sequences()[subscription.category].next_after(subscription.next_position, count)
    return Delivery(
        run=SendRun(day=day, cutoff=send_cutoff(day)),
        subscription=subscription,
        question_ids=[i for _p, i in picked],
    )

"""The daily mail: build it for a reader, preview it, test-send it."""

from datetime import date

from django.conf import settings
from django.urls import reverse

from mailer import selectors
from mailer.emails import (
    absolute_url,
    email_message,
    personal_marker,
    personalise,
    plain_text,
    render_shared_email,
)
from mailer.gate import MailResult, send_built_email
from mailer.models import Delivery, Question, SendRun
from mailer.sending.runs import send_cutoff
from subscriptions import tracks
from subscriptions.links import ReaderLinks
from subscriptions.models import Frequency, Subscription
from subscriptions.selectors import due_reviews


def build_daily_email(
    *,
    subscriber_id: int,
    email: str,
    language: str,
    category: str,
    day: date,
    questions: list[Question],
    reviews: list[Question] = (),
    subscription_id: int | None = None,
    connection=None,
    test: bool = False,
    reader_links=None,
    link_generation: int | None = None,
):
    """A reader's mail of `day`: its question(s), the reviews below them, links and unsubscribe headers.

    Everything but the reader's own links (manage, unsubscribe, one answer
    link per question and review) is rendered once per day, category,
    language and question set (render_shared_email), then personalised. A
    `test` mail (an admin's test send, which goes to another address) carries
    no link that acts on the reader: all go to the landing page, and it has
    no List-Unsubscribe headers. `reader_links` (subscriptions.links.ReaderLinks):
    the links' routes, when a batch has them already; `link_generation`: the
    reader's Subscriber.link_generation, when the batch read it (else it is read).
    `subscription_id` (the answer links' reader) is needed unless `test`.
    """
    reviews = list(reviews)
    texts = [selectors.question_text(q, language) for q in questions]
    review_texts = [selectors.question_text(q, language) for q in reviews]
    answer_fields = [f"answer_url_{n}" for n in range(len(questions))]
    review_fields = [f"review_url_{n}" for n in range(len(reviews))]
    shared = render_shared_email(
        "daily_question",
        lambda: daily_email_context(
            category=category, day=day, questions=questions, reviews=reviews, language=language
        ),
        language=language,
        personal=("manage_url", "unsubscribe_url", *answer_fields, *review_fields),
        # The text shown (its language and words) of each question and review, not only its id.
        key=(
            category,
            day,
            tuple((q.id, t.language, t.title, t.question_md) for q, t in zip(questions, texts, strict=True)),
            tuple((q.id, t.language, t.title) for q, t in zip(reviews, review_texts, strict=True)),
        ),
    )
    if test:
        landing = absolute_url(reverse("subscriptions:landing"))
        links = dict.fromkeys(("manage_url", "unsubscribe_url", *answer_fields, *review_fields), landing)
        headers = {}
    else:
        if subscription_id is None:
            raise ValueError("A reader's mail needs the subscription its answer links are for.")
        routed = reader_links or ReaderLinks.routed()
        unsubscribe_link = routed.unsubscribe_url(subscriber_id, category, generation=link_generation)
        links = {
            "manage_url": routed.manage_url(subscriber_id, generation=link_generation),
            "unsubscribe_url": unsubscribe_link,
        }
        for field, question in zip([*answer_fields, *review_fields], [*questions, *reviews], strict=True):
            links[field] = routed.answer_url(subscription_id, question.id, generation=link_generation)
        headers = {"List-Unsubscribe": f"<{unsubscribe_link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return email_message(personalise(shared, links), to=email, connection=connection, headers=headers)


def daily_email_context(
    *, category: str, day: date, questions: list[Question], reviews: list[Question] = (), language: str = "ko"
) -> dict:
    """What the daily_question templates get, but the reader's links (manage, unsubscribe, answer links)."""
    mailed = [_mailed_question(q, language, f"answer_url_{n}") for n, q in enumerate(questions)]
    reviewed = [_mailed_question(q, language, f"review_url_{n}") for n, q in enumerate(reviews)]
    return {
        "category": tracks.label(category),
        "weekly": len(questions) > 1,
        "day": day,
        "questions": mailed,
        "reviews": reviewed,
        # One note for the mail when any question is shown in the other language.
        "fell_back_to": next((q["lang"] for q in [*mailed, *reviewed] if q["fell_back"]), None),
    }


def _mailed_question(question: Question, language: str, link_field: str) -> dict:
    text = selectors.question_text(question, language)
    question_html = text.question_html
    return {
        "title": text.title,
        "lang": text.language,
        "fell_back": text.fell_back,
        "question_html": question_html,
        "question_md": text.question_md,
        "prompt": plain_text(question_html),  # for the inbox preview line
        "url": absolute_url(reverse("mailer:question", args=[question.id])),
        "answer_url": personal_marker(link_field),  # this reader's answer link, filled in by personalise()
    }


def preview_daily_email(*, subscription: Subscription, day: date, test: bool = False):
    """The mail `subscription` would get on `day` (unsent), or None without questions.

    `test`: the form of it a test send carries (see build_daily_email).
    """
    delivery = preview_delivery(subscription=subscription, day=day)
    found = Question.objects.in_bulk([*delivery.question_ids, *delivery.review_question_ids])
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
        reviews=[found[i] for i in delivery.review_question_ids if i in found],
        subscription_id=subscription.id,
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
    picked = [
        i
        for _p, i in selectors.question_sequences()[subscription.category].next_after(subscription.next_position, count)
    ]
    due = due_reviews(subscription_ids=[subscription.id], day=day, excluding=picked).get(subscription.id, [])
    return Delivery(
        run=SendRun(day=day, cutoff=send_cutoff(day)),
        subscription=subscription,
        question_ids=picked,
        review_question_ids=due if count > 1 else due[:1],
    )

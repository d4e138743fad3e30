"""Text that reaches a mail header: question titles become the daily mail's
subject, and the admin's test-send form names a recipient. Whatever they hold,
the mail has one recipient, a one-line subject and no smuggled header."""

from email.utils import getaddresses

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from mailer.emails import _PLAIN_ADDRESS, SUBJECT_MAX_LENGTH
from mailer.models import Question
from mailer.sending.daily_email import build_daily_email
from tests.factories import make_questions, make_subscriber
from tests.properties.strategies import (
    INJECTIONS,
    LINE_BREAKING_CONTROLS,
    assert_mail_is_safe,
    emails,
    fuzz,
    is_valid_email,
    unique,
)

pytestmark = pytest.mark.django_db

LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
header_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=80),
    st.builds(lambda a, b, c: a + b + c, st.text(max_size=20), st.sampled_from(INJECTIONS), st.text(max_size=20)),
    st.text(st.sampled_from(LINE_BREAKS + "ab: "), max_size=30),
    st.just("가" * 300),
)


@fuzz(60)
@given(
    titles=st.lists(header_text, min_size=1, max_size=5),
    question_md=header_text,
    category=st.sampled_from(["backend", "frontend"]),
    language=st.sampled_from(["ko", "en"]),
)
@example(titles=["Subject\r\nBcc: evil@evil.example"], question_md="", category="backend", language="en")
@example(titles=["a\x0bBcc: evil@evil.example"], question_md="x", category="frontend", language="ko")
def test_question_titles_never_break_out_of_the_subject(titles, question_md, category, language):
    subscriber = make_subscriber(f"{unique('h')}@example.org", categories=[category], language=language)
    questions = [
        Question(id=n, category=category, position=n, title=title, question_md=question_md, answer_md="a")
        for n, title in enumerate(titles, start=1)
    ]
    message = build_daily_email(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        language=subscriber.language,
        category=category,
        day=timezone.localdate(),
        questions=questions,
        subscription_id=subscriber.subscriptions.get().id,
    )

    assert_mail_is_safe(message, subscriber.email)
    assert 0 < len(message.subject) <= SUBJECT_MAX_LENGTH
    assert not any(char in message.subject for char in LINE_BREAKS)
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")


@pytest.mark.django_db(transaction=True)
@fuzz(25)
@given(to=st.one_of(emails, st.builds(lambda a, b: a + b, emails, st.sampled_from([", evil@evil.example", ";x@y.z"]))))
@example(to="admin@example.org")
@example(to="admin@example.org\r\nBcc: evil@evil.example")
def test_admin_test_send_mails_only_the_one_address_typed(admin_client, to):
    Question.objects.all().delete()
    subscriber = make_subscriber(f"{unique('h')}@example.org")
    make_questions("backend", 1)
    mail.outbox.clear()
    url = reverse("admin:mailer_preview", args=[subscriber.subscriptions.get().id])

    response = admin_client.post(url, {"to": to})

    assert response.status_code in {200, 302}
    mailable = is_valid_email(to.strip()) and not any(char in to for char in LINE_BREAKING_CONTROLS)
    assert len(mail.outbox) == (1 if mailable else 0)
    for message in mail.outbox:
        assert_mail_is_safe(message, to.strip())
        assert message.subject.startswith("[TEST] ")


@given(address=st.from_regex(_PLAIN_ADDRESS, fullmatch=True))
def test_an_address_the_quick_check_passes_is_one_address_to_the_parser(address):
    # _check_recipient skips parsing these: getaddresses must read each as
    # exactly the one address it is, as the full check requires.
    [(_name, parsed)] = getaddresses([address])
    assert parsed == address and "@" in parsed

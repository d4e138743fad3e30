"""The one email module: rendering, building, links.

The tests render a small mail ("sample") written into a temporary template
folder that is put in front of the project's templates, so they exercise the
real base layout (templates/emails/base.html) without shipping test templates.
"""

import copy
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailer.emails import SUBJECT_MAX_LENGTH, absolute_url, build_email, render_email
from tests.mailer.mail_samples import answer_links

SAMPLE = {
    "subject.txt": '{% load i18n %}{% translate "January" %}: {{ title }}\n',
    "body.txt": (
        '{% extends "emails/base.txt" %}{% load i18n %}{% block content %}'
        "{% get_current_language as lang %}lang={{ lang }}\n"
        "{{ title }}\n"
        "{{ site_name }} {{ site_url }}\n"
        "{% endblock %}"
    ),
    "body.html": (
        '{% extends "emails/base.html" %}'
        "{% block preheader %}{{ title }}{% endblock %}"
        "{% block content %}"
        "<h1>{{ title }}</h1>"
        '{% include "emails/button.html" with url=link label="Read" %}'
        '<p class="code">123456</p>'
        "{% endblock %}"
    ),
}


@pytest.fixture(autouse=True)
def sample_templates(tmp_path: Path, settings):
    folder = tmp_path / "emails" / "sample"
    folder.mkdir(parents=True)
    for filename, source in SAMPLE.items():
        (folder / filename).write_text(source, encoding="utf-8")
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [tmp_path, *templates[0]["DIRS"]]
    # Assigning through the fixture sends setting_changed, which resets the template engines.
    settings.TEMPLATES = templates
    settings.SITE_URL = "https://dailyq.example"
    settings.DEFAULT_FROM_EMAIL = "DailyQ <dailyq@dailyq.example>"


def context(**overrides):
    return {"title": "Caching", "link": "https://dailyq.example/q/1/", **overrides}


class Elements(HTMLParser):
    """Start tags of an HTML document as (tag, attributes) pairs."""

    def __init__(self, html: str):
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.style_blocks: list[str] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style_blocks.append(data)

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.found if name in (attrs.get("class") or "").split()]

    def tags(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for found, attrs in self.found if found == tag]


def parts(message) -> dict[str, str]:
    mime = message.message()
    return {
        part.get_content_type(): part.get_payload(decode=True).decode(part.get_content_charset())
        for part in mime.walk()
        if not part.is_multipart()
    }


# --- Subject -----------------------------------------------------------------------


@pytest.mark.parametrize("injected", ["\r\nBcc: x@y", "\nBcc: x@y", "\rBcc: x@y", "\u2028Bcc: x@y", "\x00Bcc: x@y"])
def test_subject_stays_one_line_when_context_injects_a_header(injected):
    rendered = render_email("sample", context(title=f"Hi{injected}"), language="en")

    assert rendered.subject == "January: Hi Bcc: x@y"
    assert not re.search(r"[\r\n\x00\u2028]", rendered.subject)


def test_injected_header_in_subject_adds_no_header_or_recipient():
    message = build_email("sample", to="reader@example.org", context=context(title="Hi\r\nBcc: x@y"), language="en")

    mime = message.message()
    assert mime["Bcc"] is None
    assert message.recipients() == ["reader@example.org"]
    assert "\n" not in mime["Subject"] and "\r" not in mime["Subject"]


def test_long_subject_is_capped():
    rendered = render_email("sample", context(title="x" * 1000), language="en")

    assert len(rendered.subject) == SUBJECT_MAX_LENGTH
    assert rendered.subject.startswith("January: xxx")
    assert rendered.subject.endswith("…")


# --- Text and HTML parts -----------------------------------------------------------------


def test_text_part_keeps_markup_characters_while_html_part_escapes_them():
    rendered = render_email("sample", context(title='Tom & Jerry <script>"'), language="en")

    assert 'Tom & Jerry <script>"' in rendered.text
    assert 'Tom & Jerry <script>"' in rendered.subject
    assert "Tom &amp; Jerry &lt;script&gt;" in rendered.html
    assert "<script" not in rendered.html


def test_css_of_the_base_layout_is_inlined():
    html = render_email("sample", context(), language="en").html
    elements = Elements(html)

    [button] = elements.with_class("button")
    assert button["href"] == "https://dailyq.example/q/1/"
    assert "background-color: #2563eb" in button["style"]
    [code] = elements.with_class("code")
    assert "font-size: 32px" in code["style"]
    [body] = elements.tags("body")
    assert "Apple SD Gothic Neo" in body["style"]
    assert "Malgun Gothic" in body["style"]
    assert "Noto Sans KR" in body["style"]


def test_only_media_queries_stay_in_a_style_block_and_nothing_external_is_referenced():
    elements = Elements(render_email("sample", context(), language="en").html)

    css = "".join(elements.style_blocks)
    assert "@media" in css
    assert ".button" not in css.split("@media", 1)[0]
    assert elements.tags("link") == []
    assert elements.tags("script") == []
    assert elements.tags("img") == []


def test_html_uses_the_base_layout():
    elements = Elements(render_email("sample", context(title="Caching"), language="en").html)

    assert elements.tags("table")[0]["role"] == "presentation"
    assert [attrs["content"] for attrs in elements.tags("meta") if attrs.get("name") == "viewport"]
    assert any(attrs.get("charset") == "utf-8" for attrs in elements.tags("meta"))
    [preheader] = elements.with_class("preheader")
    assert "display: none" in preheader["style"]


def test_default_footer_says_why_and_links_unsubscribe_when_given():
    plain = render_email("sample", context(), language="en")
    subscribed = render_email("sample", context(unsubscribe_url=absolute_url("/unsubscribe/abc/")), language="en")

    assert "this address was entered on DailyQ" in plain.html
    assert "this address was entered on DailyQ" in plain.text
    assert "unsubscribe" not in plain.text.lower()
    assert "you subscribed to DailyQ" in subscribed.html
    assert 'href="https://dailyq.example/unsubscribe/abc/"' in subscribed.html
    assert "https://dailyq.example/unsubscribe/abc/" in subscribed.text


def test_site_url_and_name_are_in_every_context_and_callers_keys_win():
    default = render_email("sample", context(), language="en")
    overridden = render_email("sample", context(site_name="Other"), language="en")

    assert "DailyQ https://dailyq.example" in default.text
    assert "Other https://dailyq.example" in overridden.text


# --- Language ------------------------------------------------------------------------


def test_mail_is_rendered_in_the_given_language():
    english = render_email("sample", context(), language="en")
    korean = render_email("sample", context(), language="ko")

    assert '<html lang="en">' in english.html
    assert '<html lang="ko">' in korean.html
    assert "lang=en" in english.text
    assert "lang=ko" in korean.text
    # "January" is in Django's own Korean catalog.
    assert english.subject == "January: Caching"
    assert korean.subject == "1월: Caching"


def test_rendering_does_not_change_the_active_language():
    from django.utils import translation

    with translation.override("en"):
        render_email("sample", context(), language="ko")
        assert translation.get_language() == "en"


def test_unsupported_language_is_refused():
    with pytest.raises(ValueError, match="language"):
        render_email("sample", context(), language="xx")


# --- The message ---------------------------------------------------------------------


def test_message_is_multipart_alternative_with_text_and_html():
    message = build_email("sample", to="reader@example.org", context=context(title="A & B"), language="ko")

    mime = message.message()
    assert mime.get_content_type() == "multipart/alternative"
    found = parts(message)
    assert set(found) == {"text/plain", "text/html"}
    assert "A & B" in found["text/plain"]
    assert "A &amp; B" in found["text/html"]
    assert mime["From"] == "DailyQ <dailyq@dailyq.example>"
    assert mime["To"] == "reader@example.org"


def test_headers_are_added_to_the_message():
    message = build_email(
        "sample",
        to="reader@example.org",
        context=context(),
        language="en",
        headers={"List-Unsubscribe": "<https://dailyq.example/u/abc/>", "X-DailyQ-Kind": "sample"},
    )

    mime = message.message()
    assert mime["List-Unsubscribe"] == "<https://dailyq.example/u/abc/>"
    assert mime["X-DailyQ-Kind"] == "sample"


@pytest.mark.parametrize("value", ["a\r\nBcc: x@y", "a\nBcc: x@y", "a\rBcc: x@y"])
def test_header_value_with_a_line_break_is_refused(value):
    with pytest.raises(ValueError, match="X-Tag"):
        build_email("sample", to="reader@example.org", context=context(), language="en", headers={"X-Tag": value})


@pytest.mark.parametrize("name", ["Bcc", "to", "From", "Subject", "X Tag", "X-Tag:", "X-\nTag"])
def test_reserved_or_malformed_header_names_are_refused(name):
    with pytest.raises(ValueError):
        build_email("sample", to="reader@example.org", context=context(), language="en", headers={name: "v"})


@pytest.mark.parametrize("to", ["a@example.org, b@example.org", "a@example.org\r\nBcc: b@example.org", "nobody", ""])
def test_message_goes_to_exactly_one_address(to):
    with pytest.raises(ValueError):
        build_email("sample", to=to, context=context(), language="en")


def test_each_call_builds_a_new_message():
    headers = {"X-Tag": "one"}
    first = build_email("sample", to="a@example.org", context=context(), language="en", headers=headers)
    second = build_email("sample", to="b@example.org", context=context(), language="en", headers=headers)

    first.extra_headers["X-Tag"] = "changed"
    assert second.extra_headers["X-Tag"] == "one"
    assert headers == {"X-Tag": "one"}
    assert first.to == ["a@example.org"]
    assert second.to == ["b@example.org"]


def test_built_message_is_sent_to_the_outbox(mailoutbox):
    build_email("sample", to="reader@example.org", context=context(title="Caching"), language="ko").send()

    [sent] = mailoutbox
    assert sent.subject == "1월: Caching"
    assert sent.to == ["reader@example.org"]
    assert sent.from_email == "DailyQ <dailyq@dailyq.example>"
    [(html, mimetype)] = sent.alternatives
    assert mimetype == "text/html"
    assert '<html lang="ko">' in html


# --- Links -----------------------------------------------------------------------------


def test_absolute_url_is_built_on_site_url(settings):
    assert absolute_url("/manage/abc/") == "https://dailyq.example/manage/abc/"
    assert absolute_url("/q/1/?utm=mail#answer") == "https://dailyq.example/q/1/?utm=mail#answer"

    settings.SITE_URL = "http://127.0.0.1:8000/"
    assert absolute_url("/manage/abc/") == "http://127.0.0.1:8000/manage/abc/"


@pytest.mark.parametrize(
    "bad",
    [
        "//evil.example",
        "//evil.example/x",
        "https://evil.example/x",
        "http://dailyq.example/x",
        "javascript:alert(1)",
        "manage/abc/",
        "evil.example/x",
        "",
        "/\\evil.example",
        "/manage/\r\nabc/",
        "/manage/ abc/",
        "/manage/\u2028abc/",  # a Unicode line separator
        "/manage/\x85abc/",  # a C1 control character
    ],
)
def test_absolute_url_refuses_anything_but_a_site_path(bad):
    with pytest.raises(ValueError):
        absolute_url(bad)


# --- Shared renders ----------------------------------------------------------------


def test_personalise_fills_each_marker_escaped_for_html_and_as_is_in_text():
    from mailer.emails import personalise, render_shared_email

    shared = render_shared_email("sample", lambda: context(), language="en", personal=("link",), key="test-personalise")
    filled = personalise(shared, {"link": "https://dailyq.example/m/a&b/"})
    direct = render_email("sample", context(link="https://dailyq.example/m/a&b/"), language="en")
    assert filled == direct
    assert 'href="https://dailyq.example/m/a&amp;b/"' in filled.html


@pytest.mark.parametrize("value", ["https://x.example/\nBcc: a@b", "https://x.example/ a", "https://x\x00", 42])
def test_personalise_refuses_values_that_could_break_out(value):
    from mailer.emails import personalise, render_shared_email

    shared = render_shared_email("sample", lambda: context(), language="en", personal=("link",), key="test-refuse")
    with pytest.raises(ValueError):
        personalise(shared, {"link": value})


def test_personalise_refuses_to_leave_a_marker_unfilled():
    from mailer.emails import personalise, render_shared_email

    shared = render_shared_email("sample", lambda: context(), language="en", personal=("link",), key="test-unfilled")
    with pytest.raises(ValueError, match="unfilled"):
        personalise(shared, {})


def test_personalise_refuses_a_render_that_cut_a_marker():
    from mailer.emails import _MARKER, RenderedEmail, SharedEmail, _split_at_markers, personalise

    # A subject cut at its length limit can end in part of a marker.
    cut = RenderedEmail(subject=f"Hello {_MARKER}li", text=f"Go to {_MARKER}link-", html="")
    shared = SharedEmail(**vars(cut), pieces=_split_at_markers(cut, ("link",)))
    with pytest.raises(ValueError, match="unfilled"):
        personalise(shared, {"link": "https://dailyq.example/m/a/"})


def test_shared_render_is_made_once_per_key_and_language():
    from mailer.emails import render_shared_email

    calls = []

    def make():
        calls.append(1)
        return context()

    for _ in range(3):
        render_shared_email("sample", make, language="en", personal=("link",), key="test-once")
    render_shared_email("sample", make, language="ko", personal=("link",), key="test-once")
    render_shared_email("sample", make, language="en", personal=("link",), key="test-once-other")
    assert len(calls) == 3


# --- Every mail DailyQ sends ---------------------------------------------------------

# What a text part must never show: a Python list or object, markup, escaped
# markup, an unrendered template variable, a missing value.
NOT_PROSE = re.compile(r"\['|\[\"|<|>|&lt;|&gt;|&amp;|&#|\{\{|\{%|\bNone\b|__proxy__|object at 0x")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("language", ["ko", "en"])
def test_every_text_part_reads_as_prose(language, eager_tasks, settings):
    from tests.mailer.mail_samples import KINDS, every_mail

    mails = every_mail(language=language, settings=settings)

    assert set(mails) == set(KINDS)
    not_prose = [
        f"{kind}: {line!r}"
        for kind, message in mails.items()
        for line in [message.subject, *parts(message)["text/plain"].splitlines()]
        if NOT_PROSE.search(line)
    ]
    assert not_prose == []


@pytest.fixture
def mails_en(transactional_db, eager_tasks, settings):
    from tests.mailer.mail_samples import every_mail

    return every_mail(language="en", settings=settings)


def preheader_of(message) -> str:
    [(html, _mimetype)] = message.alternatives
    return re.search(r'<div class="preheader"[^>]*>(.*?)</div>', html, flags=re.S).group(1).strip()


def test_the_preview_line_of_a_readers_mail_does_not_repeat_its_subject(mails_en):
    for kind in ("daily", "weekly"):
        message = mails_en[kind]
        topic = message.subject.split("] ", 1)[1]  # the subject after "[DailyQ Backend] "
        preheader = preheader_of(message)
        assert preheader, kind
        assert topic not in preheader and preheader not in message.subject, (kind, message.subject, preheader)


def test_the_daily_mail_says_think_first_before_the_answer_link(mails_en):
    message = mails_en["daily"]
    [(html, _mimetype)] = message.alternatives
    [answer] = answer_links(message.body)  # the reader's own answer page, not the public answer

    assert html.index("Think it through first") < html.index(f'href="{answer}"')
    assert message.body.index("Think it through") < message.body.index(answer)


def test_the_weekly_digest_links_each_title_once_with_at_most_one_button(mails_en):
    from tests.mailer.mail_samples import digest_questions

    [(html, _mimetype)] = mails_en["weekly"].alternatives
    elements = Elements(html)
    questions = digest_questions()
    assert len(questions) == 5
    html_links = {question: url for url, (_s, question) in answer_links(html.replace("&amp;", "&")).items()}
    text_links = {question: url for url, (_s, question) in answer_links(mails_en["weekly"].body).items()}
    for title, question in questions:
        url = html_links[question]
        assert html.count(f'href="{url}"') <= 2  # the title, and the one button for the first question
        anchor = re.search(rf'<a [^>]*href="{re.escape(url)}"[^>]*>([^<]*)</a>', html)
        assert anchor and unescape(anchor.group(1)) == title, title
        assert title in mails_en["weekly"].body and question in text_links
    assert len(elements.with_class("button")) <= 1


def test_admin_mails_carry_an_admins_footer_not_a_subscribers(mails_en):
    for kind in ("run_report", "sending_paused"):
        message = mails_en[kind]
        [(html, _mimetype)] = message.alternatives
        for part in (message.body, html):
            assert "this address was entered on" not in part, kind
            assert "you subscribed to" not in part, kind
            assert "ADMINS" in part, kind
        assert "List-Unsubscribe" not in message.extra_headers


def test_the_run_report_shows_its_duration_to_the_second(mails_en):
    message = mails_en["run_report"]
    [(html, _mimetype)] = message.alternatives

    for part in (message.body, html):
        assert "0:02:05" in part
        assert not re.search(r"\d:\d\d:\d\d\.\d", part)
    assert "Fate unknown: 1" in message.body
    assert "1 \u00d7 MessageRejected: Email address is not verified." in message.body


def test_korean_questions_in_an_english_mail_are_marked_korean(mails_en):
    """Screen readers switch voice on lang: the questions are Korean, the mail around them English."""
    from html.parser import HTMLParser

    class KoreanText(HTMLParser):
        def __init__(self):
            super().__init__()
            self.langs, self.unmarked = [], []

        def handle_starttag(self, tag, attrs):
            if tag not in {"br", "img", "meta", "hr", "link", "input"}:
                self.langs.append(dict(attrs).get("lang"))

        def handle_endtag(self, tag):
            if self.langs and tag not in {"br", "img", "meta", "hr", "link", "input"}:
                self.langs.pop()

        def handle_data(self, data):
            inner = next((lang for lang in reversed(self.langs) if lang), None)
            if re.search(r"[\uac00-\ud7a3]", data) and inner != "ko":
                self.unmarked.append(data.strip())

    for kind in ("daily", "weekly"):
        [(html, _mimetype)] = mails_en[kind].alternatives
        body = html.split("<body", 1)[1]
        parser = KoreanText()
        parser.feed("<body" + body)
        assert parser.unmarked == [], kind

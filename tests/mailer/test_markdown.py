"""render_markdown: GitHub's reading of <details>, images, what is stripped, and bounded work."""

import re

import pytest
from django.urls import reverse

from mailer.markdown import MAX_MARKDOWN_CHARS, list_markdown_changes, render_markdown
from mailer.models import Question
from tests.factories import make_questions


def test_markdown_renders_code_tables_and_details():
    html = render_markdown(
        "**bold**\n\n```python\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "<details><summary>꼬리 질문</summary>\n\n- **follow** up\n\n</details>\n"
    )
    assert "<strong>bold</strong>" in html
    assert '<code class="language-python">' in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<details>" in html and "<summary>꼬리 질문</summary>" in html
    assert "<strong>follow</strong>" in html  # Markdown inside <details> is rendered too


def test_dangerous_html_never_survives():
    html = render_markdown(
        "<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n<img src=x onerror=alert(1)>\n\n"
        '<a href="https://ok.example" onclick="steal()">ok</a>\n\n<style>body{display:none}</style>\n\n'
        "<iframe src=https://evil.example></iframe>"
    )
    for needle in ["<script", "javascript:", "onerror", "onclick", "<style", "<iframe", "<img"]:
        assert needle not in html
    assert 'href="https://ok.example"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


# --- <details> as GitHub reads it ---------------------------------------------------


@pytest.mark.parametrize("indent", [0, 2, 4, 8])
def test_indented_summary_inside_details_is_a_summary_not_code(indent):
    html = render_markdown(
        f"코드를 실행해 보세요.\n\n<details>\n{' ' * indent}<summary>답변 보기</summary>\n\n"
        "**답:** `a unchanged`\n\n- 첫째\n- 둘째\n\n</details>\n"
    )
    assert "<summary>답변 보기</summary>" in html
    assert "&lt;summary&gt;" not in html and "<pre>" not in html
    assert "<strong>답:</strong>" in html and "<li>둘째</li>" in html


def test_summary_after_a_blank_line_and_four_spaces_is_code_as_on_github():
    # A blank line ends GitHub's HTML block; four spaces after it start a code block.
    html = render_markdown("<details>\n\n    <summary>x</summary>\n\nanswer\n\n</details>\n")
    assert "<pre><code>&lt;summary&gt;x&lt;/summary&gt;" in html


def test_details_inside_a_code_block_stay_code():
    html = render_markdown("```html\n<details>\n    <summary>Click</summary>\n</details>\n```\n")
    assert "&lt;details&gt;" in html and "&lt;summary&gt;" in html
    assert "markdown=" not in html and "<details>" not in html


def test_details_keep_the_open_attribute():
    html = render_markdown("<details open>\n<summary>Q</summary>\n\nA\n\n</details>\n")
    assert "<details open" in html


# --- Images -------------------------------------------------------------------------


def test_https_images_are_shown_lazily_with_their_alt_text():
    html = render_markdown("![TCP 3-way handshake](https://images.example/tcp.png)\n")
    [tag] = re.findall(r"<img [^>]*>", html)
    for attribute in ['src="https://images.example/tcp.png"', 'alt="TCP 3-way handshake"', 'loading="lazy"']:
        assert attribute in tag


@pytest.mark.parametrize(
    "source",
    [
        '<img src="https://images.example/a.png" width="600">',
        '<img src="https://images.example/a.png" alt="" width="600">',
        "![](https://images.example/a.png)",
    ],
)
def test_an_image_without_alt_text_gets_one(source):
    html = render_markdown(source + "\n")
    assert 'src="https://images.example/a.png"' in html and 'loading="lazy"' in html
    assert 'alt=""' not in html and " alt=" in html


@pytest.mark.parametrize(
    "source",
    [
        "![x](http://images.example/a.png)",
        "![x](images/a.png)",
        "![x](/media/a.png)",
        "![x](//images.example/a.png)",
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        "![x](javascript:alert(1))",
        '<img src="https://images.example/a.png" onerror="alert(1)" alt="x">',
    ],
)
def test_images_that_cannot_be_shown_safely_are_dropped_or_defused(source):
    html = render_markdown(source + "\n")
    if "<img" in html:
        assert 'src="https://images.example/a.png"' in html and "onerror" not in html
    else:
        assert "src=" not in html


# --- Links that point nowhere on this site -----------------------------------------


def test_relative_links_lose_their_target_and_keep_their_text():
    html = render_markdown("[다음 질문](contents/be-2.md), [위](#top), [보관함](/archive/backend/)\n")
    assert "다음 질문" in html and "contents/be-2.md" not in html
    assert "<a>" not in html and "<a rel" not in html  # plain text, not a link that goes nowhere
    assert 'href="#top"' in html and 'href="/archive/backend/"' in html


# --- What rendering changes, said out loud --------------------------------------------


def test_a_plain_answer_is_shown_as_written():
    text = "**ACID**: [위키](https://ko.wikipedia.org/wiki/ACID)\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n"
    assert list_markdown_changes(text) == []


def test_every_change_rendering_makes_is_listed():
    text = (
        "<script>alert(1)</script>\n\n"
        "![diagram](https://images.example/a.png)\n\n"
        "![old](http://images.example/b.png)\n\n"
        '<img src="https://images.example/c.png">\n\n'
        "[next](contents/be-2.md)\n\n"
        '<a href="javascript:alert(1)">x</a>\n\n'
        '<p onclick="steal()">p</p>\n\n'
        "<iframe src=https://evil.example></iframe>\n"
    )
    changes = "\n".join(list_markdown_changes(text))
    for expected in [
        "<script> removed",
        "<iframe> removed",
        "image https://images.example/a.png shown from images.example",
        "image http://images.example/b.png removed",
        "image https://images.example/c.png has no alt text",
        "link contents/be-2.md removed",
        "link javascript:alert(1) removed",
        "attribute onclick removed from <p>",
    ]:
        assert expected in changes, changes


# --- Bounded work ------------------------------------------------------------------

ATTACKS = ["[", "[a](", "[a](b)", " [a](", "[a](<", "![", "[x][", "<a", "<http://", "***a", "<details>\n"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("unit", ATTACKS)
def test_the_largest_answer_allowed_renders_in_bounded_time_whatever_it_holds(unit):
    """Python-Markdown scanned from every `[` or `(` to the end of the paragraph.

    At the size bound this took close to a minute (unclosed `[` on Markdown
    3.11.3, `[a](b)` repeated on 3.11.4); now under a second here. The timeout
    leaves a wide margin for a slow machine: it only catches the quadratic.
    """
    text = (unit * (MAX_MARKDOWN_CHARS // len(unit) + 1))[:MAX_MARKDOWN_CHARS]
    assert len(text) == MAX_MARKDOWN_CHARS
    render_markdown(text)


def test_link_text_and_targets_of_ordinary_length_are_still_links():
    label = "가" * 900
    target = "https://example.org/" + "a" * 1900
    html = render_markdown(f"[{label}]({target})\n")
    assert f'<a href="{target}"' in html and label in html


@pytest.mark.timeout(30)
def test_text_over_the_bound_is_shown_as_plain_text_and_nothing_is_lost():
    text = "**not bold** [a](" * (MAX_MARKDOWN_CHARS // 10) + "<script>x</script>"
    assert len(text) > MAX_MARKDOWN_CHARS
    html = render_markdown(text)
    assert "<strong>" not in html and "<script>" not in html
    assert html.count("**not bold** [a](") == MAX_MARKDOWN_CHARS // 10
    assert list_markdown_changes(text) == [
        f"longer than {MAX_MARKDOWN_CHARS:,} characters: shown as plain text, not Markdown"
    ]


@pytest.mark.django_db
def test_admin_form_refuses_a_too_large_answer_and_keeps_what_was_typed(admin_client):
    [question] = make_questions("backend", 1)
    url = reverse("admin:mailer_question_change", args=[question.pk])
    too_long = "긴 답변 " * (MAX_MARKDOWN_CHARS // 5 + 1)
    data = {
        "category": "backend",
        "move_to": "1",
        "title": "Q",
        "question_md": "",
        "answer_md": too_long,
        "is_published": "on",
        "source_key": question.source_key,
    }
    response = admin_client.post(url, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "answer_md" in errors and f"{MAX_MARKDOWN_CHARS:,}" in str(errors["answer_md"]).replace(" ", "")
    page = response.content.decode()
    assert too_long.strip() in page  # the text is still in the form
    [textarea] = re.findall(r'<textarea name="answer_md"[^>]*>', page)
    assert "maxlength" not in textarea  # a browser never cuts a paste short
    assert Question.objects.get(pk=question.pk).answer_md == question.answer_md

"""Questions in Korean and English: the text a reader of a language gets, the
pages in both languages, the English starter bank and `import_questions --language`."""

import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from mailer.models import Question
from mailer.question_files import read_question_folder
from mailer.questions import STARTER_QUESTIONS_DIR, import_questions, load_starter_questions
from mailer.selectors import question_text
from tests.factories import make_questions

pytestmark = pytest.mark.django_db

KOREAN_NOTE = "This question has no English version yet, so it is shown in Korean."


def bilingual(position: int = 1, **fields) -> Question:
    values = {
        "category": "backend",
        "position": position,
        "title": f"질문 {position}?",
        "question_md": "자세히 **설명**하세요.",
        "answer_md": f"한국어 답 {position}.",
        "title_en": f"Question {position}?",
        "question_md_en": "Explain it in **detail**.",
        "answer_md_en": f"English answer {position}.",
        "source_key": f"test:{position}",
        **fields,
    }
    return Question.objects.create(**values)


# --- question_text: one rule for which text a reader gets ----------------------------


def test_an_english_reader_gets_the_english_text():
    text = question_text(bilingual(), "en")
    assert (text.language, text.title, text.answer_md) == ("en", "Question 1?", "English answer 1.")
    assert not text.fell_back
    assert "<strong>detail</strong>" in text.question_html
    assert "English answer 1." in text.answer_html


@pytest.mark.parametrize("language", ["ko", "ko-kr", "fr", "", None])
def test_everyone_else_gets_the_korean_text(language):
    text = question_text(bilingual(), language)
    assert (text.language, text.title, text.answer_md, text.fell_back) == ("ko", "질문 1?", "한국어 답 1.", False)


@pytest.mark.parametrize("language", ["en", "en-US", "EN-gb"])
def test_english_is_recognised_in_any_regional_spelling(language):
    assert question_text(bilingual(), language).language == "en"


def test_an_english_reader_falls_back_to_korean_where_no_english_exists():
    [question] = make_questions("backend", 1)
    text = question_text(question, "en")
    assert (text.language, text.title, text.fell_back) == ("ko", "backend question 1", True)
    assert "topic 1" in text.question_html


def test_a_korean_reader_falls_back_to_english_for_an_english_only_question():
    question = bilingual(title="", question_md="", answer_md="")
    text = question_text(question, "ko")
    assert (text.language, text.title, text.fell_back) == ("en", "Question 1?", True)


def test_a_question_without_details_renders_none():
    assert question_text(bilingual(question_md_en=""), "en").question_html == ""


@pytest.mark.parametrize(
    "fields",
    [
        {"answer_md_en": ""},  # an English title without an answer
        {"title_en": ""},  # an English answer without a title
        {"title": "", "question_md": "", "answer_md": "답만?", "title_en": "Q?"},  # a Korean answer without title
        {"title": "", "question_md": "", "answer_md": "", "title_en": "", "question_md_en": "", "answer_md_en": ""},
    ],
)
def test_the_database_refuses_a_question_with_half_a_language_or_no_text(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        bilingual(**fields)


def test_the_admin_form_says_what_is_missing_instead_of_failing(admin_client):
    data = {
        "category": "backend",
        "title": "질문?",
        "answer_md": "답.",
        "title_en": "Question?",
        "answer_md_en": "",
        "is_published": "on",
    }
    response = admin_client.post(reverse("admin:mailer_question_add"), data)
    assert response.status_code == 200
    assert "영어 텍스트에는 제목과 답변이 모두 있거나 둘 다 없어야 합니다." in response.content.decode()
    assert not Question.objects.exists()

    response = admin_client.post(reverse("admin:mailer_question_add"), {**data, "answer_md_en": "Answer."})
    assert response.status_code == 302
    assert Question.objects.get().answer_md_en == "Answer."


def test_the_admin_lists_an_english_only_question_by_its_english_title(admin_client):
    question = bilingual(title="", question_md="", answer_md="")
    page = admin_client.get(reverse("admin:mailer_question_changelist")).content.decode()
    change_url = reverse("admin:mailer_question_change", args=[question.pk])
    assert re.search(rf'<a href="{re.escape(change_url)}[^"]*">Question 1\?</a>', page)


# --- The pages, in both languages -------------------------------------------------------


def test_question_page_is_in_english_for_an_english_browser(client):
    question = bilingual()
    page = client.get(reverse("mailer:question", args=[question.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<h1 lang="en">Question 1?</h1>' in page
    assert '<article class="prose card answer" lang="en"><p>English answer 1.</p>' in page
    assert "<strong>detail</strong>" in page
    assert "질문 1?" not in page and "한국어 답" not in page
    assert 'id="text-language"' not in page


def test_question_page_is_in_korean_by_default_even_with_english_text(client):
    question = bilingual()
    page = client.get(reverse("mailer:question", args=[question.pk])).content.decode()
    assert '<h1 lang="ko">질문 1?</h1>' in page and "한국어 답 1." in page
    assert "English answer" not in page and 'id="text-language"' not in page


def test_question_page_follows_the_language_cookie(client, settings):
    question = bilingual()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("mailer:question", args=[question.pk]), HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert '<h1 lang="en">Question 1?</h1>' in page


def test_english_page_of_a_korean_only_question_says_it_falls_back(client):
    [question] = make_questions("backend", 1)
    page = client.get(reverse("mailer:question", args=[question.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<h1 lang="ko">backend question 1</h1>' in page
    assert page.count(KOREAN_NOTE) == 1


def test_korean_page_of_an_english_only_question_says_so_in_korean(client):
    question = bilingual(title="", question_md="", answer_md="")
    page = client.get(reverse("mailer:question", args=[question.pk])).content.decode()
    assert '<h1 lang="en">Question 1?</h1>' in page
    assert "아직 한국어 버전이 없어 영어로" in page


def test_previous_and_next_links_are_in_the_readers_language(client):
    first, middle, last = bilingual(1), bilingual(2, title_en="", question_md_en="", answer_md_en=""), bilingual(3)
    page = client.get(reverse("mailer:question", args=[middle.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'href="{reverse("mailer:question", args=[first.pk])}" lang="en">&larr; Question 1?</a>' in page
    assert f'href="{reverse("mailer:question", args=[last.pk])}" lang="en">Question 3? &rarr;</a>' in page
    assert '<h1 lang="ko">질문 2?</h1>' in page


def test_archive_lists_english_titles_and_marks_korean_ones(client):
    bilingual(1)
    bilingual(2, title_en="", question_md_en="", answer_md_en="")
    url = reverse("mailer:archive", args=["backend"])

    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert re.search(r'lang="en">Question 1\?</a>', english)
    assert re.search(r'lang="ko">질문 2\?</a>', english)
    assert "Questions without an English version yet are listed in Korean." in english

    korean = client.get(url).content.decode()
    assert re.search(r'lang="ko">질문 1\?</a>', korean) and "Question 1?" not in korean
    assert 'id="text-language"' not in korean


def test_archive_reads_titles_only_whatever_the_language(client, django_assert_max_num_queries):
    for position in range(1, 21):
        bilingual(position, **({"title_en": "", "question_md_en": "", "answer_md_en": ""} if position % 2 else {}))
    url = reverse("mailer:archive", args=["backend"])
    for language in ("en", "ko"):
        with django_assert_max_num_queries(6):
            page = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert page.count('<li><a href="/questions/') == 20


def test_archive_has_no_note_when_every_title_is_in_the_pages_language(client):
    bilingual(1)
    page = client.get(reverse("mailer:archive", args=["backend"]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="text-language"' not in page


# --- The English starter bank -------------------------------------------------------------

CATEGORIES = ["backend", "frontend"]
HANGUL = re.compile(r"[\uac00-\ud7a3]")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)


def _structure(markdown: str) -> dict:
    """What a translation keeps: its code blocks as they are, and the outline of its Markdown."""
    return {
        "code": [match.group(0) for match in FENCE.finditer(markdown)],
        "headings": [line.split(" ", 1)[0] for line in FENCE.sub("", markdown).splitlines() if line.startswith("#")],
        "details": markdown.count("<details>"),
        "tables": len(re.findall(r"^\|[-| :]+\|$", FENCE.sub("", markdown), re.MULTILINE)),
    }


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_starter_question_has_an_english_version_of_the_same_shape(category):
    korean, korean_problems = read_question_folder(STARTER_QUESTIONS_DIR / category)
    english, english_problems = read_question_folder(STARTER_QUESTIONS_DIR / "en" / category)
    assert not korean_problems and not english_problems, (korean_problems, english_problems)
    by_name = {item.relative_path: item for item in english}
    assert sorted(by_name) == sorted(item.relative_path for item in korean)
    for item in korean:
        translation = by_name[item.relative_path]
        assert translation.order == item.order, item.relative_path
        assert bool(translation.question_md) == bool(item.question_md), item.relative_path
        assert _structure(translation.answer_md) == _structure(item.answer_md), item.relative_path
        # Written in English: Hangul only inside the code blocks kept as they are.
        prose = FENCE.sub("", translation.answer_md) + translation.title + translation.question_md
        assert not HANGUL.search(prose), (item.relative_path, re.findall(r".{20}[\uac00-\ud7a3]+", prose))


def test_the_loader_gives_every_starter_question_its_english_text():
    reports = load_starter_questions()

    assert not any(report.problems for report in reports.values())
    starter = Question.objects.filter(source_key__startswith="starter:")
    assert starter.count() == 60
    assert not starter.filter(title_en="").exists()
    assert not starter.filter(answer_md_en="").exists()
    assert len(reports["en/backend"].changed) == len(reports["en/frontend"].changed) == 30


def test_the_loader_adds_english_to_a_bank_loaded_before_it_and_keeps_edits():
    load_starter_questions()
    Question.objects.filter(source_key__startswith="starter:").update(title_en="", question_md_en="", answer_md_en="")
    edited = Question.objects.get(source_key="starter:backend:001-https-tls-handshake.md")
    Question.objects.filter(pk=edited.pk).update(title="관리자가 고친 제목", attribution="An admin's credit")
    translated = Question.objects.get(source_key="starter:backend:002-what-happens-url.md")
    Question.objects.filter(pk=translated.pk).update(
        title_en="An admin's own title", question_md_en="", answer_md_en="An admin's own answer."
    )

    load_starter_questions()

    edited.refresh_from_db()
    translated.refresh_from_db()
    assert (edited.title, edited.attribution) == ("관리자가 고친 제목", "An admin's credit")
    assert edited.title_en.startswith("How does HTTPS differ from HTTP")
    assert (translated.title_en, translated.answer_md_en) == ("An admin's own title", "An admin's own answer.")
    assert not Question.objects.filter(title_en="").exists()


# --- import_questions --language ----------------------------------------------------------


def write(folder: Path, name: str, title: str, order: int, answer: str, question: str = "") -> None:
    extra = f"question: |\n  {question}\n" if question else ""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f'---\ntitle: "{title}"\norder: {order}\n{extra}---\n{answer}\n', encoding="utf-8")


def test_english_import_adds_english_to_the_questions_it_matches(tmp_path):
    write(tmp_path / "ko" / "bank", "a.md", "질문 A?", 1, "답 A.")
    call_command("import_questions", str(tmp_path / "ko" / "bank"), "--category", "backend", "--license", "CC-BY-4.0")
    write(tmp_path / "en" / "bank", "a.md", "Question A?", 1, "Answer A.", question="Say why.")

    call_command("import_questions", str(tmp_path / "en" / "bank"), "--category", "backend", "--language", "en")

    question = Question.objects.get()
    assert (question.title, question.answer_md) == ("질문 A?", "답 A.")
    assert (question.title_en, question.question_md_en) == ("Question A?", "Say why.")
    assert question.answer_md_en == "Answer A."
    assert question.license == "CC BY 4.0"  # a translation without credit options keeps the question's credit


def test_english_import_updates_english_on_reimport_and_adds_english_only_questions(tmp_path, capsys):
    bank = tmp_path / "bank"
    write(bank, "a.md", "질문 A?", 1, "답 A.")
    import_questions(path=bank, category="backend")
    english = tmp_path / "en" / "bank"
    write(english, "a.md", "Question A?", 1, "Answer A.")
    import_questions(path=english, category="backend", language="en")
    write(english, "a.md", "Question A, revised?", 1, "Answer A, revised.")
    write(english, "b.md", "Question B?", 2, "Answer B.")

    call_command("import_questions", str(english), "--category", "backend", "--language", "en")

    out = capsys.readouterr().out
    assert "Added 1, changed 1, unchanged 0" in out
    a, b = Question.objects.order_by("position")
    assert (a.title, a.title_en, a.answer_md_en) == ("질문 A?", "Question A, revised?", "Answer A, revised.")
    assert (b.title, b.answer_md, b.title_en, b.position) == ("", "", "Question B?", 2)


def test_english_import_dry_run_writes_nothing(tmp_path):
    write(tmp_path / "bank", "a.md", "질문 A?", 1, "답 A.")
    import_questions(path=tmp_path / "bank", category="backend")
    write(tmp_path / "en" / "bank", "a.md", "Question A?", 1, "Answer A.")

    report = import_questions(path=tmp_path / "en" / "bank", category="backend", language="en", dry_run=True)

    assert report.changed == ["a.md"]
    assert Question.objects.get().title_en == ""


def test_an_unknown_language_is_refused_and_nothing_is_written(tmp_path):
    write(tmp_path / "bank", "a.md", "Question A?", 1, "Answer A.")
    with pytest.raises(CommandError, match="invalid choice: 'de'"):
        call_command("import_questions", str(tmp_path / "bank"), "--category", "backend", "--language", "de")
    with pytest.raises(ValueError, match="Unknown language 'de': use ko or en"):
        import_questions(path=tmp_path / "bank", category="backend", language="de")
    assert not Question.objects.exists()


def test_a_malformed_english_file_is_named_and_the_others_still_import(tmp_path, capsys):
    write(tmp_path / "bank", "a.md", "질문 A?", 1, "답 A.")
    write(tmp_path / "bank", "b.md", "질문 B?", 2, "답 B.")
    import_questions(path=tmp_path / "bank", category="backend")
    english = tmp_path / "en" / "bank"
    write(english, "a.md", "Question A?", 1, "Answer A.")
    (english / "b.md").write_text("no front matter\n", encoding="utf-8")

    call_command("import_questions", str(english), "--category", "backend", "--language", "en")

    assert "b.md: has no YAML front matter" in capsys.readouterr().err
    assert dict(Question.objects.values_list("title", "title_en")) == {"질문 A?": "Question A?", "질문 B?": ""}


def test_english_import_into_another_categorys_question_is_refused(tmp_path):
    write(tmp_path / "bank", "a.md", "질문 A?", 1, "답 A.")
    import_questions(path=tmp_path / "bank", category="backend", source="shared")
    write(tmp_path / "en", "a.md", "Question A?", 1, "Answer A.")

    report = import_questions(path=tmp_path / "en", category="frontend", source="shared", language="en")

    assert [problem.message for problem in report.problems] == ["source key shared:a.md belongs to another category"]
    assert Question.objects.get().title_en == ""

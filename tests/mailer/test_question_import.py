"""`import_questions`: both folder layouts, re-import, dry run, malformed files."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from mailer.models import Question
from mailer.services import import_questions, load_starter_questions

pytestmark = pytest.mark.django_db


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def front_matter(title: str, order: int, answer: str = "The answer.", question: str | None = None) -> str:
    extra = f"question: |\n  {question}\n" if question else ""
    return f'---\ntitle: "{title}"\norder: {order}\n{extra}---\n{answer}\n'


def test_front_matter_folder_is_imported_in_order(tmp_path):
    write(tmp_path, "b.md", front_matter("두 번째 질문?", 2))
    write(tmp_path, "a.md", front_matter("첫 번째 질문?", 1, question="무엇을 설명해야 하나요?"))
    write(tmp_path, "README.md", "not a question")

    report = import_questions(path=tmp_path, category="backend")

    assert report.added == ["a.md", "b.md"]
    questions = list(Question.objects.order_by("position"))
    assert [(q.position, q.title) for q in questions] == [(1, "첫 번째 질문?"), (2, "두 번째 질문?")]
    assert questions[0].question_md == "무엇을 설명해야 하나요?"
    assert questions[0].answer_md == "The answer."


def test_toc_folder_takes_order_and_titles_from_the_list(tmp_path):
    write(tmp_path, "toc.md", "# Contents\n\n- [Event loop?](contents/loop.md)\n- [Closures?](contents/closure.md)\n")
    write(tmp_path, "contents/loop.md", "Loop answer.")
    write(tmp_path, "contents/closure.md", "Closure answer.")

    report = import_questions(path=tmp_path, category="frontend")

    assert report.added == ["contents/loop.md", "contents/closure.md"]
    assert list(Question.objects.order_by("position").values_list("title", "answer_md")) == [
        ("Event loop?", "Loop answer."),
        ("Closures?", "Closure answer."),
    ]


def test_reimport_updates_by_source_key_and_appends_new_files(tmp_path):
    write(tmp_path, "a.md", front_matter("Q1?", 1))
    import_questions(path=tmp_path, category="backend")
    write(tmp_path, "a.md", front_matter("Q1, reworded?", 1, answer="Better answer."))
    write(tmp_path, "c.md", front_matter("Q3?", 3))

    report = import_questions(path=tmp_path, category="backend")

    assert (report.added, report.changed, report.unchanged) == (["c.md"], ["a.md"], [])
    assert Question.objects.count() == 2
    assert Question.objects.get(position=1).title == "Q1, reworded?"
    assert Question.objects.get(position=2).title == "Q3?"
    again = import_questions(path=tmp_path, category="backend")
    assert again.unchanged == ["a.md", "c.md"] and not again.added and not again.changed


def test_dry_run_reports_and_writes_nothing(tmp_path):
    write(tmp_path, "a.md", front_matter("Q1?", 1))
    report = import_questions(path=tmp_path, category="backend", dry_run=True)
    assert report.added == ["a.md"]
    assert not Question.objects.exists()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("no-front-matter.md", "Just text", "no YAML front matter"),
        ("bad-yaml.md", '---\ntitle: "unclosed\norder: 1\n---\nA', "not valid YAML"),
        ("no-title.md", "---\norder: 1\n---\nA", "has no title"),
        ("bad-order.md", '---\ntitle: "T"\norder: first\n---\nA', "'order' must be a whole number"),
        ("empty-answer.md", '---\ntitle: "T"\norder: 1\n---\n\n', "has no answer"),
        ("list.md", "---\n- a\n- b\n---\nA", "not a mapping"),
    ],
)
def test_malformed_files_are_named_and_the_rest_imported(tmp_path, name, text, message):
    write(tmp_path, "good.md", front_matter("Good?", 1))
    write(tmp_path, name, text)

    report = import_questions(path=tmp_path, category="backend")

    assert report.added == ["good.md"]
    [problem] = report.problems
    assert problem.relative_path == name
    assert message in problem.message


def test_non_utf8_file_is_reported(tmp_path):
    write(tmp_path, "good.md", front_matter("Good?", 1))
    (tmp_path / "latin1.md").write_bytes(b'---\ntitle: "caf\xe9"\norder: 2\n---\nA')
    report = import_questions(path=tmp_path, category="backend")
    assert [p.relative_path for p in report.problems] == ["latin1.md"]
    assert "not UTF-8" in report.problems[0].message


def test_toc_links_outside_the_folder_or_missing_are_refused(tmp_path):
    secret = write(tmp_path, "outside.md", "secret")
    folder = tmp_path / "bank"
    write(folder, "toc.md", f"- [Escape](../{secret.name})\n- [Missing](contents/nope.md)\n- [Ok](contents/ok.md)\n")
    write(folder, "contents/ok.md", "Fine.")

    report = import_questions(path=folder, category="backend")

    assert report.added == ["contents/ok.md"]
    messages = sorted(p.message for p in report.problems)
    assert any("outside the folder" in m for m in messages)
    assert any("does not exist" in m for m in messages)
    assert not Question.objects.filter(answer_md="secret").exists()


def test_command_reports_added_changed_and_malformed(tmp_path, capsys):
    write(tmp_path, "a.md", front_matter("Q1?", 1))
    write(tmp_path, "broken.md", "nothing")
    call_command("import_questions", str(tmp_path), "--category", "backend", "--dry-run")
    out, err = capsys.readouterr()
    assert "Would add 1" in out and "broken.md" in err
    assert not Question.objects.exists()

    call_command("import_questions", str(tmp_path), "--category", "backend")
    assert Question.objects.count() == 1
    with pytest.raises(CommandError):
        call_command("import_questions", str(tmp_path / "missing"), "--category", "backend")


def test_starter_bank_loads_once_and_keeps_admin_edits():
    first = load_starter_questions()
    assert set(first) == {"backend", "frontend"}
    for category, report in first.items():
        assert not report.problems, report.problems
        assert len(report.added) >= 25, category
    Question.objects.filter(category="backend", position=1).update(title="Edited by an admin")

    second = load_starter_questions()

    assert all(not report.added for report in second.values())
    assert Question.objects.get(category="backend", position=1).title == "Edited by an admin"

"""`import_questions`: both folder layouts, re-import, dry run, malformed files,
what the site shows differently from a file, and the credits under answers."""

import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from mailer.markdown import MAX_MARKDOWN_CHARS
from mailer.models import Question
from mailer.questions import import_questions, load_starter_questions

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
    assert set(first) == {"backend", "frontend", "en/backend", "en/frontend"}
    for category in ("backend", "frontend"):
        assert not first[category].problems, first[category].problems
        assert len(first[category].added) >= 25, category
    Question.objects.filter(category="backend", position=1).update(title="Edited by an admin")

    second = load_starter_questions()

    assert all(not report.added and not report.changed for report in second.values())
    assert Question.objects.get(category="backend", position=1).title == "Edited by an admin"


# --- A bank in 매일메일's layout (maeil-mail-contents): toc.md and contents/ -------------
# Written here in that layout; none of that repository's files are copied (they carry no license).

MAEIL_TOC = """# Backend TOC


- [OSIV 옵션에 대해서 설명해주세요.](contents/be-1.md)
- [call by value 코드의 실행 결과를 설명해주세요.](contents/be-2.md)
- [TCP 3-way handshake에 대해서 설명해주세요.](contents/be-3.md)
"""
PLAIN_ANSWER = """**OSIV**는 영속성 컨텍스트를 뷰까지 열어 두는 옵션입니다.

## 📚 추가 학습 자료를 공유합니다.
- [[얄팍한 코딩사전] 영속성 컨텍스트 -
한 번 더](https://www.youtube.com/watch?v=abc)
"""
DETAILS_ANSWER = """```js
console.log(a, b, c); // ?
```

> 위 코드를 복사하여 브라우저 콘솔 창에서 직접 실행해보세요. 🙂

<details>
    <summary>답변 보기</summary>

**답:** `a unchanged {b: 'unchanged'} {c: 'changed'}`

자바스크립트는 **Call by Value 방식**으로 매개변수를 전달합니다.
</details>
"""
IMAGE_ANSWER = """연결을 맺는 과정은 그림과 같습니다.

<img width="600" alt="image" src="https://github.com/user-attachments/assets/3f2c">

![](./images/handshake.png)

![흐름](https://images.example/flow.png)

<script>alert('x')</script>

[이전 질문](be-2.md)
"""


def write_maeil_bank(folder: Path) -> Path:
    write(folder, "toc.md", MAEIL_TOC)
    write(folder, "contents/be-1.md", PLAIN_ANSWER)
    write(folder, "contents/be-2.md", DETAILS_ANSWER)
    write(folder, "contents/be-3.md", IMAGE_ANSWER)
    return folder


def test_maeil_mail_bank_imports_and_names_every_file_shown_differently(tmp_path, client):
    report = import_questions(path=write_maeil_bank(tmp_path / "backend"), category="backend")

    assert report.added == ["contents/be-1.md", "contents/be-2.md", "contents/be-3.md"]
    assert list(report.rendering_changes) == ["contents/be-3.md"]
    assert report.rendering_changes["contents/be-3.md"] == [
        "image https://github.com/user-attachments/assets/3f2c shown from github.com",
        "image ./images/handshake.png removed: a relative address points nowhere on this site",
        "image https://images.example/flow.png shown from images.example",
        "<script> removed with its content",
        "link be-2.md removed (its text kept): a relative address points nowhere on this site",
    ]
    pages = {
        q.source_key.rsplit(":", 1)[1]: client.get(reverse("mailer:question", args=[q.pk]))
        for q in Question.objects.all()
    }
    details = pages["contents/be-2.md"].content.decode()
    assert "<summary>답변 보기</summary>" in details and "&lt;summary&gt;" not in details
    assert "<strong>Call by Value 방식</strong>" in details
    images = pages["contents/be-3.md"]
    assert "img-src 'self' data: https:" in images["Content-Security-Policy"]
    body = images.content.decode()
    assert 'src="https://github.com/user-attachments/assets/3f2c"' in body and 'loading="lazy"' in body
    assert "handshake.png" not in body and "alert(" not in body and "이전 질문" in body
    assert 'href="https://www.youtube.com/watch?v=abc"' in pages["contents/be-1.md"].content.decode()


def test_an_answer_over_the_size_bound_is_named_and_nothing_of_it_is_imported(tmp_path):
    write(tmp_path, "toc.md", "- [Long?](contents/long.md)\n- [Short?](contents/short.md)\n")
    write(tmp_path, "contents/long.md", "가" * (MAX_MARKDOWN_CHARS + 1))
    write(tmp_path, "contents/short.md", "짧은 답.")
    write(tmp_path / "fm", "long.md", front_matter("Long?", 1, answer="[" * (MAX_MARKDOWN_CHARS + 1)))
    write(tmp_path / "fm", "ok.md", front_matter("Ok?", 2))

    toc = import_questions(path=tmp_path, category="backend")
    front = import_questions(path=tmp_path / "fm", category="frontend")

    assert toc.added == ["contents/short.md"] and front.added == ["ok.md"]
    for report, name in [(toc, "contents/long.md"), (front, "long.md")]:
        [problem] = report.problems
        assert problem.relative_path == name
        assert f"has {MAX_MARKDOWN_CHARS + 1:,} characters; at most {MAX_MARKDOWN_CHARS:,}" in problem.message
    assert not Question.objects.filter(title="Long?").exists()


def test_command_lists_what_the_site_shows_differently(tmp_path, capsys):
    call_command("import_questions", str(write_maeil_bank(tmp_path / "bank")), "--category", "backend")
    out, _err = capsys.readouterr()
    assert "Added 3, changed 0, unchanged 0, skipped 0 malformed; 1 shown differently from their files." in out
    assert "  * contents/be-3.md: <script> removed with its content" in out


# --- Credits ----------------------------------------------------------------------------


def credit_of(client, question: Question) -> str:
    page = client.get(reverse("mailer:question", args=[question.pk])).content.decode()
    match = re.search(r'<p class="muted credit">(.*?)</p>', page, re.DOTALL)
    return match.group(1) if match else ""


def test_bundled_questions_credit_cc_by_sa_and_imported_ones_credit_nothing_unless_told(tmp_path, client):
    load_starter_questions()
    write(tmp_path, "a.md", front_matter("Imported?", 1))
    import_questions(path=tmp_path, category="backend")

    bundled = credit_of(client, Question.objects.filter(source_key__startswith="starter:").first())
    assert "DailyQ contributors" in bundled
    assert '<a rel="license" href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA 4.0</a>' in bundled
    assert credit_of(client, Question.objects.get(title="Imported?")) == ""


def test_import_shows_the_license_and_attribution_its_source_asks_for(tmp_path, client):
    write(tmp_path, "a.md", front_matter("Credited?", 1))
    call_command(
        "import_questions", str(tmp_path), "--category", "backend", "--license", "cc-by-4.0",
        "--attribution", "  매일메일\n 기여자들 ",
    )  # fmt: skip
    question = Question.objects.get(title="Credited?")
    assert (question.license, question.license_url, question.attribution) == (
        "CC BY 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "매일메일 기여자들",
    )
    credit = credit_of(client, question)
    assert "매일메일 기여자들" in credit and 'href="https://creativecommons.org/licenses/by/4.0/"' in credit

    # A license by name and address; importing again with other terms updates them.
    report = import_questions(
        path=tmp_path, category="backend", license="Team License", license_url="https://team.example/license"
    )
    assert report.changed == ["a.md"]
    question.refresh_from_db()
    assert (question.license, question.license_url, question.attribution) == (
        "Team License",
        "https://team.example/license",
        "",
    )
    assert '<a rel="license" href="https://team.example/license">Team License</a>' in credit_of(client, question)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--license", "X", "--license-url", "javascript:alert(1)"], "not an http(s) address"),
        (["--license-url", "https://team.example/license"], "needs a license name"),
        (["--attribution", "a" * 301], "longer than 300"),
    ],
)
def test_bad_credit_options_are_refused_before_anything_is_written(tmp_path, options, message):
    write(tmp_path, "a.md", front_matter("Q?", 1))
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("import_questions", str(tmp_path), "--category", "backend", *options)
    assert not Question.objects.exists()


def test_the_bundled_bank_is_shown_exactly_as_written():
    reports = load_starter_questions()
    assert {folder: report.rendering_changes for folder, report in reports.items()} == {
        "backend": {},
        "frontend": {},
        "en/backend": {},
        "en/frontend": {},
    }


@pytest.mark.django_db(transaction=True)
def test_starter_questions_loaded_before_the_license_get_its_credit_on_migrating():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("mailer", "0008_drop_claim_index")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_question = executor.loader.project_state(before).apps.get_model("mailer", "Question")
    old_question.objects.create(
        category="backend", position=1, title="Q", answer_md="A", source_key="starter:backend:1.md"
    )
    old_question.objects.create(
        category="backend", position=2, title="Q", answer_md="A", source_key="backend:bank:1.md"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    credits = dict(Question.objects.values_list("source_key", "license"))
    assert credits == {"starter:backend:1.md": "CC BY-SA 4.0", "backend:bank:1.md": ""}
    assert Question.objects.get(source_key="starter:backend:1.md").attribution == "DailyQ contributors"

"""The importers under arbitrary files: question folders (read_question_folder,
import_questions) and subscriber CSVs (plan_subscriber_import,
import_subscribers, and the admin upload that runs them).

A malformed file is a FileProblem or an invalid row, never an exception; a
file outside the folder is never imported; nothing is half-written.
"""

import csv
import io
import os
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import example, given
from hypothesis import strategies as st

from mailer.markdown import MAX_MARKDOWN_CHARS
from mailer.models import Question
from mailer.question_files import MAX_TITLE_LENGTH, read_question_folder
from mailer.questions import import_questions
from subscriptions import tracks
from subscriptions.addresses import canonical_email
from subscriptions.importing import import_subscribers, plan_subscriber_import
from subscriptions.models import Subscriber, Verification
from tests.properties.strategies import emails, fuzz, unique, valid_emails

pytestmark = pytest.mark.django_db

OUTSIDE = "OUTSIDE-THE-FOLDER"
OUTSIDE_FILE = f"---\ntitle: Outside\norder: 1\n---\n{OUTSIDE}\n"


@pytest.fixture
def workspace(tmp_path):
    """Files beside and above the folders under test, which must never be imported."""
    (tmp_path / "outside.md").write_text(OUTSIDE_FILE)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "x.md").write_text(OUTSIDE_FILE)
    return tmp_path


def new_folder(workspace: Path, name: str | None = None) -> Path:
    folder = workspace / (name or unique("q"))
    folder.mkdir()
    return folder


def write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


# --- Question files ---------------------------------------------------------------

# No backslashes (YAML escapes have their own property below) and no NUL.
safe_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\\\x00"), max_size=40)
titles = st.one_of(
    safe_text,
    st.sampled_from(["", "   ", "제목\n두 줄", "Subject\r\nBcc: evil@evil.example", "\u2028x", "<script>x</script>"]),
    st.sampled_from([MAX_TITLE_LENGTH - 1, MAX_TITLE_LENGTH, MAX_TITLE_LENGTH + 1, 5000]).map(lambda n: "가" * n),
)
orders = st.one_of(st.integers(-3, 10**20), st.none(), st.booleans(), st.floats(allow_nan=False), safe_text)


@st.composite
def front_matter_files(draw) -> bytes:
    meta = {}
    for key, values in (("title", titles), ("order", orders), ("question", st.one_of(safe_text, st.integers()))):
        if draw(st.integers(0, 9)):
            meta[key] = draw(values)
    text = "---\n" + yaml.safe_dump(meta, allow_unicode=draw(st.booleans())) + "---\n" + draw(safe_text)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8-sig" if draw(st.booleans()) else "utf-8")


file_contents = st.one_of(
    front_matter_files(),
    front_matter_files(),
    st.binary(max_size=200),
    st.builds(lambda head, tail: head + b"\xff\xfe" + tail, front_matter_files(), st.binary(max_size=20)),
    safe_text.map(lambda text: f"---\n{text}\n---\nanswer\n".encode()),  # broken or odd YAML
    st.sampled_from(
        [
            b"---\n- a\n- b\n---\nanswer\n",
            b"---\ntitle: [unclosed\norder: 1\n---\nanswer\n",
            b"---\ntitle: x\norder: 1\n---\n",
            b"---\ntitle: x\norder: 1\n---\n   \n",
            b"no front matter at all",
            b"---\ntitle: x\norder: 1\nquestion: 2024-13-45\n---\nanswer\n",
            b"---\ntitle: x\norder: 1\n---\nhas a \x00 NUL\n",
            b"---\ntitle: !!python/object/apply:os.system ['true']\norder: 1\n---\nanswer\n",
            b"",
        ]
    ),
    st.just(b"---\ntitle: big\norder: 1\n---\n" + b"x" * 1_000_001),
    st.sampled_from([MAX_MARKDOWN_CHARS, MAX_MARKDOWN_CHARS + 1]).map(
        lambda n: b"---\ntitle: long\norder: 1\n---\n" + "[\u2014".encode() * (n // 2) + b"[" * (n % 2)
    ),
    st.sampled_from(
        [
            b"---\ntitle: pictures\norder: 1\n---\n![a](https://images.example/a.png) ![b](b.png)\n",
            b"---\ntitle: details\norder: 1\n---\n<details>\n    <summary>s</summary>\n\nx\n</details>\n",
        ]
    ),
)
md_names = st.one_of(st.from_regex(r"\A[a-z0-9_-]{1,16}\.md\Z"), st.sampled_from(["README.md", "x.MD", "notes.txt"]))
toc_links = st.sampled_from(
    [
        "contents/{name}",
        "./contents/{name}#part",
        "contents/../contents/{name}",
        "contents/{name}?x=1",
        "../outside.md",
        "../secret/x.md",
        "%2e%2e/outside.md",
        "{workspace}/outside.md",
        "/etc/passwd",
        "https://evil.example/x.md",
        "//evil.example/x.md",
        "file:///etc/passwd",
        "contents/missing.md",
        "contents/",
        "toc.md",
        "contents/link-out.md",
        "",
    ]
)


@st.composite
def question_folders(draw):
    """(layout, {relative path: bytes}, toc lines or None, symlinks inside the toc layout)."""
    if draw(st.booleans()):
        files = draw(st.dictionaries(md_names, file_contents, max_size=5))
        directories = draw(st.lists(md_names, max_size=1))  # a folder named like a file
        return "front matter", files, None, directories
    names = draw(st.lists(md_names, min_size=1, max_size=4, unique=True))
    files = {f"contents/{name}": draw(file_contents) for name in names}
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        link = draw(toc_links).format(name=draw(st.sampled_from(names)), workspace="{workspace}")
        title = draw(st.one_of(st.sampled_from(["Question?", "질문?", "   ", "a" * 301]), safe_text))
        item = draw(st.sampled_from(["- [{t}]({l})", "* [{t}]({l})", "  + [{t}]({l}) ", "[{t}]({l})"]))
        lines.append(item.format(t=title, l=link))
    lines += draw(st.lists(safe_text, max_size=2))
    return "toc", files, draw(st.permutations(lines)), []


def build(workspace: Path, spec) -> Path:
    layout, files, toc_lines, directories = spec
    folder = new_folder(workspace)
    for relative, content in files.items():
        write(folder / relative, content)
    for name in directories:
        if name not in files:
            (folder / name).mkdir()
    if layout == "toc":
        toc = "\n".join(toc_lines).replace("{workspace}", str(workspace))
        write(folder / "toc.md", toc.encode())
        os.symlink(workspace / "outside.md", folder / "contents" / "link-out.md")
    return folder


def inside(folder: Path, relative: str) -> bool:
    root = folder.resolve()
    return root in (folder / relative).resolve().parents


def check_import(folder: Path, category: str, dry_run: bool) -> None:
    files, problems = read_question_folder(folder)
    for item in files:
        assert inside(folder, item.relative_path)
        assert item.title and len(item.title) <= MAX_TITLE_LENGTH and item.title == " ".join(item.title.split())
        assert item.answer_md.strip() and OUTSIDE not in item.answer_md
        assert len(item.answer_md) <= MAX_MARKDOWN_CHARS and len(item.question_md) <= MAX_MARKDOWN_CHARS
    assert all(isinstance(p.relative_path, str) and p.message for p in problems)

    before = set(Question.objects.values_list("id", flat=True))
    report = import_questions(path=folder, category=category, dry_run=dry_run)
    new = Question.objects.exclude(id__in=before)
    # What the pages change is told for files read whole, and only for them.
    assert set(report.rendering_changes) <= {f.relative_path for f in files}
    assert all(report.rendering_changes.values())
    if dry_run:
        assert not new.exists()
        return
    source = f"{category}:{folder.resolve().name}"
    # Exactly the files read whole, each complete; nothing for a file with a problem.
    assert sorted(report.added) == sorted(f.relative_path for f in files)
    assert sorted(q.source_key for q in new) == sorted(f"{source}:{f.relative_path}" for f in files)
    for question in new:
        assert question.title and question.answer_md and OUTSIDE not in question.answer_md
    # Importing the same folder again changes nothing.
    again = import_questions(path=folder, category=category)
    assert again.added == [] and again.changed == []
    assert Question.objects.exclude(id__in=before).count() == len(files)


@fuzz(70)
@given(spec=question_folders(), category=st.sampled_from(["backend", "frontend"]), dry_run=st.booleans())
def test_question_folders_import_whole_files_or_report_them(workspace, spec, category, dry_run):
    check_import(build(workspace, spec), category, dry_run)


@fuzz(20)
@given(
    prefix=safe_text.filter(lambda text: '"' not in text),
    escape=st.sampled_from([r"\0", r"\x00", r"\u0000", r"\ud800", r"\udfff"]),
    field=st.sampled_from(["title", "question"]),
)
@example(prefix="a", escape=r"\0", field="title")
def test_yaml_escapes_never_break_an_import(workspace, prefix, escape, field):
    folder = new_folder(workspace)
    values = {"title": "Title", "question": "", field: f"{prefix}{escape}"}
    text = f'---\ntitle: "{values["title"]}"\norder: 1\nquestion: "{values["question"]}"\n---\nanswer\n'
    write(folder / "a.md", text.encode())
    write(folder / "b.md", b"---\ntitle: Good\norder: 2\n---\nGood answer.\n")
    report = import_questions(path=folder, category="backend")
    assert "b.md" in report.added


@fuzz(3)
@given(depth=st.integers(1_500, 3_000), opener=st.sampled_from(["[", "{"]))
@example(depth=1_500, opener="[")
def test_deeply_nested_front_matter_is_a_file_problem(workspace, depth, opener):
    folder = new_folder(workspace)
    write(folder / "deep.md", f"---\ntitle: {opener * depth}\norder: 1\n---\nanswer\n".encode())
    write(folder / "good.md", b"---\ntitle: Good\norder: 2\n---\nGood answer.\n")
    files, problems = read_question_folder(folder)
    assert [f.relative_path for f in files] == ["good.md"]
    assert [p.relative_path for p in problems] == ["deep.md"]


@fuzz(10)
@given(parts=st.lists(st.integers(20, 200), min_size=1, max_size=4), folder_name=st.integers(5, 200))
@example(parts=[100, 100, 100], folder_name=5)
def test_long_paths_are_a_file_problem(workspace, parts, folder_name):
    folder = new_folder(workspace, unique("q").ljust(folder_name, "q"))
    long_path = "/".join("d" * n for n in parts) + ".md"
    write(folder / long_path, b"A long way down.")
    write(folder / "good.md", b"Good answer.")
    write(folder / "toc.md", f"- [Deep]({long_path})\n- [Good](good.md)\n".encode())
    report = import_questions(path=folder, category="backend")
    assert "good.md" in report.added
    for question in Question.objects.all():
        assert len(question.source_key) <= 300


@fuzz(5)
@given(name=st.from_regex(r"\A[a-z]{1,10}\.md\Z"), target=st.sampled_from(["outside.md", "secret/x.md"]))
@example(name="link.md", target="outside.md")
def test_symlinked_files_outside_the_folder_are_never_imported(workspace, name, target):
    folder = new_folder(workspace)
    os.symlink(workspace / target, folder / name)
    import_questions(path=folder, category="backend")
    assert not Question.objects.filter(answer_md__contains=OUTSIDE).exists()


# --- Subscriber CSVs ------------------------------------------------------------------

COLUMN_NAMES = ["email", "Email", " EMAIL ", "categories", "frequency", "language", "name", "", "email "]
cells = st.one_of(
    valid_emails,
    emails,
    st.sampled_from(["existing@example.org", "EXISTING@example.org", "dup@example.org", "DUP@example.org"]),
    st.sampled_from(["backend", "frontend", "backend;frontend", "backend frontend", "backend,frontend", "", "all"]),
    st.sampled_from(["daily", "weekly", "DAILY", "monthly", "ko", "en", "EN", "fr"]),
    st.text(max_size=30),
    st.sampled_from(['"', '""', 'a"b', "\x00", "\ufeff", "\r", "\r\n", "=cmd|' /C calc'!A0", " "]),
)


def quoted(cell: str, quote: bool) -> str:
    return '"' + cell.replace('"', '""') + '"' if quote else cell


@st.composite
def csv_texts(draw) -> str:
    """CSV with a readable first row (column names) and anything after it."""
    separator = draw(st.sampled_from([",", ",", ",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = draw(st.lists(st.sampled_from(COLUMN_NAMES), min_size=1, max_size=5))
    lines = [separator.join(quoted(name, draw(st.booleans())) for name in header)]
    for _ in range(draw(st.integers(0, 8))):
        row = draw(st.lists(cells, max_size=len(header) + 1))
        lines.append(separator.join(quoted(cell, draw(st.booleans())) for cell in row))
    if draw(st.integers(0, 9)) == 0:
        lines.append("x" * 200_000)  # over csv's field size limit
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    return ("\ufeff" if draw(st.booleans()) else "") + text


def records(text: str) -> tuple[int, bool]:
    """How many rows after the header hold anything (columns named as the importer names them),
    and whether csv stopped on an error."""
    count = 0
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        for raw in reader:
            record = {key.strip().lower(): (value or "").strip() for key, value in raw.items() if key}
            count += any(record.values())
    except csv.Error:
        return count, True
    return count, False


def check_plan(text: str, consented: bool) -> None:
    plan = plan_subscriber_import(text)
    header_problems = [p for p in plan.invalid if p.line == 1 and not p.reason.startswith("CSV: ")]
    csv_problems = [p for p in plan.invalid if p.reason.startswith("CSV: ")]
    row_problems = [p for p in plan.invalid if p not in header_problems + csv_problems]
    classified = [r.line for r in plan.rows] + [p.line for p in plan.duplicates + row_problems]
    assert len(set(classified)) == len(classified)  # no row is counted twice
    assert len(csv_problems) <= 1
    if not header_problems:
        count, stopped = records(text)
        assert stopped == bool(csv_problems)
        assert len(classified) == count  # every row that holds anything is somewhere
    seen = set()
    for row in plan.rows:
        assert canonical_email(row.email) == row.email
        assert row.email.lower() not in seen
        seen.add(row.email.lower())
        assert row.categories and set(row.categories) <= set(tracks.offered_slugs())
        assert row.frequency in {"daily", "weekly"} and row.language in {"ko", "en"}
    assert "existing@example.org" not in seen  # already a subscriber

    subscribers, verifications = Subscriber.objects.count(), Verification.objects.count()
    report = import_subscribers(plan=plan, already_consented=consented)
    assert report.added == len(plan.rows) and report.skipped == 0
    assert Subscriber.objects.count() == subscribers + len(plan.rows)
    assert Verification.objects.count() == verifications + (0 if consented else len(plan.rows))
    for row in plan.rows:
        subscriber = Subscriber.objects.get(email=row.email)
        assert subscriber.status == ("active" if consented else "pending")
        if consented:
            assert sorted(subscriber.subscriptions.values_list("category", flat=True)) == sorted(row.categories)
    # Planned again, every imported row is now a duplicate.
    assert plan_subscriber_import(text).rows == []


@fuzz(80)
@given(text=csv_texts(), consented=st.booleans())
@example(text="email,categories\r\nA@Bücher.Example,backend;frontend\r\na@bücher.example,x\r\n", consented=True)
@example(text='\ufeffemail\n"new@example.org\n', consented=False)
def test_csv_rows_are_all_classified_and_import_writes_exactly_the_plan(text, consented):
    Subscriber.objects.all().delete()
    Subscriber.objects.create(email="existing@example.org")
    check_plan(text, consented)


@fuzz(40)
@given(text=st.text(max_size=60))
@example(text="email\rx\na@example.org\n")
@example(text="email," + "x" * 131_073 + "\n")
def test_any_text_is_planned_without_raising(text):
    plan_subscriber_import(text)


# --- The admin upload -------------------------------------------------------------------

IMPORT = reverse("admin:subscriptions_subscriber_import")


def not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks", "relaxed_limits")
@fuzz(20)
@given(
    content=st.one_of(csv_texts().map(str.encode), st.binary(max_size=100).filter(not_utf8)),
    consented=st.booleans(),
)
def test_admin_upload_previews_then_imports_exactly_the_plan(admin_client, content, consented):
    Subscriber.objects.all().delete()
    preview = admin_client.post(IMPORT, {"file": SimpleUploadedFile("x.csv", content)}, HTTP_ACCEPT_LANGUAGE="en")
    assert preview.status_code == 200
    if not_utf8(content):
        assert "not UTF-8" in preview.content.decode()
        return
    planned = len(preview.context["plan"].rows)
    assert Subscriber.objects.count() == 0  # the preview writes nothing
    data = {"apply": "1", **({"already_consented": "on"} if consented else {})}
    done = admin_client.post(IMPORT, data)
    assert done.status_code == 302
    assert Subscriber.objects.count() == planned


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_tasks", "relaxed_limits")
@fuzz(10)
@given(content=st.text(max_size=60).map(str.encode))
@example(content=b"email\rx\n")
def test_admin_upload_of_any_text_never_500s(admin_client, content):
    assert admin_client.post(IMPORT, {"file": SimpleUploadedFile("x.csv", content)}).status_code < 500

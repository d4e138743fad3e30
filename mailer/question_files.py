"""Reading question folders: the two layouts `import_questions` accepts.

(a) A folder of Markdown files, each with YAML front matter:

    ---
    title: "HTTP와 HTTPS의 차이는 무엇인가요?"
    order: 3
    question: |            # optional: more about what is asked
      ...
    ---
    The answer, in Markdown.

(b) A folder holding `toc.md`, whose list items `- [Title](contents/x.md)`
    give the order and titles; each linked file (beside toc.md, inside the
    folder) is the answer.

A malformed file becomes a FileProblem naming the file; the others are read.
So does an answer or question text longer than MAX_MARKDOWN_CHARS: the
file stays as it is, to be shortened or split, and nothing of it is imported.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mailer.markdown import MAX_MARKDOWN_CHARS

MAX_FILE_BYTES = 1_000_000
MAX_TITLE_LENGTH = 300
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_TOC_ITEM = re.compile(r"^\s*[-*+]\s+\[(?P<title>[^\]]+)\]\((?P<link>[^)\s]+)\)\s*$")


@dataclass(frozen=True)
class QuestionFile:
    relative_path: str
    order: int
    title: str
    question_md: str
    answer_md: str


@dataclass(frozen=True)
class FileProblem:
    relative_path: str
    message: str


def read_question_folder(folder: Path) -> tuple[list[QuestionFile], list[FileProblem]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    if (folder / "toc.md").is_file():
        files, problems = _read_toc_layout(folder)
    else:
        files, problems = _read_front_matter_layout(folder)
    files.sort(key=lambda f: (f.order, f.relative_path))
    return files, problems


def _read_text(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // 1000} kB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if "\x00" in text:
        raise ValueError("contains NUL bytes")
    return text


def _check_text(text: str, what: str) -> str:
    """Text the database can store: no NUL, no unpaired surrogates (YAML escapes can make both)."""
    if "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text):
        raise ValueError(f"{what} contains characters that are not text (NUL or a lone surrogate)")
    return text


def _check_size(text: str, what: str) -> str:
    if len(text) > MAX_MARKDOWN_CHARS:
        raise ValueError(
            f"{what} has {len(text):,} characters; at most {MAX_MARKDOWN_CHARS:,} are allowed "
            "(shorten it, or split the question in two)"
        )
    return text


def _clean_title(title) -> str:
    if not isinstance(title, str) or not title.strip():
        raise ValueError("has no title")
    _check_text(title, "title")
    title = " ".join(title.split())  # one line: titles become mail subjects
    if len(title) > MAX_TITLE_LENGTH:
        raise ValueError(f"title longer than {MAX_TITLE_LENGTH} characters")
    return title


def _split_front_matter(text: str) -> tuple[dict, str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ValueError("has no YAML front matter (a block between '---' lines at the top)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ValueError("front matter is nested too deeply") from None
    if not isinstance(meta, dict):
        raise ValueError("front matter is not a mapping of keys to values")
    return meta, text[match.end() :]


def _read_front_matter_layout(folder: Path) -> tuple[list[QuestionFile], list[FileProblem]]:
    files, problems = [], []
    root = folder.resolve()
    for path in sorted(folder.glob("*.md")):
        relative = path.name
        if relative.lower() == "readme.md":
            continue
        try:
            meta, body = _split_front_matter(_read_text(path))
            title = _clean_title(meta.get("title"))
            order = meta.get("order")
            if isinstance(order, bool) or not isinstance(order, int) or order < 0:
                raise ValueError("'order' must be a whole number of 0 or more")
            question = meta.get("question") or ""
            if not isinstance(question, str):
                raise ValueError("'question' must be text")
            _check_text(question, "'question'")
            if root not in path.resolve().parents:
                raise ValueError("is a link to a file outside the folder")
            if not body.strip():
                raise ValueError("has no answer below the front matter")
            _check_size(question.strip(), "'question'")
            _check_size(body.strip(), "the answer")
        except (ValueError, OSError) as exc:
            problems.append(FileProblem(relative, str(exc)))
            continue
        files.append(QuestionFile(relative, order, title, question.strip(), body.strip()))
    if not files and not problems:
        problems.append(FileProblem(".", "no .md files and no toc.md in this folder"))
    return files, problems


def _read_toc_layout(folder: Path) -> tuple[list[QuestionFile], list[FileProblem]]:
    files, problems = [], []
    root = folder.resolve()
    try:
        toc = _read_text(folder / "toc.md")
    except ValueError as exc:
        return [], [FileProblem("toc.md", str(exc))]
    seen = set()
    for number, line in enumerate(toc.splitlines(), start=1):
        item = _TOC_ITEM.match(line)
        if not item:
            continue
        link = item.group("link").split("#", 1)[0]
        target = (folder / link).resolve()
        relative = link
        try:
            if root not in target.parents:
                raise ValueError(f"toc.md line {number} links outside the folder")
            relative = target.relative_to(root).as_posix()
            if relative in seen:
                raise ValueError(f"toc.md line {number} lists it a second time")
            seen.add(relative)
            if not target.is_file():
                raise ValueError(f"toc.md line {number} links to a file that does not exist")
            title = _clean_title(item.group("title"))
            text = _read_text(target)
            if _FRONT_MATTER.match(text):
                _meta, text = _split_front_matter(text)
            if not text.strip():
                raise ValueError("is empty")
            _check_size(text.strip(), "the answer")
        except (ValueError, OSError) as exc:
            problems.append(FileProblem(relative, str(exc)))
            continue
        files.append(QuestionFile(relative, len(files) + 1, title, "", text.strip()))
    if not files and not problems:
        problems.append(FileProblem("toc.md", "has no list items like '- [Title](contents/x.md)'"))
    return files, problems

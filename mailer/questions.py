"""The question bank: importing folders of questions, the starter bank, and each category's order.

Everything that writes positions holds the category's sequence locked
(_lock_sequence), so two admins, or an import and an admin, never take the
same place.
"""

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Case, F, Max, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailer.markdown import list_markdown_changes
from mailer.models import Question
from mailer.question_files import FileProblem, read_question_folder
from mailer.selectors import TEXT_LANGUAGES, text_fields
from subscriptions import tracks
from subscriptions.models import Subscription, Track

STARTER_QUESTIONS_DIR = Path(__file__).resolve().parent / "starter_questions"

# Licenses `import_questions --license` knows by SPDX identifier: the name a page
# shows and the address of the legal code it links.
CONTENT_LICENSES = {
    "CC-BY-4.0": ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "CC-BY-SA-4.0": ("CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/"),
    "CC-BY-NC-4.0": ("CC BY-NC 4.0", "https://creativecommons.org/licenses/by-nc/4.0/"),
    "CC-BY-NC-SA-4.0": ("CC BY-NC-SA 4.0", "https://creativecommons.org/licenses/by-nc-sa/4.0/"),
    "CC0-1.0": ("CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
}
# The bundled bank's terms, as mailer/starter_questions/LICENSE states them.
STARTER_LICENSE = "CC-BY-SA-4.0"
STARTER_ATTRIBUTION = "DailyQ contributors"


@dataclass
class QuestionImportReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    # File -> what its page shows differently from the file (markup removed, images, links).
    rendering_changes: dict[str, list[str]] = field(default_factory=dict)


def describe_license(*, license: str, license_url: str = "") -> tuple[str, str]:
    """The license name a page shows and the address it links, for an SPDX identifier or free text."""
    license, license_url = " ".join(license.split()), license_url.strip()
    known = {key.lower(): value for key, value in CONTENT_LICENSES.items()}.get(license.lower())
    if known:
        license, license_url = known[0], license_url or known[1]
    if len(license) > Question._meta.get_field("license").max_length:
        raise ValueError("The license name is longer than 100 characters.")
    if license_url:
        try:
            URLValidator(schemes=["http", "https"])(license_url)
        except ValidationError:
            raise ValueError(f"{license_url!r} is not an http(s) address for the license.") from None
        if len(license_url) > Question._meta.get_field("license_url").max_length:
            raise ValueError("The license address is longer than 300 characters.")
        if not license:
            raise ValueError("A license address needs a license name (--license).")
    return license, license_url


def import_questions(
    *,
    path: Path,
    category: str,
    source: str | None = None,
    dry_run: bool = False,
    update: bool = True,
    license: str = "",
    license_url: str = "",
    attribution: str = "",
    language: str = "ko",
) -> QuestionImportReport:
    """Add the questions of a folder to the end of `category`'s sequence.

    Each file is known by its source key ("<source>:<path in folder>"), so a
    second import of the same folder updates titles, texts and credits
    instead of adding copies; positions of known questions are left as they
    are (admins reorder in the admin). Malformed files are reported and
    skipped; files the site shows differently from their text are listed
    with what changes. `license` (an SPDX identifier such as CC-BY-SA-4.0,
    or a name with `license_url`) and `attribution` are shown under each
    answer. With `dry_run` nothing is written; with `update=False` the text
    of known questions is left as it is, but a language they lack is added.

    `language` says whose text the files hold ("ko" or "en"): a known
    question gets that language's text beside the other one, and a new one
    is added with that language only. An English import of known questions
    sets their credit only when it is given.
    """
    credit = _checked_credit(
        category=category, language=language, license=license, license_url=license_url, attribution=attribution
    )
    path = Path(path)
    source = source or f"{category}:{path.resolve().name}"
    files, problems = read_question_folder(path)
    report = QuestionImportReport(problems=problems)
    for item in files:  # rendered before the sequence is locked: the lock waits for no render
        if changes := list_markdown_changes(item.question_md) + list_markdown_changes(item.answer_md):
            report.rendering_changes[item.relative_path] = changes
    # A translation leaves a known question's credit alone unless the import gives one.
    gives_credit = update and (language == TEXT_LANGUAGES[0] or any(credit.values()))
    title_field, question_field, answer_field = text_fields(language)
    with transaction.atomic():
        _lock_sequence(category)
        existing = {q.source_key: q for q in Question.objects.filter(category=category)}
        foreign = set(
            Question.objects.exclude(category=category)
            .filter(source_key__in=[f"{source}:{f.relative_path}" for f in files])
            .values_list("source_key", flat=True)
        )
        next_position = _end_of_sequence(category)
        for item in files:
            key = f"{source}:{item.relative_path}"
            if problem := _source_key_problem(key, foreign):
                report.problems.append(FileProblem(item.relative_path, problem))
                report.rendering_changes.pop(item.relative_path, None)
                continue
            text = {title_field: item.title, question_field: item.question_md, answer_field: item.answer_md}
            question = existing.get(key)
            if question is None:
                if not dry_run:
                    Question.objects.create(category=category, position=next_position, source_key=key, **text, **credit)
                next_position += 1
                report.added.append(item.relative_path)
                continue
            fields = {**text, **(credit if gives_credit else {})}
            # Without `update`, a known question only gets a language it lacks.
            if (update or not getattr(question, title_field)) and _differs(question, fields):
                if not dry_run:
                    Question.objects.filter(id=question.id).update(**fields, updated_at=timezone.now())
                report.changed.append(item.relative_path)
            else:
                report.unchanged.append(item.relative_path)
    return report


def _checked_credit(*, category: str, language: str, license: str, license_url: str, attribution: str) -> dict:
    """The import's credit fields, after refusing an unknown category or language and a bad credit."""
    tracks.require(category)
    if language not in TEXT_LANGUAGES:
        raise ValueError(f"Unknown language {language!r}: use {' or '.join(TEXT_LANGUAGES)}")
    license, license_url = describe_license(license=license, license_url=license_url)
    attribution = " ".join(attribution.split())
    if len(attribution) > Question._meta.get_field("attribution").max_length:
        raise ValueError("The attribution is longer than 300 characters.")
    return {"license": license, "license_url": license_url, "attribution": attribution}


def _source_key_problem(key: str, foreign: set[str]) -> str | None:
    if len(key) > Question._meta.get_field("source_key").max_length:
        return "path too long to be a source key"
    if key in foreign:
        return f"source key {key} belongs to another category"
    return None


def _differs(question: Question, fields: dict) -> bool:
    return any(getattr(question, name) != value for name, value in fields.items())


def load_starter_questions() -> dict[str, QuestionImportReport]:
    """Add the bundled starter bank, credited as its license asks, by folder; text already there is never overwritten.

    The Korean folders go first, so each English file finds the question of
    the Korean file of the same name and adds its English text.
    """
    return {
        folder: import_questions(
            path=STARTER_QUESTIONS_DIR / folder,
            category=category,
            source=f"starter:{category}",
            update=False,
            license=STARTER_LICENSE,
            attribution=STARTER_ATTRIBUTION,
            language=language,
        )
        for folder, category, language in _starter_folders()
    }


def _starter_folders() -> list[tuple[str, str, str]]:
    """(folder, category, language) of the bundled bank: Korean in <category>/, English in en/<category>/."""
    slugs = tracks.all_slugs()
    folders = [(category, category, "ko") for category in slugs]
    folders += [(f"en/{category}", category, "en") for category in slugs]
    return [entry for entry in folders if (STARTER_QUESTIONS_DIR / entry[0]).is_dir()]


def save_question(*, question: Question, position: int | None = None) -> Question:
    """Save `question`, new or edited, and put it at `position` of its category.

    Without a position a new question, or one moved to another category, goes
    to the end of its category; an edited one keeps its place. Positions stay
    unique and without gaps in the category it joins (move_question).
    """
    with transaction.atomic():
        _lock_sequence(question.category)
        stored = Question.objects.filter(pk=question.pk).values_list("category", "position").first()
        if stored is not None and stored[0] == question.category:
            question.position = stored[1]
        else:
            question.position = _end_of_sequence(question.category)
        question.save()
        if position and position != question.position:
            move_question(question=question, position=position)
    return question


def validate_start_position(*, category: str, position: int) -> None:
    """Where new subscriptions of `category` start must be a place in its bank: 1 to its last position.

    Raises ValidationError naming the limit.
    """
    last = Question.objects.filter(category=category).aggregate(last=Max("position"))["last"]
    name = tracks.label(category)
    if last is None and position != 1:
        raise ValidationError(
            _("%(category)s has no questions yet, so its start position can only be 1."),
            code="no_questions",
            params={"category": name},
        )
    if last is not None and not 1 <= position <= last:
        raise ValidationError(
            _("The start position must be between 1 and %(last)d, the last question of %(category)s."),
            code="past_the_bank",
            params={"last": last, "category": name},
        )


def publish_questions(*, question_ids: list[int], published: bool) -> int:
    """Publish or unpublish questions; returns how many. Unpublished ones are never sent and hidden from the site."""
    return Question.objects.filter(id__in=question_ids).update(is_published=published)


def delete_questions(*, question_ids: list[int]) -> int:
    """Delete questions; returns how many.

    The positions of the others stay as they are: picking passes over the
    gap as over an unpublished question, and no reader's cursor moves. Each
    category's sequence is held while its questions go, so no position
    writer works from a list that includes them.
    """
    with transaction.atomic():
        for category in sorted(set(Question.objects.filter(id__in=question_ids).values_list("category", flat=True))):
            _lock_sequence(category)
        _total, deleted = Question.objects.filter(id__in=question_ids).delete()
    return deleted.get(Question._meta.label, 0)


def move_question(*, question: Question, position: int) -> Question:
    """Put `question` at `position` in its category, shifting the ones in between."""
    if position < 1:
        raise ValueError("Positions start at 1.")
    with transaction.atomic():
        _lock_sequence(question.category)
        siblings = list(Question.objects.filter(category=question.category).order_by("position", "id"))
        ordered = [q for q in siblings if q.id != question.id]
        moving = next(q for q in siblings if q.id == question.id)
        ordered.insert(min(position, len(ordered) + 1) - 1, moving)
        # Two steps, because (category, position) is unique at every moment.
        offset = max(q.position for q in siblings) + len(siblings) + 1
        Question.objects.filter(id__in=[q.id for q in siblings]).update(position=F("position") + offset)
        for number, item in enumerate(ordered, start=1):
            Question.objects.filter(id=item.id).update(position=number)
        _keep_readers_places(question.category, siblings, ordered)
    question.refresh_from_db()
    return question


def _keep_readers_places(category: str, before: list[Question], after: list[Question]) -> None:
    """Move the category's cursors so each reader goes on after the last question they got.

    A cursor (Subscription.next_position) is a position; renumbering the
    questions would otherwise hand a reader a question they had (one moved
    in ahead of them) or skip one. The last question a reader got is the one
    before their cursor; its new position + 1 is their new cursor. A question
    moved from behind a reader to ahead of them is theirs at the next wrap.
    """
    new_position = {q.id: number for number, q in enumerate(after, start=1)}
    old_positions = [q.position for q in before]  # ascending
    cursors = (
        Subscription.objects.filter(category=category).order_by().values_list("next_position", flat=True).distinct()
    )
    moves = {}
    for cursor in cursors:
        index = bisect.bisect_left(old_positions, cursor)  # questions before the cursor: before[:index]
        moved_to = new_position[before[index - 1].id] + 1 if index else 1
        if moved_to != cursor:
            moves[cursor] = moved_to
    if moves:
        Subscription.objects.filter(category=category, next_position__in=moves).update(
            next_position=Case(*(When(next_position=old, then=Value(new)) for old, new in moves.items()))
        )


def _lock_sequence(category: str) -> None:
    """Hold `category`'s sequence until the transaction ends: one writer of its positions at a time.

    The lock is the category's Track row, which exists even while the
    category has no question to lock.
    """
    if not list(Track.objects.select_for_update().filter(slug=category).values_list("id", flat=True)):
        tracks.require(category)  # raises, naming the tracks there are


def _end_of_sequence(category: str) -> int:
    return (Question.objects.filter(category=category).aggregate(m=Max("position"))["m"] or 0) + 1

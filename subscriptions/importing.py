"""The CSV import of subscribers an admin uploads: read and sort the rows (plan), then add them."""

import csv
import io
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from subscriptions.addresses import canonical_email
from subscriptions.models import Category, Frequency, Subscriber
from subscriptions.services import activate_subscription, clean_choices, open_verification

CSV_MAX_ROWS = 10_000


@dataclass(frozen=True)
class ImportRow:
    line: int
    email: str
    categories: tuple[str, ...]
    frequency: str
    language: str


@dataclass(frozen=True)
class ImportProblem:
    line: int
    value: str
    reason: str


@dataclass
class ImportPlan:
    rows: list[ImportRow] = field(default_factory=list)
    duplicates: list[ImportProblem] = field(default_factory=list)
    invalid: list[ImportProblem] = field(default_factory=list)


def plan_subscriber_import(text: str) -> ImportPlan:
    """Read a CSV of subscribers and sort its rows into new, duplicate and invalid.

    Columns (header row required): email, and optionally categories
    ("backend", "frontend" or both separated by ; or space), frequency
    (daily/weekly) and language (ko/en). Writes nothing.
    """
    plan = ImportPlan()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if problem := _header_problem(reader):
        plan.invalid.append(problem)
        return plan
    seen: set[str] = set()
    try:
        for number, raw in enumerate(reader, start=2):
            if number - 1 > CSV_MAX_ROWS:
                reason = str(_("Only the first %(max)d rows are read.") % {"max": CSV_MAX_ROWS})
                plan.invalid.append(ImportProblem(line=number, value="", reason=reason))
                break
            _sort_row(plan, seen, number=number, raw=raw)
    except csv.Error as exc:
        plan.invalid.append(ImportProblem(line=reader.line_num, value="", reason=f"CSV: {exc}"))
    _set_aside_subscribers(plan)
    return plan


def _header_problem(reader: csv.DictReader) -> ImportProblem | None:
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        return ImportProblem(line=1, value="", reason=f"CSV: {exc}")
    if not fieldnames or "email" not in [(name or "").strip().lower() for name in fieldnames]:
        reason = str(_("The first row must name the columns, with an 'email' column."))
        return ImportProblem(line=1, value="", reason=reason)
    return None


def _sort_row(plan: ImportPlan, seen: set[str], *, number: int, raw: dict) -> None:
    """Add one CSV row to the plan as new, invalid or repeated; a blank row is passed over."""
    record = {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items() if key}
    if not any(record.values()):
        return
    try:
        row = _read_row(number, record)
    except ValidationError as exc:
        value = record.get("email", "")[:300]
        plan.invalid.append(ImportProblem(line=number, value=value, reason=" ".join(exc.messages)))
        return
    if row.email in seen:
        plan.duplicates.append(ImportProblem(line=number, value=row.email, reason=str(_("Repeated in this file."))))
        return
    seen.add(row.email)
    plan.rows.append(row)


def _read_row(number: int, record: dict[str, str]) -> ImportRow:
    email = canonical_email(record.get("email", ""))
    named = (record.get("categories") or Category.BACKEND).replace(";", " ").replace(",", " ").split()
    categories = tuple(sorted(set(named)))
    frequency = record.get("frequency") or Frequency.DAILY
    clean_choices(categories=categories, frequency=frequency)
    language = record.get("language") or settings.LANGUAGE_CODE
    if language not in [code for code, _name in settings.LANGUAGES]:
        raise ValidationError(_("Unknown language: %(language)s") % {"language": language})
    return ImportRow(line=number, email=email, categories=categories, frequency=frequency, language=language)


def _set_aside_subscribers(plan: ImportPlan) -> None:
    """Move the rows of addresses that are subscribers already to the duplicates."""
    existing = _existing_emails([row.email for row in plan.rows])
    for row in [row for row in plan.rows if row.email in existing]:
        plan.rows.remove(row)
        plan.duplicates.append(ImportProblem(line=row.line, value=row.email, reason=str(_("Already a subscriber."))))
    plan.duplicates.sort(key=lambda problem: problem.line)


def _existing_emails(emails: list[str]) -> set[str]:
    found: set[str] = set()
    emails = sorted(set(emails))
    for start in range(0, len(emails), 1000):
        found.update(Subscriber.objects.filter(email__in=emails[start : start + 1000]).values_list("email", flat=True))
    return found


@dataclass(frozen=True)
class ImportReport:
    added: int
    verification_mails: int
    skipped: int


def import_subscribers(*, plan: ImportPlan, already_consented: bool) -> ImportReport:
    """Add the new rows of a plan.

    With `already_consented` (the admin states these people agreed to receive
    DailyQ elsewhere) they become active at once; otherwise each gets a
    verification mail and stays pending until they confirm. Addresses that
    became subscribers since the plan was made are skipped, never changed.
    """
    now = timezone.now()
    added = mails = skipped = 0
    for row in plan.rows:
        with transaction.atomic():
            subscriber, created = Subscriber.objects.get_or_create(
                email=row.email,
                defaults={"frequency": row.frequency, "language": row.language},
            )
            if not created:
                skipped += 1
                continue
            added += 1
            if already_consented:
                subscriber.status = Subscriber.Status.ACTIVE
                subscriber.consented_at = subscriber.confirmed_at = now
                subscriber.save(update_fields=["status", "consented_at", "confirmed_at", "updated_at"])
                for category in row.categories:
                    activate_subscription(subscriber=subscriber, category=category, now=now)
            else:
                open_verification(
                    subscriber=subscriber,
                    categories=list(row.categories),
                    frequency=row.frequency,
                    language=row.language,
                )
                mails += 1
    return ImportReport(added=added, verification_mails=mails, skipped=skipped)

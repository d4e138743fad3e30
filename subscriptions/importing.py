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
from subscriptions.services import _activate, _clean_choices, _open_verification

CSV_COLUMNS = ("email", "categories", "frequency", "language")
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
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        plan.invalid.append(ImportProblem(line=1, value="", reason=f"CSV: {exc}"))
        return plan
    if not fieldnames or "email" not in [(name or "").strip().lower() for name in fieldnames]:
        plan.invalid.append(
            ImportProblem(
                line=1, value="", reason=str(_("The first row must name the columns, with an 'email' column."))
            )
        )
        return plan
    seen: set[str] = set()
    languages = [code for code, _name in settings.LANGUAGES]
    try:
        for number, raw in enumerate(reader, start=2):
            if number - 1 > CSV_MAX_ROWS:
                plan.invalid.append(
                    ImportProblem(
                        line=number,
                        value="",
                        reason=str(_("Only the first %(max)d rows are read.") % {"max": CSV_MAX_ROWS}),
                    )
                )
                break
            record = {(key or "").strip().lower(): (value or "").strip() for key, value in raw.items() if key}
            email_value = record.get("email", "")
            if not any(record.values()):
                continue
            try:
                email = canonical_email(email_value)
                categories = tuple(
                    sorted(
                        set((record.get("categories") or Category.BACKEND).replace(";", " ").replace(",", " ").split())
                    )
                )
                frequency = record.get("frequency") or Frequency.DAILY
                _clean_choices(categories, frequency)
                language = record.get("language") or settings.LANGUAGE_CODE
                if language not in languages:
                    raise ValidationError(_("Unknown language: %(language)s") % {"language": language})
            except ValidationError as exc:
                plan.invalid.append(ImportProblem(line=number, value=email_value[:300], reason=" ".join(exc.messages)))
                continue
            if email in seen:
                plan.duplicates.append(ImportProblem(line=number, value=email, reason=str(_("Repeated in this file."))))
                continue
            seen.add(email)
            plan.rows.append(
                ImportRow(line=number, email=email, categories=categories, frequency=frequency, language=language)
            )
    except csv.Error as exc:
        plan.invalid.append(ImportProblem(line=reader.line_num, value="", reason=f"CSV: {exc}"))
    existing = _existing_emails([row.email for row in plan.rows])
    for row in [row for row in plan.rows if row.email in existing]:
        plan.rows.remove(row)
        plan.duplicates.append(ImportProblem(line=row.line, value=row.email, reason=str(_("Already a subscriber."))))
    plan.duplicates.sort(key=lambda problem: problem.line)
    return plan


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
                    _activate(subscriber, category, now=now)
            else:
                _open_verification(
                    subscriber, categories=list(row.categories), frequency=row.frequency, language=row.language
                )
                mails += 1
    return ImportReport(added=added, verification_mails=mails, skipped=skipped)

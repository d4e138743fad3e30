"""Subscribers as CSV: the export an admin downloads, and the import an admin uploads
(read and sort the rows: plan; then add them). What one exports, the other
reads back as it was: status, categories, frequency, language, each
category's next question and the dates (docs/architecture.md, "CSV").
"""

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailer.gate import Gate
from subscriptions import tracks
from subscriptions.addresses import canonical_email
from subscriptions.models import Frequency, Subscriber, Verification
from subscriptions.services import activate_subscription, open_verification

CSV_MAX_ROWS = 10_000
# The export's columns; the import reads them all but last_mail_at (it follows from the sends).
CSV_COLUMNS = [
    "email", "status", "categories", "frequency", "language", "created_at", "confirmed_at", "unsubscribed_at",
    "last_mail_at", "consented_at", "next_positions",
]  # fmt: skip
_DATES = ("created_at", "confirmed_at", "unsubscribed_at", "consented_at")


# A cell starting with = + - @ is a formula to spreadsheet programs (an email
# local part may start with any of them): the export puts a ' before it, and
# before a cell that starts with ' itself, and the import takes one away again.
_FORMULA_STARTS = {"=", "+", "-", "@", "\t", "\r", "'"}


def defuse_cell(value: str) -> str:
    return "'" + value if value[:1] in _FORMULA_STARTS else value


def _restore_cell(value: str) -> str:
    return value[1:] if value[:1] == "'" and value[1:2] in _FORMULA_STARTS else value


def export_rows(subscribers: Iterable[Subscriber]) -> Iterator[list[str]]:
    """The CSV rows (header first) of `subscribers` (with last_mail_at, subscriptions and verifications prefetched).

    Categories: the active ones of an active subscriber, what a pending one
    asked for (their newest request, with its frequency and language), none
    for one who unsubscribed.
    """
    yield list(CSV_COLUMNS)
    for subscriber in subscribers:
        active = sorted((s for s in subscriber.subscriptions.all() if s.is_active), key=lambda s: s.category)
        frequency, language = subscriber.frequency, subscriber.language
        if subscriber.status == Subscriber.Status.PENDING:
            # What they asked for: confirming makes it theirs.
            requests = sorted(subscriber.verifications.all(), key=lambda v: (v.created_at, v.id))
            categories = sorted(requests[-1].categories) if requests else []
            if requests:
                frequency, language = requests[-1].frequency, requests[-1].language
        else:
            categories = [s.category for s in active]
        yield [
            subscriber.email,
            subscriber.status,
            ";".join(categories),
            frequency,
            language,
            _iso(subscriber.created_at),
            _iso(subscriber.confirmed_at),
            _iso(subscriber.unsubscribed_at),
            _iso(getattr(subscriber, "last_mail_at", None)),
            _iso(subscriber.consented_at),
            ";".join(f"{s.category}:{s.next_position}" for s in active),
        ]


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


@dataclass(frozen=True)
class ImportRow:
    line: int
    email: str
    categories: tuple[str, ...]
    frequency: str
    language: str
    # "" when the file does not say: pending with a verification mail, or
    # active on the admin's statement of consent.
    status: str = ""
    dates: tuple[tuple[str, datetime], ...] = ()  # (field, when) for the dates the file gives
    positions: tuple[tuple[str, int], ...] = ()  # (category, next question position)

    @property
    def mailed(self) -> bool:
        """Whether the row asks for mail (and so needs categories): not an unsubscribed reader's."""
        return self.status != Subscriber.Status.UNSUBSCRIBED


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
    (slugs of offered tracks, separated by ; or space), frequency
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
    record = {(key or "").strip().lower(): _restore_cell(value or "").strip() for key, value in raw.items() if key}
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
    status = record.get("status", "").lower()
    if status not in ["", *Subscriber.Status.values]:
        raise ValidationError(
            _("Unknown status: %(status)s (active, pending or unsubscribed)") % {"status": record["status"]}
        )
    categories = tuple(sorted(set(_split(record.get("categories", "")))))
    offered = tracks.offered_slugs()
    unknown = [category for category in categories if category not in offered]
    if unknown:
        raise ValidationError(
            _("Unknown or retired category: %(category)s (offered: %(offered)s)")
            % {"category": ", ".join(unknown), "offered": ", ".join(offered)}
        )
    if not categories and status != Subscriber.Status.UNSUBSCRIBED:
        raise ValidationError(
            _("No categories: name one or more of %(offered)s (separated by ;).") % {"offered": ", ".join(offered)}
        )
    frequency = record.get("frequency") or Frequency.DAILY
    if frequency not in Frequency.values:
        raise ValidationError(_("Unknown frequency: %(frequency)s (daily or weekly)") % {"frequency": frequency})
    language = record.get("language") or settings.LANGUAGE_CODE
    if language not in [code for code, _name in settings.LANGUAGES]:
        raise ValidationError(_("Unknown language: %(language)s") % {"language": language})
    return ImportRow(
        line=number,
        email=email,
        categories=categories if status != Subscriber.Status.UNSUBSCRIBED else (),
        frequency=frequency,
        language=language,
        status=status,
        dates=tuple((name, when) for name in _DATES if (when := _read_date(record, name))),
        positions=_read_positions(record.get("next_positions", ""), categories),
    )


def _split(value: str) -> list[str]:
    return value.replace(";", " ").replace(",", " ").split()


def _read_date(record: dict[str, str], name: str) -> datetime | None:
    value = record.get(name, "")
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or timezone.is_naive(when):
        raise ValidationError(
            _("%(column)s is not a date and time with its offset, as the export writes it: %(value)s")
            % {"column": name, "value": value[:40]}
        )
    return when


def _read_positions(value: str, categories: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    positions = {}
    for item in _split(value):
        category, _colon, number = item.partition(":")
        if category not in categories or not number.isdigit() or int(number) < 1:
            raise ValidationError(
                _("next_positions: %(item)s is not category:position for one of the row's categories")
                % {"item": item[:40]}
            )
        positions[category] = int(number)
    return tuple(sorted(positions.items()))


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
    # Rows that got no verification mail because the gate refuses their
    # address (suppressed, or the SES sandbox): reason -> count.
    not_mailed: dict[str, int] = field(default_factory=dict)


def import_subscribers(*, plan: ImportPlan, already_consented: bool) -> ImportReport:
    """Add the new rows of a plan, each as the file says.

    An unsubscribed row stays unsubscribed (no subscriptions, no mail).
    With `already_consented` (the admin states these people agreed to receive
    DailyQ elsewhere) a row whose status is active or not given becomes
    active at once; every other row stays pending and gets a verification
    mail, unless the gate refuses the address (suppressed, or not verified in
    the SES sandbox): those are counted in the report, not mailed. Dates the
    file gives are kept. Addresses that became subscribers since the plan
    was made are skipped, never changed.
    """
    now = timezone.now()
    refused = _refused_addresses(
        [row.email for row in plan.rows if row.mailed and not (already_consented and row.status != "pending")]
    )
    added = mails = skipped = 0
    not_mailed: dict[str, int] = {}
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
            dates = dict(row.dates)
            if not row.mailed:
                _set(subscriber, **({"status": Subscriber.Status.UNSUBSCRIBED, "unsubscribed_at": now} | dates))
            elif already_consented and row.status != Subscriber.Status.PENDING:
                confirmed = dates.get("confirmed_at", now)
                _set(
                    subscriber,
                    **(
                        {"status": Subscriber.Status.ACTIVE, "confirmed_at": confirmed, "consented_at": confirmed}
                        | dates
                    ),
                )
                positions = dict(row.positions)
                for category in row.categories:
                    subscription = activate_subscription(subscriber=subscriber, category=category, now=now)
                    if category in positions:
                        subscription.next_position = positions[category]
                        subscription.save(update_fields=["next_position"])
            else:
                _set(subscriber, **dates)
                reason = refused.get(row.email)
                verification = open_verification(
                    subscriber=subscriber,
                    categories=list(row.categories),
                    frequency=row.frequency,
                    language=row.language,
                    send=not reason,
                )
                if reason:
                    not_mailed[reason] = not_mailed.get(reason, 0) + 1
                else:
                    mails += 1
                if "created_at" in dates:
                    Verification.objects.filter(id=verification.id).update(created_at=dates["created_at"])
    return ImportReport(added=added, verification_mails=mails, skipped=skipped, not_mailed=not_mailed)


def _set(subscriber: Subscriber, **values) -> None:
    """Write the given fields; created_at too, which the row's creation set to now."""
    for name, value in values.items():
        setattr(subscriber, name, value)
    if values:
        Subscriber.objects.filter(id=subscriber.id).update(**values)


def _refused_addresses(emails: list[str]) -> dict[str, str]:
    """Those of `emails` the mail gate would refuse, with why (one question to SES for all)."""
    if not emails:
        return {}
    try:
        gate = Gate.check(emails)
    except (ClientError, BotoCoreError):
        return {}  # SES unreachable: the mails are queued, and their tasks retry
    return {email: reason for email in emails if (reason := gate.refusal(email))}

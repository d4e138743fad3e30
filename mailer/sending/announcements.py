"""Announcements: a notice mailed once to an audience, as a send run of its own kind.

An announcement's run goes through the daily send's machinery (runs.open_run:
quota cap, batches; batch.py: claims, the gate, pacing, outcomes, recovery),
with one delivery per person, not per subscription. The admin and
`manage.py announce` call the functions here.
"""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Min
from django.urls import reverse
from django.utils import timezone

from mailer import selectors
from mailer.emails import absolute_url, email_message, personalise, plain_text, render_shared_email
from mailer.gate import MailResult, send_built_email
from mailer.markdown import render_markdown
from mailer.models import Announcement, Delivery, SendRun
from mailer.sending.runs import finish_run_if_complete, open_run
from subscriptions.links import ReaderLinks

logger = logging.getLogger(__name__)

# The reader a preview is built for: links signed for no one's id.
PREVIEW_READER_ID = 0
PREVIEW_ADDRESS = "reader@example.com"


class AnnouncementStarted(Exception):
    """The announcement has a run already: its text, audience and time are fixed."""


def create_announcement(
    *, subject: str, body_md: str, category: str = "", frequency: str = "", language: str = ""
) -> Announcement:
    """A new announcement, not sent. Raises ValidationError for a bad field (an unknown category, a long body)."""
    announcement = Announcement(
        subject=subject, body_md=body_md, category=category or "", frequency=frequency or "", language=language or ""
    )
    announcement.full_clean()
    announcement.save()
    return announcement


def announce(
    *,
    subject: str,
    body_md: str,
    category: str = "",
    frequency: str = "",
    language: str = "",
    now: datetime | None = None,
) -> SendRun:
    """Send an announcement now (`manage.py announce`).

    The same subject, body and audience again is the same announcement: a
    command run twice (a retry after a lost terminal) sends nothing twice.
    """
    fields = {
        "subject": subject, "body_md": body_md,
        "category": category or "", "frequency": frequency or "", "language": language or "",
    }  # fmt: skip
    announcement = Announcement.objects.filter(**fields).order_by("id").first() or create_announcement(**fields)
    if announcement.scheduled_at is None:
        announcement = schedule_announcement(announcement=announcement, at=now or timezone.now())
    return start_announcement(announcement_id=announcement.id, now=now)


def is_started(announcement: Announcement) -> bool:
    return SendRun.objects.filter(kind=SendRun.Kind.ANNOUNCEMENT, announcement=announcement).exists()


def schedule_announcement(*, announcement: Announcement, at: datetime) -> Announcement:
    """Send `announcement` at `at` (beat's tick starts it); a time already past means at the next tick."""
    with transaction.atomic():
        announcement = Announcement.objects.select_for_update().get(id=announcement.id)
        if is_started(announcement):
            raise AnnouncementStarted(announcement.id)
        announcement.scheduled_at = at
        announcement.save(update_fields=["scheduled_at", "updated_at"])
    return announcement


def send_announcement_now(*, announcement: Announcement, now: datetime | None = None) -> Announcement:
    """Schedule it for now and start it on a worker at once; beat's tick would start it too, once."""
    from mailer.tasks import start_announcement as start_announcement_task

    with transaction.atomic():
        announcement = schedule_announcement(announcement=announcement, at=now or timezone.now())
        transaction.on_commit(lambda: start_announcement_task.delay(announcement_id=announcement.id))
    return announcement


def start_due_announcements(*, now: datetime) -> list[int]:
    """Beat's tick: start the announcements whose time has come and whose run has not begun sending."""
    begun = SendRun.objects.filter(kind=SendRun.Kind.ANNOUNCEMENT).exclude(status=SendRun.Status.CREATED)
    due = (
        Announcement.objects.filter(scheduled_at__lte=now)
        .exclude(id__in=begun.values("announcement_id"))
        .values_list("id", flat=True)
    )
    started = []
    for announcement_id in due:
        start_announcement(announcement_id=announcement_id, now=now)
        started.append(announcement_id)
    return started


def start_announcement(*, announcement_id: int, now: datetime | None = None) -> SendRun:
    """Create the announcement's run and one delivery per person of its audience, then fan them out.

    Safe to call any number of times, at once or in turn (a double click,
    beat and the "send now" task): the run is unique per announcement, a
    delivery unique per run and person, and only the call that moves the run
    from created to sending enqueues anything.
    """
    now = now or timezone.now()
    announcement = Announcement.objects.get(id=announcement_id)
    lookup = {"kind": SendRun.Kind.ANNOUNCEMENT, "announcement": announcement}
    try:
        with transaction.atomic():
            run, _created = SendRun.objects.get_or_create(
                **lookup, defaults={"day": timezone.localdate(now), "cutoff": now}
            )
    except IntegrityError:  # a concurrent start created it first
        run = SendRun.objects.get(**lookup)
    with transaction.atomic():
        run = SendRun.objects.select_for_update().get(id=run.id)
        if run.status != SendRun.Status.CREATED:
            return run
        total = _create_deliveries(run, announcement)
        open_run(run, total=total)
    logger.info("announcement %s: %d deliveries", announcement.id, total)
    finish_run_if_complete(run_id=run.id)  # an empty audience is done at once
    return run


def _create_deliveries(run: SendRun, announcement: Announcement) -> int:
    """One row per person: their first subscription in the audience stands for them (erasure finds it)."""
    people = (
        selectors.announcement_audience(announcement=announcement, cutoff=run.cutoff)
        .values("subscriber_id")
        .annotate(first=Min("id"))
        .order_by("subscriber_id")
    )
    rows: list[Delivery] = []
    for person in people.iterator(chunk_size=5000):
        rows.append(Delivery(run=run, subscriber_id=person["subscriber_id"], subscription_id=person["first"]))
        if len(rows) >= 5000:
            Delivery.objects.bulk_create(rows, ignore_conflicts=True)
            rows = []
    if rows:
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    return Delivery.objects.filter(run=run).count()


# --- The mail -------------------------------------------------------------------------


def build_announcement_email(
    *,
    announcement: Announcement,
    subscriber_id: int,
    email: str,
    language: str,
    connection=None,
    test: bool = False,
    reader_links: ReaderLinks | None = None,
    link_generation: int | None = None,
):
    """A reader's copy of `announcement`, with their manage and unsubscribe links and RFC 8058 headers.

    Rendered once per announcement and language, then personalised. A `test`
    mail links to the landing page instead and carries no List-Unsubscribe.
    The unsubscribe link ends every subscription: an announcement is to the person.
    """
    shared = render_shared_email(
        "announcement",
        lambda: announcement_context(announcement),
        language=language,
        personal=("manage_url", "unsubscribe_url"),
        key=(announcement.id, announcement.subject, announcement.body_md),
    )
    if test:
        landing = absolute_url(reverse("subscriptions:landing"))
        links, headers = {"manage_url": landing, "unsubscribe_url": landing}, {}
    else:
        routed = reader_links or ReaderLinks.routed()
        unsubscribe_link = routed.unsubscribe_url(subscriber_id, generation=link_generation)
        links = {
            "manage_url": routed.manage_url(subscriber_id, generation=link_generation),
            "unsubscribe_url": unsubscribe_link,
        }
        headers = {"List-Unsubscribe": f"<{unsubscribe_link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return email_message(personalise(shared, links), to=email, connection=connection, headers=headers)


def announcement_context(announcement: Announcement) -> dict:
    body_html = render_markdown(announcement.body_md)
    return {
        "subject": announcement.subject,
        "body_html": body_html,
        "body_md": announcement.body_md,
        "preheader": plain_text(body_html),
    }


def preview_announcement(*, announcement: Announcement, language: str):
    """The announcement as a reader in `language` gets it (headers included), built for no real reader."""
    return build_announcement_email(
        announcement=announcement,
        subscriber_id=PREVIEW_READER_ID,
        email=PREVIEW_ADDRESS,
        language=language,
        link_generation=0,
    )


def send_test_announcement(*, announcement: Announcement, to: str, language: str) -> MailResult:
    """Mail a test copy to `to` through the gate; its links act on no one's subscription."""

    def build():
        message = build_announcement_email(
            announcement=announcement, subscriber_id=PREVIEW_READER_ID, email=to, language=language, test=True
        )
        message.subject = f"[TEST] {message.subject}"
        return message

    return send_built_email(kind="announcement", to=to, build=build)

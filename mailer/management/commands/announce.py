from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from mailer import selectors
from mailer.management.commands.send_daily import Command as SendDailyCommand
from mailer.models import Announcement, SendRun
from mailer.sending import announcements
from subscriptions.models import Frequency


class Command(SendDailyCommand):
    help = (
        "Mail an announcement (a Markdown file) to every active reader, or to those of a category, frequency "
        "or language, once per person, through the daily send's machinery. The same announcement again "
        "sends nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--subject", required=True)
        parser.add_argument("--body-file", required=True, type=Path, help="the body, Markdown (UTF-8)")
        parser.add_argument("--category", help="a track's slug (admin > Tracks); default: every track")
        parser.add_argument("--frequency", choices=Frequency.values)
        parser.add_argument("--language", help="a site language code (ko, en)")
        parser.add_argument("--dry-run", action="store_true", help="say how many people it would reach; send nothing")
        parser.add_argument("--wait", action="store_true", help="show progress until the run has finished")
        parser.add_argument("--timeout", type=int, default=3600, help="with --wait: give up after this many seconds")

    def handle(self, *args, subject, body_file, category, frequency, language, dry_run, wait, timeout, **options):
        try:
            body = body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {body_file}: {exc}") from exc
        fields = {
            "subject": subject, "body_md": body,
            "category": category or "", "frequency": frequency or "", "language": language or "",
        }  # fmt: skip
        draft = Announcement(**fields)
        try:
            draft.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        if dry_run:
            size = selectors.audience_size(announcement=draft)
            self.stdout.write(f"Dry run: the announcement would go to {size} people (before suppressions).")
            self._say_if_paused("an announcement started now would wait until an admin resumes sending")
            return
        run = announcements.announce(**fields)
        self.stdout.write(
            f"Announcement #{run.announcement_id}: {run.total} deliveries, {run.get_status_display().lower()}."
        )
        if run.status != SendRun.Status.DONE:
            self._say_if_paused("its deliveries wait until an admin resumes sending (admin > Sending state)")
        if wait:
            self._wait(run, timeout=timeout)

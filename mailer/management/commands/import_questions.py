from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mailer.services import import_questions
from subscriptions.models import Category


class Command(BaseCommand):
    help = (
        "Import interview questions from a folder: Markdown files with YAML front matter "
        "(title, order), or a toc.md listing '- [Title](contents/x.md)'. Re-importing updates."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--category", required=True, choices=Category.values)
        parser.add_argument("--source", help="name that keys these questions (default: <category>:<folder name>)")
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")

    def handle(self, *args, path, category, source, dry_run, **options):
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder.")
        report = import_questions(path=path, category=category, source=source, dry_run=dry_run)
        prefix = "Would add" if dry_run else "Added"
        self.stdout.write(
            f"{prefix} {len(report.added)}, changed {len(report.changed)}, "
            f"unchanged {len(report.unchanged)}, skipped {len(report.problems)} malformed."
        )
        for name in report.added:
            self.stdout.write(f"  + {name}")
        for name in report.changed:
            self.stdout.write(f"  ~ {name}")
        for problem in report.problems:
            self.stderr.write(f"  ! {problem.relative_path}: {problem.message}")
        if report.problems and not (report.added or report.changed or report.unchanged):
            raise CommandError("Nothing could be imported.")

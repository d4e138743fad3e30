from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mailer.questions import CONTENT_LICENSES, import_questions
from mailer.selectors import TEXT_LANGUAGES


class Command(BaseCommand):
    help = (
        "Import interview questions from a folder: Markdown files with YAML front matter "
        "(title, order), or a toc.md listing '- [Title](contents/x.md)'. Re-importing updates. "
        "Lists every file the site shows differently from its text."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--category", required=True, help="the slug of a track (admin > Tracks)")
        parser.add_argument("--source", help="name that keys these questions (default: <category>:<folder name>)")
        parser.add_argument(
            "--license",
            default="",
            help=(
                "license to show under each answer, as the source states it: an SPDX identifier "
                f"({', '.join(CONTENT_LICENSES)}) or a name with --license-url. Default: none shown."
            ),
        )
        parser.add_argument("--license-url", default="", help="address of the license's text")
        parser.add_argument(
            "--attribution", default="", help="who to credit under each answer, as the source asks (e.g. its authors)"
        )
        parser.add_argument(
            "--language",
            default="ko",
            choices=TEXT_LANGUAGES,
            help=(
                "language of the files' text (default ko): en adds or updates the English text of the "
                "questions the files match, and adds the others as English-only questions"
            ),
        )
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")

    def handle(self, *args, path, category, source, license, license_url, attribution, language, dry_run, **options):
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder.")
        try:
            report = import_questions(
                path=path,
                category=category,
                source=source,
                dry_run=dry_run,
                license=license,
                license_url=license_url,
                attribution=attribution,
                language=language,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        prefix = "Would add" if dry_run else "Added"
        self.stdout.write(
            f"{prefix} {len(report.added)}, changed {len(report.changed)}, "
            f"unchanged {len(report.unchanged)}, skipped {len(report.problems)} malformed; "
            f"{len(report.rendering_changes)} shown differently from their files."
        )
        for name in report.added:
            self.stdout.write(f"  + {name}")
        for name in report.changed:
            self.stdout.write(f"  ~ {name}")
        for name, changes in report.rendering_changes.items():
            for change in changes:
                self.stdout.write(f"  * {name}: {change}")
        for problem in report.problems:
            self.stderr.write(f"  ! {problem.relative_path}: {problem.message}")
        if report.problems and not (report.added or report.changed or report.unchanged):
            raise CommandError("Nothing could be imported.")

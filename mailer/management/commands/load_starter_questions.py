from django.core.management.base import BaseCommand

from mailer.questions import load_starter_questions


class Command(BaseCommand):
    help = "Add DailyQ's bundled starter questions. Idempotent: questions already loaded are left as they are."

    def handle(self, *args, **options):
        for folder, report in load_starter_questions().items():
            self.stdout.write(
                f"{folder}: added {len(report.added)}, given this language {len(report.changed)}, "
                f"already there {len(report.unchanged)}, "
                f"malformed {len(report.problems)}, shown differently from their files {len(report.rendering_changes)}"
            )
            for name, changes in report.rendering_changes.items():
                for change in changes:
                    self.stdout.write(f"  * {name}: {change}")
            for problem in report.problems:
                self.stderr.write(f"  ! {problem.relative_path}: {problem.message}")

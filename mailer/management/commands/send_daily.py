import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from mailer import schedule, selectors, stats
from mailer.models import SendRun
from mailer.sending import runs


class Command(BaseCommand):
    help = (
        "Start a day's send, as Celery beat does at the send schedule's time (for system cron). "
        "Safe to run again: a day is sent once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--date", dest="day", type=date.fromisoformat, help="send day, YYYY-MM-DD (default: today, KST)"
        )
        parser.add_argument(
            "--scheduled",
            action="store_true",
            help="do what beat does every minute: start today's run if the send schedule says it is time "
            "(for cron: * * * * *)",
        )
        parser.add_argument("--dry-run", action="store_true", help="report what would be sent; send nothing")
        parser.add_argument("--wait", action="store_true", help="show progress until the run has finished")
        parser.add_argument("--timeout", type=int, default=3600, help="with --wait: give up after this many seconds")

    def handle(self, *args, day, scheduled, dry_run, wait, timeout, **options):
        if scheduled:
            if day or dry_run or wait:
                raise CommandError("--scheduled checks today's schedule: it takes no --date, --dry-run or --wait.")
            tick = schedule.check_send_schedule(now=timezone.now())
            self.stdout.write(f"{tick.day:%Y-%m-%d}: {tick.outcome}.")
            self._say_if_paused("runs start, and their deliveries wait until an admin resumes sending")
            return
        day = day or timezone.localdate()
        if dry_run:
            self._print_plan(runs.plan_daily_send(day=day))
            return
        run = runs.start_daily_send(day=day)
        if run is None:
            self.stdout.write(f"{day:%Y-%m-%d} ({day:%A}) is not a send day: nothing to send.")
            return
        self.stdout.write(f"Send run {run.day:%Y-%m-%d}: {run.total} deliveries, {run.get_status_display().lower()}.")
        if run.status != SendRun.Status.DONE:
            self._say_if_paused("its deliveries wait until an admin resumes sending (admin > Sending state)")
        if wait:
            self._wait(run, timeout=timeout)

    def _print_plan(self, plan):
        if not plan.send_day:
            self.stdout.write(f"{plan.day:%Y-%m-%d} ({plan.day:%A}) is not a send day: nothing would be sent.")
            return
        self.stdout.write(f"Dry run for {plan.day:%Y-%m-%d}: {plan.total} deliveries would be created.")
        for key, count in plan.due.items():
            self.stdout.write(f"  {key}: {count}")
        for category in plan.without_questions:
            self.stdout.write(f"  ! {category} has no published questions: its deliveries would be skipped")
        if SendRun.objects.filter(kind=SendRun.Kind.DAILY, day=plan.day).exists():
            self.stdout.write("  (this day already has a run: starting it again sends nothing twice)")
        self._say_if_paused("a run started now would wait until an admin resumes sending (admin > Sending state)")

    def _say_if_paused(self, consequence: str) -> bool:
        state = stats.sending_state()
        if state is None or not state.paused:
            return False
        reason = f" ({state.reason})" if state.reason else ""
        self.stdout.write(f"Sending is PAUSED{reason}: {consequence}.")
        return True

    def _wait(self, run, *, timeout):
        deadline = time.monotonic() + timeout
        interactive = self.stdout.isatty()
        last_line = ""
        while True:
            run.refresh_from_db()
            completion = selectors.run_completion(run=run)
            line = self._bar(completion.finished, run.total, completion.counts)
            if run.status != SendRun.Status.DONE and selectors.sending_paused():
                line += "  PAUSED: waiting for an admin to resume sending"
            if interactive:
                self.stdout.write("\r" + line, ending="")
            elif line != last_line:
                self.stdout.write(line)
            last_line = line
            if run.status == SendRun.Status.DONE:
                break
            if time.monotonic() > deadline:
                raise CommandError(f"\nStill sending after {timeout} s; the workers go on. Progress is in the admin.")
            time.sleep(1)
        if interactive:
            self.stdout.write("")
        self.stdout.write(f"Done in {run.duration}." if run.duration else "Done.")

    @staticmethod
    def _bar(finished, total, progress, width=30):
        filled = width if total == 0 else int(width * finished / total)
        return (
            f"[{'#' * filled}{'-' * (width - filled)}] {finished}/{total}  "
            f"sent {progress['sent']}  failed {progress['failed']}  skipped {progress['skipped']}"
        )

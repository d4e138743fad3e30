import json
from dataclasses import asdict

from django.core.management.base import BaseCommand

from mailer.sending.recovery import sweep_sends


class Command(BaseCommand):
    help = (
        "What Celery beat does every five minutes: settle the deliveries claimed by lost workers, "
        "confirm or send again those of unknown fate (with SES Send events), and queue again the "
        "pending deliveries of runs that stopped moving."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the counts as one JSON object")

    def handle(self, *args, **options):
        report = sweep_sends()
        if options["json"]:
            self.stdout.write(json.dumps(asdict(report)))
            return
        self.stdout.write(
            f"Lost workers' claims: {report.recovered} outcomes recovered from their journals, "
            f"{report.unknown} listed as fate unknown, {report.returned} never started and queued again. "
            f"Fate unknown: {report.confirmed} confirmed sent by SES Send events, {report.resent} sent again. "
            f"{report.runs_requeued} stalled runs queued again."
        )

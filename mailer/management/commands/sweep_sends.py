from django.core.management.base import BaseCommand

from mailer.services import requeue_stalled_runs, sweep_expired_claims


class Command(BaseCommand):
    help = (
        "What Celery beat does every five minutes: list deliveries claimed by lost workers as "
        "'fate unknown', and queue again the pending deliveries of runs that stopped moving."
    )

    def handle(self, *args, **options):
        swept = sweep_expired_claims()
        requeued = requeue_stalled_runs()
        self.stdout.write(f"{swept} expired claims listed as fate unknown; {requeued} stalled runs queued again.")

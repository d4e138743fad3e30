from django.core.management.base import BaseCommand

from mailer.services import sweep_sends


class Command(BaseCommand):
    help = (
        "What Celery beat does every five minutes: list deliveries claimed by lost workers as "
        "'fate unknown', and queue again the pending deliveries of runs that stopped moving."
    )

    def handle(self, *args, **options):
        swept, requeued = sweep_sends()
        self.stdout.write(f"{swept} expired claims listed as fate unknown; {requeued} stalled runs queued again.")

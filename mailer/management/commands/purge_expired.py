from django.core.management.base import BaseCommand

from mailer.retention import purge_expired, retention


class Command(BaseCommand):
    help = (
        "Delete delivery rows and SES events past their retention and dead verifications "
        "(what beat does daily; DELIVERY_RETENTION_DAYS, SES_EVENT_RETENTION_DAYS, VERIFICATION_RETENTION_DAYS)."
    )

    def handle(self, *args, **options):
        kept = retention()
        report = purge_expired()
        self.stdout.write(
            f"Deleted {report.deliveries} deliveries older than {kept.deliveries_days} days, "
            f"{report.events} SES events older than {kept.events_days} days and "
            f"{report.verifications} verifications dead for more than {kept.verifications_days} days."
        )

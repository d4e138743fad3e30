from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailer import pacing
from mailer.ses import account_status, verified_identities


class Command(BaseCommand):
    help = "Show what SES says about this account: sandbox or not (and how that was decided), quota, rate, identities."

    def handle(self, *args, **options):
        try:
            status = account_status(refresh=True)
            identities = verified_identities()
        except Exception as exc:
            raise CommandError(f"SES does not answer: {exc}") from exc
        endpoint = settings.AWS_SES_REGION_ENDPOINT_URL or f"AWS SES, region {settings.AWS_SES_REGION_NAME}"
        self.stdout.write(f"Endpoint: {endpoint}")
        self.stdout.write(f"Sandbox: {'yes' if status.sandbox else 'no'} (decided by {status.decided_by})")
        if status.unlimited:
            self.stdout.write(f"Quota: {status.sent_last_24_hours:g} sent in the last 24 hours; no 24-hour limit")
        else:
            self.stdout.write(
                f"Quota: {status.sent_last_24_hours:g} sent in the last 24 hours of {status.max_24_hour_send:g} "
                f"({status.remaining_24_hours} left)"
            )
        self.stdout.write(f"Max send rate: {status.max_send_rate:g}/s; DailyQ paces at {pacing.send_rate():g}/s")
        self.stdout.write(f"Verified identities ({len(identities)}):")
        for identity in identities:
            self.stdout.write(f"  {identity}")

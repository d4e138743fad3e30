from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from subscriptions.erasure import erase_address


class Command(BaseCommand):
    help = (
        "Erase everything DailyQ keeps about each address (a privacy request). Deliveries stay as anonymous "
        "rows, SES events without the address, and a suppression as a keyed hash. Erasing again is harmless."
    )

    def add_arguments(self, parser):
        parser.add_argument("addresses", nargs="+", metavar="ADDRESS")

    def handle(self, *args, addresses, **options):
        bad = 0
        for address in addresses:
            try:
                report = erase_address(email=address)
            except ValidationError as exc:
                bad += 1
                self.stderr.write(f"{address}: not erased: {' '.join(exc.messages)}")
                continue
            if not report.found:
                self.stdout.write(f"{address}: nothing kept about this address.")
                continue
            self.stdout.write(
                f"{address}: erased {report.subscribers} subscriber(s); kept without the address "
                f"{report.deliveries} deliveries, {report.events} SES events, "
                f"{report.suppressions} suppression(s) as a hash."
            )
        if bad:
            raise CommandError(f"{bad} of {len(addresses)} addresses were not erased.")

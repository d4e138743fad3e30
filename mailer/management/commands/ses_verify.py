from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailer.local_ses import verify_identities


class Command(BaseCommand):
    help = (
        "Verify addresses or domains on the local SES emulator, to rehearse the sandbox "
        "(SES_SANDBOX=true) with them. Real SES verifies identities in its console."
    )

    def add_arguments(self, parser):
        parser.add_argument("identities", nargs="+", metavar="ADDRESS_OR_DOMAIN")

    def handle(self, *args, identities, **options):
        if not settings.SES_EMULATOR:
            raise CommandError("This run talks to Amazon SES: verify identities in the SES console instead.")
        done = verify_identities(endpoint_url=settings.AWS_SES_REGION_ENDPOINT_URL, identities=identities)
        self.stdout.write(f"Verified on the emulator: {', '.join(done)}")

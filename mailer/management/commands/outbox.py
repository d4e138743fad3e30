from django.core.management.base import BaseCommand, CommandError

from mailer.local_ses import OutboxUnavailable, read_outbox


class Command(BaseCommand):
    help = "Show what the local SES emulator received, newest first."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=20, help="how many messages to list (default 20)")
        parser.add_argument(
            "--show", metavar="ID", help="print one message whole: headers and text part ('latest' for the newest)"
        )
        parser.add_argument("--html", action="store_true", help="with --show, print the HTML part too")

    def handle(self, *args, limit, show, html, **options):
        try:
            messages = read_outbox()
        except OutboxUnavailable as exc:
            raise CommandError(str(exc)) from exc

        if show:
            matches = messages[:1] if show == "latest" else [m for m in messages if m.id == show]
            if not matches:
                raise CommandError(f"No message {show!r} in the local outbox ({len(messages)} messages).")
            self._print_message(matches[0], with_html=html)
            return

        self.stdout.write(f"{len(messages)} message(s) in the local outbox.")
        for message in messages[:limit]:
            self.stdout.write(f"{message.id}  {message.date}\n  to {message.to}\n  {message.subject}")

    def _print_message(self, message, *, with_html):
        for name, value in message.headers:
            self.stdout.write(f"{name}: {value}")
        self.stdout.write("\n--- text part ---")
        self.stdout.write(message.text if message.text is not None else "(none)")
        if with_html:
            self.stdout.write("\n--- HTML part ---")
            self.stdout.write(message.html if message.html is not None else "(none)")

import signal
import socket
import threading
from email.utils import parseaddr

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mailer.local_ses import verify_identities


class Command(BaseCommand):
    help = (
        "Run the local SES emulator (moto's server) with the sender addresses "
        "already verified, until interrupted. `make run` starts it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SES_EMULATOR_HOST, help="address to listen on")
        parser.add_argument("--port", type=int, default=settings.SES_EMULATOR_PORT)
        parser.add_argument(
            "--verify",
            action="append",
            default=[],
            metavar="IDENTITY",
            help="another address or domain to verify (repeatable)",
        )

    def handle(self, *args, host, port, verify, **options):
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise CommandError(
                f"The emulator needs moto's server ({exc}): pip install -r requirements-dev.txt"
            ) from exc

        # moto's server binds in a thread and would wait forever for a port it
        # cannot have; ask first so the error is plain.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise CommandError(
                    f"Cannot listen on {host}:{port} ({exc.strerror}). Is an emulator already running?"
                ) from exc

        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        server.start()
        local_host = "127.0.0.1" if host in {"0.0.0.0", ""} else host  # noqa: S104 (a comparison, not a bind)
        identities = verify_identities(
            endpoint_url=f"http://{local_host}:{port}",
            identities=[parseaddr(settings.DEFAULT_FROM_EMAIL)[1], parseaddr(settings.SERVER_EMAIL)[1], *verify],
        )
        self.stdout.write(
            f"Local SES emulator on http://{host}:{port} (region {settings.AWS_SES_REGION_NAME}); "
            f"verified: {', '.join(identities)}"
        )
        self.stdout.flush()  # under honcho or a pipe, say it now rather than at exit

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        server.stop()
        self.stdout.write("Local SES emulator stopped.")

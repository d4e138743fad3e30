"""What one code mail costs a worker, on the process's SES connection and on a new one per mail.

    .venv/bin/python -m loadtest.mail_cost [--mails 30]

Sends verification mails through the app's own build and send
(mailer.emails.build_email and mailer.ses.send_message, paced through Redis)
to bench.fake_ses.FakeSES on a thread (50 ms per send): first as the app
does (no connection given: the process's one SES connection,
mailer.ses.reusable_connection), then with a new django-ses backend, boto3
Session and client per message, as the app did before, and prints CPU and
wall time per mail. Uses Redis database 6 (the load test's) for the pacer;
needs no database.
"""

import argparse
import os
import secrets
import socketserver
import time
from collections.abc import Callable

from bench.fake_ses import FakeSES


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=30)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args(argv)

    socketserver.StreamRequestHandler.disable_nagle_algorithm = True  # see bench/ses_process.py
    ses = FakeSES(latency=0.05, max_send_rate=100_000.0, max_24_hour_send=10_000_000.0).start()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "mailservice.settings",
            "DJANGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SITE_URL": "http://127.0.0.1:8000",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
            "REDIS_URL": args.redis_url,
            "AWS_SES_REGION_NAME": "us-east-1",
            "AWS_SES_REGION_ENDPOINT_URL": ses.url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SES_SANDBOX": "false",
            "SES_QUOTA_CAP": "false",
            "SES_MAX_SEND_RATE": "1000",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()
    from django.core.mail import get_connection

    from mailer.emails import build_email
    from mailer.ses import send_message

    context = {"code": "123456", "confirm_url": "http://127.0.0.1:8000/confirm/x/", "minutes": 10}

    def measure(label: str, connection: Callable) -> None:
        def build():
            return build_email(
                "verification", to="someone@example.org", language="ko", context=context, connection=connection()
            )

        send_message(build)  # warm: imports, templates, botocore's loaders
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.mails):
            send_message(build)
        cpu = (time.process_time() - cpu) / args.mails * 1000
        wall = (time.perf_counter() - wall) / args.mails * 1000
        print(f"{label:<50} CPU {cpu:6.1f} ms   wall {wall:6.1f} ms per mail")

    try:
        measure("the process's SES connection (what the app does)", lambda: None)
        measure("a new SES connection per mail", get_connection)
        cpu = time.process_time()
        for _ in range(args.mails):
            build_email("verification", to="someone@example.org", language="ko", context=context)
        print(f"{'building the message alone':<50} CPU {(time.process_time() - cpu) / args.mails * 1000:6.1f} ms")
    finally:
        ses.stop()


if __name__ == "__main__":
    main()

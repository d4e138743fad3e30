"""The ceiling: the same messages sent through django-ses with nothing else.

One process of `--threads` sender threads, each with its own open
django_ses.SESBackend (one boto3 client, kept for the whole run). Each
message is a fresh EmailMultiAlternatives with the subject, text, HTML and
headers of a real rendered daily mail (read from `--template`, a JSON list
of them, cycled), to a distinct address. No database, no Celery, no
template rendering, no pacing.

The harness starts W of these processes; each prints "ready" once Django is
set up and its clients are open, waits for a line on stdin, sends its
`--count` messages, and prints one JSON line with its figures.

    python -m bench.ceiling --count 5000 --threads 16 --template var/bench/mail.json
"""

import argparse
import json
import os
import sys
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--offset", type=int, default=0, help="first recipient number")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives
    from django_ses import SESBackend

    with open(args.template, encoding="utf-8") as handle:
        templates = json.load(handle)
    backends = [SESBackend() for _ in range(args.threads)]
    for backend in backends:
        backend.open()

    lock = threading.Lock()
    next_number = iter(range(args.offset, args.offset + args.count))
    latencies: list[float] = []
    errors: list[str] = []

    def sender(backend):
        mine = []
        while True:
            with lock:
                number = next(next_number, None)
            if number is None:
                break
            mail = templates[number % len(templates)]
            message = EmailMultiAlternatives(
                subject=mail["subject"],
                body=mail["text"],
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[f"reader{number}@bench.example"],
                headers=mail["headers"],
                connection=backend,
            )
            message.attach_alternative(mail["html"], "text/html")
            started = time.perf_counter()
            try:
                message.send()
            except Exception as exc:  # counted and reported; the ceiling goes on
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    print("ready", flush=True)
    sys.stdin.readline()
    cpu_before = time.process_time()
    started = time.time()
    threads = [threading.Thread(target=sender, args=(backend,)) for backend in backends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = time.time()
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "sent": len(latencies),
                "errors": errors[:5],
                "error_count": len(errors),
                "started": started,
                "finished": finished,
                "cpu_seconds": time.process_time() - cpu_before,
                "latencies": latencies,
                "peak_rss_kb": hwm_kb,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()

"""The send pacer alone, under a model of the workers' load: how much of a capped rate it hands out.

    .venv/bin/python -m bench.pacer_model [--rate 500] [--processes 4] [--threads 12]
        [--sends 200] [--latency 0.06] [--cpu-ms 2.5]

P processes of T threads each take a bulk slot from `mailer.pacing` (the
real pacer and its Redis script), then "send": half the CPU a worker spends
on a mail, a sleep for SES's latency, the other half. CPU is burnt in
Python, holding the interpreter's lock as a worker's rendering and
botocore do, so threads woken for their slot queue behind busy ones as in
a worker. No database, Celery or SES: what it prints is what the pacer and
the interpreters allow, the upper bound of a capped bench.run.

Prints the achieved rate over the middle 80% of the sends, the busiest
sliding one-second window, the Redis calls made, and how late senders got
their slots. Uses Redis db 15 of REDIS_URL's server (default
127.0.0.1:6379) and deletes the schedule key there first.

`--check` holds the result to the pacer's timing targets and exits 1 if one
is missed: no one-second window of the senders' wake-ups above the rate, at
least 90% of the rate achieved, and no slot taken later than pacing.STALE
plus 10 ms (a slot gone stale is dropped, never sent on late). For the
bare pacer: `--threads 1 --latency 0 --cpu-ms 0 --rate 400`; for slots going
stale: `--processes 1 --threads 8 --rate 2000 --latency 0.03 --cpu-ms 0`.
"""

import argparse
import bisect
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def worker_process(args, results) -> None:
    import django

    django.setup()
    from mailer import pacing

    calls = 0
    book = pacing.pacer._book

    def counted_book(*book_args):
        nonlocal calls
        calls += 1
        return book(*book_args)

    pacing.pacer._book = counted_book
    sent, late, lock = [], [], threading.Lock()

    def sender() -> None:
        for _ in range(args.sends):
            burn(args.cpu_ms / 2000)
            slot = pacing.pacer.wait_for_slot(rate=args.rate, priority=pacing.BULK)
            now = time.time()
            with lock:
                sent.append(now)
                late.append(now - slot)
            time.sleep(args.latency)
            burn(args.cpu_ms / 2000)

    threads = [threading.Thread(target=sender) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((sent, late, calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="SES_MAX_SEND_RATE (default 500)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=12, help="threads per process")
    parser.add_argument("--sends", type=int, default=200, help="sends per thread")
    parser.add_argument("--latency", type=float, default=0.06, help="seconds a send waits for SES")
    parser.add_argument("--cpu-ms", type=float, default=2.5, help="a worker's CPU per mail (bench.run prints it)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a timing target is missed (see above)")
    args = parser.parse_args()

    import redis

    server = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    os.environ["REDIS_URL"] = f"{server}/15"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")
    sys.path.insert(0, str(BASE_DIR))
    from mailer.pacing import KEY

    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(KEY)
    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=worker_process, args=(args, results)) for _ in range(args.processes)]
    for process in processes:
        process.start()
    outcomes = [results.get() for _ in processes]
    for process in processes:
        process.join()

    sent = sorted(stamp for stamps, _, _ in outcomes for stamp in stamps)
    late = sorted(seconds for _, lateness, _ in outcomes for seconds in lateness)
    middle = sent[len(sent) // 10 : len(sent) - len(sent) // 10]
    achieved = (len(middle) - 1) / (middle[-1] - middle[0])
    busiest = max(bisect.bisect_right(sent, stamp + 1.0) - n for n, stamp in enumerate(sent))
    calls = sum(calls for _, _, calls in outcomes)
    print(
        f"rate {args.rate:g}/s, {args.processes} processes x {args.threads} threads, latency "
        f"{args.latency * 1000:g} ms, CPU {args.cpu_ms:g} ms per send: achieved {achieved:.1f}/s "
        f"({achieved / args.rate:.1%} of the rate); busiest 1-second window {busiest}; "
        f"{calls} Redis calls for {len(sent)} sends; slot taken late p50 {late[len(late) // 2] * 1000:.1f} ms, "
        f"p99 {late[int(len(late) * 0.99)] * 1000:.1f} ms, max {late[-1] * 1000:.1f} ms"
    )
    if args.check:
        from mailer.pacing import STALE

        missed = [
            what
            for what, met in [
                (f"busiest window {busiest} above the rate", busiest <= args.rate),
                (f"achieved {achieved / args.rate:.1%} of the rate, under 90%", achieved >= 0.9 * args.rate),
                (f"a slot taken {late[-1] * 1000:.1f} ms late", late[-1] <= STALE + 0.01),
            ]
            if not met
        ]
        print("targets: " + ("; ".join(missed) if missed else "all met"))
        if missed:
            sys.exit(1)


if __name__ == "__main__":
    main()

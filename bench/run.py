"""The DailyQ send benchmark: the real pipeline against a fake SES, and two references.

    .venv/bin/python -m bench.run --subscriptions 10000 --workers 2 --concurrency 16

Phases (all against one fake SES endpoint with a fixed latency, in its own
process; see bench/README.md):

1. pipeline: `start_daily_send` (creating the run's deliveries and enqueueing
   them, timed) with W Celery workers (`-I bench.instrument`) sending them;
   wall time from the trigger to the run's `finished_at`.
2. ceiling: the same number of messages, of the same sizes (real rendered
   daily mails), through django-ses with W processes x C threads; no database,
   Celery, templates or pacing.
3. baseline: a loop calling django.core.mail.send_mail per subscriber,
   sequential, on a sample, extrapolated to N.
4. capped: the pipeline again with SES_MAX_SEND_RATE=<cap>; achieved rate and
   the busiest 1-second window at the endpoint.

Everything lives in its own PostgreSQL database and Redis database number,
with its own Celery queue, so tests running beside it are not disturbed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

from bench.harness import NotReady, Process, python_command, start_process, start_worker, stop_all, wait_until
from bench.proc import (
    busy_seconds,
    busy_share,
    cpu_seconds,
    free_port,
    machine_cpu,
    percentile,
    process_tree,
    status_kb,
    wait_for_quiet,
)
from bench.ses_process import SESProcess

BASE_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BASE_DIR / "var" / "bench"
SEND_DAY = date(2030, 1, 8)  # a Tuesday: daily subscriptions are due, weekly ones are not


# --- small measuring helpers ------------------------------------------------------------


def busiest_window(arrivals: list[float], width: float = 1.0) -> int:
    """Most arrivals in any window [t, t + width) (a sliding window)."""
    best, start = 0, 0
    for end, moment in enumerate(arrivals):
        while arrivals[start] <= moment - width:
            start += 1
        best = max(best, end - start + 1)
    return best


def code_version() -> str:
    """The commit under test, and whether the app's code differs from it (others may be editing)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "mailer", "subscriptions", "mailservice", "templates"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" with uncommitted changes to the app" if changed else "")


def pg_xacts(database: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", [database])
        return int(cursor.fetchone()[0])


class QueryCounter:
    """Counts the statements Django executes in this process while active."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


# --- the environment every process of the bench shares ----------------------------------


def bench_env(args, ses_url: str, *, rate: float) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mailservice.settings",
        # Production mode: DEBUG off (no query log kept in memory), as deployed.
        "DJANGO_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnop",
        "ALLOWED_HOSTS": "dailyq.example",
        "SITE_URL": "https://dailyq.example",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.redis_url,
        "CELERY_QUEUE": args.queue,
        "CACHE_KEY_PREFIX": "dailyq-bench",
        "AWS_SES_REGION_NAME": "us-east-1",
        "AWS_SES_REGION_ENDPOINT_URL": ses_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "SES_SANDBOX": "false",
        "SES_QUOTA_CAP": "false",
        "SES_MAX_SEND_RATE": str(rate),
        "ADMINS": "",
        "LOG_LEVEL": "WARNING",
        "DAILYQ_BENCH": "1",
        "PYTHONUNBUFFERED": "1",
        # As the deployment docs say: batches that run at once, workers x concurrency.
        "SEND_PARALLELISM": str(args.workers * args.concurrency),
    }
    if args.batch_size:
        env["SEND_BATCH_SIZE"] = str(args.batch_size)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SES_CONFIGURATION_SET"):
        env.pop(name, None)
    return env


# --- workers -------------------------------------------------------------------------------


class Workers:
    """The bench's W Celery workers (bench.harness), each logging to OUT_DIR."""

    def __init__(self, args, env: dict, label: str):
        self.args = args
        self.env = env
        self.label = label
        self.processes: list[Process] = []

    def start(self) -> "Workers":
        import redis

        client = redis.Redis.from_url(self.args.redis_url)
        client.delete("bench:ready")
        for n in range(self.args.workers):
            self.processes.append(
                start_worker(
                    self.env,
                    include=["bench.instrument"],
                    pool=self.args.pool,
                    concurrency=self.args.concurrency,
                    hostname=f"bench{n}@%h",
                    log=OUT_DIR / f"worker-{self.label}-{n}.log",
                    new_session=True,
                )
            )
        # bench.instrument marks each worker in bench:ready once it consumes.
        try:
            wait_until(
                lambda: client.hlen("bench:ready") >= len(self.processes),
                timeout=60,
                processes=self.processes,
                what="consuming",
            )
        except NotReady as error:
            self.stop()
            raise RuntimeError(f"workers did not start; see {OUT_DIR}/worker-{self.label}-*.log") from error
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def tree(self) -> list[int]:
        return [pid for root in self.pids for pid in process_tree(root)]

    def cpu(self) -> float:
        return cpu_seconds(self.tree())

    def memory(self) -> list[dict]:
        """Per worker: peak RSS (VmHWM) of the main process and of its pool children, and now (VmRSS)."""
        report = []
        for pid in self.pids:
            children = process_tree(pid)[1:]
            report.append(
                {
                    "pid": pid,
                    "main_peak_kb": status_kb(pid, "VmHWM"),
                    "children": len(children),
                    "children_peak_kb": sum(status_kb(child, "VmHWM") for child in children),
                    "rss_kb": sum(status_kb(p, "VmRSS") for p in [pid, *children]),
                }
            )
        return report

    def stop(self) -> None:
        stop_all(self.processes, timeout=60)
        self.processes = []


# --- phases ----------------------------------------------------------------------------------


def run_pipeline(args, ses: SESProcess, *, rate: float, label: str, expected: int) -> dict:
    import redis
    from django.db import connection
    from django.db.models import Count

    from bench import seed
    from mailer.models import Delivery, SendRun
    from mailer.sending import runs

    seed.reset_runs()
    redis.Redis.from_url(args.redis_url).flushdb()
    ses.reset()
    connection.close()

    workers = Workers(args, bench_env(args, ses.url, rate=rate), label).start()
    profiler = None
    try:
        timings = {}
        original_create, original_enqueue = runs._create_deliveries, runs.enqueue_pending_deliveries

        def timed_create(run):
            started = time.perf_counter()
            try:
                return original_create(run)
            finally:
                timings["create"] = time.perf_counter() - started

        def timed_enqueue(*, run_id):
            started = time.perf_counter()
            try:
                return original_enqueue(run_id=run_id)
            finally:
                timings["enqueue"] = time.perf_counter() - started
                timings["enqueued_at"] = time.time()

        runs._create_deliveries, runs.enqueue_pending_deliveries = timed_create, timed_enqueue

        quiet_share = wait_for_quiet(args.quiet_wait, seconds=3, threshold=0.15)
        xacts_before = pg_xacts(args.database)
        cpu_before, machine_before = workers.cpu(), machine_cpu()
        ses_cpu_before, harness_cpu_before = ses.cpu_seconds(), time.process_time()
        if args.profile and label == "pipeline":
            profiler = start_profiler(args, workers.pids[0], "worker", subprocesses=args.pool == "prefork")

        start_counter, poll_counter = QueryCounter(), QueryCounter()
        triggered = time.time()
        with connection.execute_wrapper(start_counter):
            run = runs.start_daily_send(day=SEND_DAY)
        start_seconds = time.time() - triggered
        runs._create_deliveries, runs.enqueue_pending_deliveries = original_create, original_enqueue

        deadline = time.monotonic() + args.timeout
        with connection.execute_wrapper(poll_counter):
            while True:
                run.refresh_from_db(fields=["status", "finished_at", "total"])
                if run.status == SendRun.Status.DONE:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: run not done after {args.timeout} s")
                time.sleep(0.5)
        cpu_after, machine_after = workers.cpu(), machine_cpu()
        ses_cpu = ses.cpu_seconds() - ses_cpu_before
        harness_cpu = time.process_time() - harness_cpu_before
        memory = workers.memory()
        with connection.execute_wrapper(poll_counter):
            statuses = dict(Delivery.objects.filter(run=run).values_list("status").annotate(n=Count("id")))
    finally:
        if profiler:
            profiler.wait()
        workers.stop()

    connection.close()
    time.sleep(1.5)  # let PostgreSQL flush the closed backends' statistics
    xacts = pg_xacts(args.database) - xacts_before - 1

    client = redis.Redis.from_url(args.redis_url)
    tasks = {
        key.decode().removeprefix("bench:tasks:"): {k.decode(): int(v) for k, v in client.hgetall(key).items()}
        for key in client.scan_iter("bench:tasks:*")
    }
    timing = {
        key.decode().removeprefix("bench:timings:"): [float(v) for v in client.lrange(key, 0, -1)]
        for key in client.scan_iter("bench:timings:*")
    }
    received = ses.count()
    arrivals = ses.arrivals()
    recipients = ses.recipients()

    finished = run.finished_at.timestamp()
    wall = finished - triggered
    sent = statuses.get("sent", 0)
    batch = tasks.get("mailer.tasks.send_delivery_batch", {"queries": 0, "count": 0})
    result = {
        "label": label,
        "rate_cap": rate,
        "deliveries": run.total,
        "statuses": statuses,
        "expected": expected,
        "received": received,
        "unique_recipients": len(set(recipients)),
        "wall_seconds": wall,
        "messages_per_second": sent / wall if wall else 0.0,
        "start_daily_send_seconds": start_seconds,
        "create_seconds": timings.get("create"),
        "enqueue_seconds": timings.get("enqueue"),
        "send_phase_seconds": (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0,
        "first_arrival_after_trigger": (arrivals[0] - triggered) if arrivals else None,
        "worker_queries": sum(t["queries"] for t in tasks.values()),
        "batch_tasks": batch["count"],
        "batch_queries": batch["queries"],
        "tasks": tasks,
        "start_queries": start_counter.count,
        "harness_poll_queries": poll_counter.count,
        "pg_transactions": xacts,
        "worker_cpu_seconds": cpu_after - cpu_before,
        "fake_ses_cpu_seconds": ses_cpu,
        "harness_cpu_seconds": harness_cpu,
        "machine_busy_share": busy_share(machine_before, machine_after),
        "machine_busy_seconds": busy_seconds(machine_before, machine_after),
        "busy_before_share": quiet_share,
        "memory": memory,
        "latency": {name: summarize_latency(values) for name, values in timing.items()},
        "arrivals": arrivals,
    }
    result["other_cpu_seconds"] = result["machine_busy_seconds"] - (
        result["worker_cpu_seconds"] + ses_cpu + harness_cpu
    )
    result["queries_per_delivery"] = (result["worker_queries"] + result["start_queries"]) / max(run.total, 1)
    return result


def summarize_latency(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": 1000 * percentile(values, 50),
        "p99_ms": 1000 * percentile(values, 99),
        "mean_ms": 1000 * sum(values) / len(values) if values else float("nan"),
    }


def start_profiler(args, pid: int, name: str, *, subprocesses: bool = False):
    """py-spy on `pid` for --profile seconds, sampling only the thread holding the GIL.

    With --gil a sample is taken only from the thread running Python at that
    moment, so the profile shows where CPU time goes (what limits a 2-core
    machine), not the threads waiting on sockets.
    """
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    target = OUT_DIR / f"profile-{name}-{args.subscriptions}-{args.pool}{args.concurrency}.txt"
    command = [
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(args.profile),
        "--rate",
        "100",
        "--gil",
        "--format",
        "raw",
        "--output",
        str(target),
    ]
    if subprocesses:
        command.append("--subprocesses")
    args.profile_outputs.append(str(target))
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write_mail_templates(count: int = 24) -> Path:
    """Real daily mails (rendered by the app) to give the references the same sizes."""
    from mailer.sending import daily_email
    from subscriptions.models import Subscription

    mails = []
    subscriptions = Subscription.objects.select_related("subscriber").filter(is_active=True).order_by("id")[:count]
    for subscription in subscriptions:
        message = daily_email.preview_daily_email(subscription=subscription, day=SEND_DAY)
        mails.append(
            {
                "subject": message.subject,
                "text": message.body,
                "html": message.alternatives[0][0],
                "headers": dict(message.extra_headers),
                "bytes": len(message.message().as_bytes()),
            }
        )
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / "mails.json"
    path.write_text(json.dumps(mails, ensure_ascii=False), encoding="utf-8")
    return path


def run_ceiling(args, ses: SESProcess, *, count: int, template: Path) -> dict:
    ses.reset()
    env = bench_env(args, ses.url, rate=100_000)
    shares = [count // args.workers + (1 if n < count % args.workers else 0) for n in range(args.workers)]
    threads = args.ceiling_threads or args.concurrency
    processes = []
    offset = 0
    for share in shares:
        processes.append(
            start_process(
                "ceiling",
                python_command(
                    "-m",
                    "bench.ceiling",
                    f"--count={share}",
                    f"--threads={threads}",
                    f"--template={template}",
                    f"--offset={offset}",
                ),
                env,
                output=None,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        offset += share
    for process in processes:
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"ceiling process did not start: {line!r}")
    quiet_share = wait_for_quiet(args.quiet_wait, seconds=3, threshold=0.15)
    machine_before, ses_cpu_before = machine_cpu(), ses.cpu_seconds()
    started = time.time()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    profiler = start_profiler(args, processes[0].pid, "ceiling") if args.profile else None
    reports = []
    for process in processes:
        reports.append(json.loads(process.stdout.readline()))
        process.wait(timeout=60)
    if profiler:
        profiler.wait()
    finished = max(r["finished"] for r in reports)
    wall = finished - started
    machine_after, ses_cpu = machine_cpu(), ses.cpu_seconds() - ses_cpu_before
    latencies = [value for r in reports for value in r["latencies"]]
    sent = sum(r["sent"] for r in reports)
    own_cpu = sum(r["cpu_seconds"] for r in reports) + ses_cpu
    return {
        "label": "ceiling",
        "messages": count,
        "senders": args.workers * threads,
        "sent": sent,
        "errors": sum(r["error_count"] for r in reports),
        "error_samples": [e for r in reports for e in r["errors"]][:3],
        "received": ses.count(),
        "wall_seconds": wall,
        "messages_per_second": sent / wall if wall else 0.0,
        "cpu_seconds": sum(r["cpu_seconds"] for r in reports),
        "fake_ses_cpu_seconds": ses_cpu,
        "machine_busy_share": busy_share(machine_before, machine_after),
        "other_cpu_seconds": busy_seconds(machine_before, machine_after) - own_cpu,
        "busy_before_share": quiet_share,
        "peak_rss_kb": [r["peak_rss_kb"] for r in reports],
        "latency": {"ses_call": summarize_latency(latencies)},
    }


def run_baseline(args, ses: SESProcess, *, sample: int, total: int) -> dict:
    """The naive way: for each subscriber, render its mail and call send_mail (a new connection each time)."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.db import connection

    from mailer.sending import daily_email
    from subscriptions.models import Subscription

    ses.reset()
    counter = QueryCounter()
    latencies = []
    sent = 0
    quiet_share = wait_for_quiet(args.quiet_wait, seconds=3, threshold=0.15)
    machine_before, ses_cpu_before = machine_cpu(), ses.cpu_seconds()
    cpu_before = time.process_time()
    started = time.time()
    with connection.execute_wrapper(counter):
        subscriptions = (
            Subscription.objects.select_related("subscriber").filter(is_active=True).order_by("id")[:sample].iterator()
        )
        for subscription in subscriptions:
            message = daily_email.preview_daily_email(subscription=subscription, day=SEND_DAY)
            begun = time.perf_counter()
            send_mail(
                message.subject,
                message.body,
                settings.DEFAULT_FROM_EMAIL,
                message.to,
                html_message=message.alternatives[0][0],
            )
            latencies.append(time.perf_counter() - begun)
            sent += 1
    wall = time.time() - started
    cpu = time.process_time() - cpu_before
    machine_after, ses_cpu = machine_cpu(), ses.cpu_seconds() - ses_cpu_before
    rate = sent / wall if wall else 0.0
    return {
        "label": "baseline",
        "sample": sent,
        "received": ses.count(),
        "wall_seconds": wall,
        "messages_per_second": rate,
        "extrapolated_wall_seconds": total / rate if rate else float("inf"),
        "queries_per_delivery": counter.count / max(sent, 1),
        "cpu_seconds": cpu,
        "fake_ses_cpu_seconds": ses_cpu,
        "machine_busy_share": busy_share(machine_before, machine_after),
        "other_cpu_seconds": busy_seconds(machine_before, machine_after) - cpu - ses_cpu,
        "busy_before_share": quiet_share,
        "peak_rss_kb": status_kb(os.getpid(), "VmHWM"),
        "latency": {"send_mail": summarize_latency(latencies)},
    }


# --- report ------------------------------------------------------------------------------------


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def print_pipeline(result: dict) -> None:
    r = result
    print(f"\n== {r['label']} (SES_MAX_SEND_RATE={r['rate_cap']:g}) ==")
    print(
        f"deliveries {r['deliveries']}  statuses {r['statuses']}  endpoint received {r['received']['accepted']} "
        f"(unique recipients {r['unique_recipients']}, refused {r['received']['refused']})  "
        f"{'OK' if r['received']['accepted'] == r['statuses'].get('sent') else 'MISMATCH'}"
    )
    print(
        f"wall {r['wall_seconds']:.1f} s (trigger -> run finished_at)  =>  {r['messages_per_second']:.0f} messages/s; "
        f"send phase (first -> last arrival) {r['send_phase_seconds']:.1f} s, "
        f"first arrival {r['first_arrival_after_trigger']:.2f} s after the trigger"
    )
    print(
        f"start_daily_send {r['start_daily_send_seconds']:.2f} s: create deliveries {r['create_seconds']:.2f} s, "
        f"enqueue {r['enqueue_seconds']:.2f} s"
    )
    print(
        f"queries: start {r['start_queries']}, workers {r['worker_queries']} "
        f"({r['batch_tasks']} batch tasks, {r['batch_queries']} queries, "
        f"{r['batch_queries'] / max(r['batch_tasks'], 1):.1f} per batch)  "
        f"=> {r['queries_per_delivery']:.3f} queries per delivery; "
        f"PostgreSQL transactions in the bench DB {r['pg_transactions']} "
        f"(incl. {r['harness_poll_queries']} harness progress polls)"
    )
    for name, latency in sorted(r["latency"].items()):
        print(
            f"  per message {name:<13} p50 {latency['p50_ms']:7.1f} ms  p99 {latency['p99_ms']:7.1f} ms  "
            f"mean {latency['mean_ms']:7.1f} ms  (n={latency['n']})"
        )
    sent = max(r["statuses"].get("sent", 0), 1)
    print(
        f"CPU: workers {r['worker_cpu_seconds']:.1f} s ({1000 * r['worker_cpu_seconds'] / sent:.2f} ms/message), "
        f"fake SES {r['fake_ses_cpu_seconds']:.1f} s, harness {r['harness_cpu_seconds']:.1f} s; "
        f"machine busy {100 * r['machine_busy_share']:.0f}% of 2 cores, of which other programs "
        f"{r['other_cpu_seconds']:.1f} CPU-s (machine {100 * r['busy_before_share']:.0f}% busy just before)"
    )
    own_ms = 1000 * (r["worker_cpu_seconds"] + r["fake_ses_cpu_seconds"] + r["harness_cpu_seconds"]) / sent
    print(
        f"  CPU per message incl. fake SES and harness {own_ms:.2f} ms => limit on {os.cpu_count()} idle cores "
        f"{1000 * os.cpu_count() / own_ms:.0f} messages/s"
    )
    for n, memory in enumerate(r["memory"]):
        children = (
            f" + {memory['children']} pool children peak {mb(memory['children_peak_kb'])}" if memory["children"] else ""
        )
        print(f"  worker {n}: peak RSS main {mb(memory['main_peak_kb'])}{children}; RSS now {mb(memory['rss_kb'])}")


def print_capped(result: dict) -> None:
    arrivals = result["arrivals"]
    cap = result["rate_cap"]
    if len(arrivals) < 2:
        print("capped: too few arrivals")
        return
    span = arrivals[-1] - arrivals[0]
    achieved = (len(arrivals) - 1) / span if span else 0.0
    window = busiest_window(arrivals)
    buckets: dict[int, int] = {}
    for moment in arrivals:
        second = int(moment - arrivals[0])
        buckets[second] = buckets.get(second, 0) + 1
    full = [buckets.get(s, 0) for s in range(int(span))]  # whole seconds only
    result["achieved_rate"] = achieved
    result["busiest_window"] = window
    print(
        f"cap {cap:g}/s: achieved {achieved:.1f}/s over {span:.1f} s ({100 * achieved / cap:.1f}% of the cap); "
        f"busiest sliding 1-second window {window} ({'within' if window <= cap else 'ABOVE'} the cap); "
        f"whole 1-second buckets min {min(full) if full else 0} / median {percentile(full, 50) if full else 0} "
        f"/ max {max(full) if full else 0}"
    )


def print_ceiling(result: dict) -> None:
    r = result
    latency = r["latency"]["ses_call"]
    print(f"\n== ceiling (django-ses only, {r['senders']} sender threads in {len(r['peak_rss_kb'])} processes) ==")
    print(
        f"{r['sent']} sent, {r['errors']} errors {r['error_samples'] or ''}; endpoint received "
        f"{r['received']['accepted']}; wall {r['wall_seconds']:.1f} s => {r['messages_per_second']:.0f} messages/s"
    )
    print(
        f"  per message ses_call p50 {latency['p50_ms']:.1f} ms  p99 {latency['p99_ms']:.1f} ms; "
        f"CPU {r['cpu_seconds']:.1f} s ({1000 * r['cpu_seconds'] / max(r['sent'], 1):.2f} ms/message), "
        f"fake SES {r['fake_ses_cpu_seconds']:.1f} s; machine busy {100 * r['machine_busy_share']:.0f}%, "
        f"other programs {r['other_cpu_seconds']:.1f} CPU-s (machine {100 * r['busy_before_share']:.0f}% busy "
        f"just before); peak RSS per process {', '.join(mb(kb) for kb in r['peak_rss_kb'])}"
    )
    own_ms = 1000 * (r["cpu_seconds"] + r["fake_ses_cpu_seconds"]) / max(r["sent"], 1)
    print(
        f"  CPU per message incl. fake SES {own_ms:.2f} ms => limit on {os.cpu_count()} idle cores "
        f"{1000 * os.cpu_count() / own_ms:.0f} messages/s"
    )


def print_baseline(result: dict, total: int) -> None:
    r = result
    latency = r["latency"]["send_mail"]
    print("\n== naive baseline (send_mail per subscriber, one process, sequential) ==")
    print(
        f"sample {r['sample']}: endpoint received {r['received']['accepted']}; {r['wall_seconds']:.1f} s "
        f"=> {r['messages_per_second']:.1f} messages/s; extrapolated to {total}: "
        f"{r['extrapolated_wall_seconds']:.0f} s ({r['extrapolated_wall_seconds'] / 60:.1f} min)"
    )
    print(
        f"  per message send_mail p50 {latency['p50_ms']:.1f} ms  p99 {latency['p99_ms']:.1f} ms; "
        f"{r['queries_per_delivery']:.1f} queries per delivery; "
        f"CPU {1000 * r['cpu_seconds'] / max(r['sample'], 1):.2f} ms/message; "
        f"other programs {r['other_cpu_seconds']:.1f} CPU-s (machine {100 * r['busy_before_share']:.0f}% busy "
        f"just before)"
    )


# --- main --------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000, help="N active subscriptions (default 10000)")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="pool size of each worker (default 16)")
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"], help="default threads")
    parser.add_argument("--batch-size", type=int, default=0, help="SEND_BATCH_SIZE (default: the app's)")
    parser.add_argument("--latency", type=float, default=0.05, help="fake SES latency, s (default 0.05)")
    parser.add_argument("--rate-cap", type=float, default=500, help="capped run's SES_MAX_SEND_RATE; 0 skips it")
    parser.add_argument(
        "--capped-subscriptions", type=int, default=10_000, help="subscriptions active for the capped run"
    )
    parser.add_argument("--uncapped-rate", type=float, default=100_000, help="SES_MAX_SEND_RATE when uncapped")
    parser.add_argument("--baseline-sample", type=int, default=500, help="naive baseline sample; 0 skips it")
    parser.add_argument("--ceiling-threads", type=int, default=0, help="threads per ceiling process (default C)")
    parser.add_argument(
        "--phases", default="pipeline,ceiling,baseline,capped", help="comma-separated subset of the phases"
    )
    parser.add_argument("--profile", type=int, default=0, help="py-spy the first worker for this many seconds")
    parser.add_argument("--timeout", type=int, default=1800, help="give up on a run after this many seconds")
    parser.add_argument(
        "--quiet-wait", type=float, default=300, help="before each phase, wait up to this long for an idle machine"
    )
    parser.add_argument("--database", default="dailyq_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--queue", default="dailyq-bench")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the pipeline and the ceiling this many times, one after the other (the host's speed drifts)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    args.database_url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
    args.phases = {phase.strip() for phase in args.phases.split(",") if phase.strip()}
    args.profile_outputs = []
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    ses = SESProcess(latency=args.latency, port=free_port()).start()
    try:
        os.environ.update(bench_env(args, ses.url, rate=args.uncapped_rate))
        import django

        from bench import seed

        created = seed.ensure_database(args.database_url)
        seed.migrate(dict(os.environ))
        django.setup()
        if seed.seeded_count() != args.subscriptions:
            seconds = seed.seed(args.subscriptions)
            print(f"seeded {args.subscriptions} subscriptions in {seconds:.1f} s{' (new database)' if created else ''}")
        else:
            seed.limit_active(args.subscriptions)
        template = write_mail_templates()
        mails = json.loads(template.read_text(encoding="utf-8"))
        sizes = sorted(mail["bytes"] for mail in mails)
        print(
            f"DailyQ send bench: {args.subscriptions} subscriptions, {args.workers} workers x {args.pool} "
            f"{args.concurrency}, fake SES latency {1000 * args.latency:.0f} ms at {ses.url}; "
            f"message size {sizes[0]}-{sizes[-1]} bytes (median {percentile(sizes, 50)}); "
            f"code {code_version()}"
        )
        results: dict = {
            "args": {k: v for k, v in vars(args).items() if k != "phases"},
            "at": datetime.now().isoformat(),
        }
        pairs = []  # (pipeline, ceiling) messages/s of each repeat
        for repeat in range(args.repeat):
            if args.repeat > 1:
                print(f"\n#### repeat {repeat + 1} of {args.repeat}")
            if "pipeline" in args.phases:
                results["pipeline"] = run_pipeline(
                    args, ses, rate=args.uncapped_rate, label="pipeline", expected=args.subscriptions
                )
                print_pipeline(results["pipeline"])
            if "ceiling" in args.phases:
                results["ceiling"] = run_ceiling(args, ses, count=args.subscriptions, template=template)
                print_ceiling(results["ceiling"])
            if "pipeline" in results and "ceiling" in results:
                pairs.append((results["pipeline"]["messages_per_second"], results["ceiling"]["messages_per_second"]))
        results["repeats"] = [{"pipeline": p, "ceiling": c, "ratio": p / c} for p, c in pairs]
        if "baseline" in args.phases and args.baseline_sample:
            results["baseline"] = run_baseline(
                args, ses, sample=min(args.baseline_sample, args.subscriptions), total=args.subscriptions
            )
            print_baseline(results["baseline"], args.subscriptions)
        if "capped" in args.phases and args.rate_cap:
            capped = min(args.capped_subscriptions, args.subscriptions)
            seed.limit_active(capped)
            try:
                results["capped"] = run_pipeline(args, ses, rate=args.rate_cap, label="capped", expected=capped)
            finally:
                seed.limit_active(args.subscriptions)
            print_pipeline(results["capped"])
            print_capped(results["capped"])

        if args.profile_outputs:
            from bench.profile_summary import summarize

            for output in args.profile_outputs:
                print("\n" + summarize(output))
        print("\n== summary ==")
        pipeline = results.get("pipeline")
        if pipeline:
            line = f"pipeline {pipeline['messages_per_second']:.0f} messages/s"
            if "ceiling" in results:
                ceiling = results["ceiling"]["messages_per_second"]
                line += f"; ceiling {ceiling:.0f}/s; pipeline/ceiling {pipeline['messages_per_second'] / ceiling:.2f}"
                c = results["ceiling"]
                pipeline_cpu = (
                    pipeline["worker_cpu_seconds"] + pipeline["fake_ses_cpu_seconds"] + pipeline["harness_cpu_seconds"]
                ) / max(pipeline["statuses"].get("sent", 0), 1)
                ceiling_cpu = (c["cpu_seconds"] + c["fake_ses_cpu_seconds"]) / max(c["sent"], 1)
                line += f" (CPU per message: ceiling/pipeline {ceiling_cpu / pipeline_cpu:.2f})"
            if "baseline" in results:
                baseline = results["baseline"]["messages_per_second"]
                line += (
                    f"; baseline {baseline:.1f}/s; pipeline/baseline {pipeline['messages_per_second'] / baseline:.1f}x"
                )
            print(line)
            peak = max(m["main_peak_kb"] + m["children_peak_kb"] for m in pipeline["memory"])
            print(
                f"queries per delivery {pipeline['queries_per_delivery']:.3f}; peak worker memory {mb(peak)}; "
                f"create {pipeline['create_seconds']:.1f} s + enqueue {pipeline['enqueue_seconds']:.1f} s "
                f"for {pipeline['deliveries']} deliveries"
            )
        if len(pairs) > 1:
            print(
                "pipeline/ceiling of each repeat: "
                + ", ".join(f"{p:.0f}/{c:.0f} = {p / c:.2f}" for p, c in pairs)
                + f"; median {statistics.median(p / c for p, c in pairs):.2f}"
            )
        if "capped" in results and "achieved_rate" in results["capped"]:
            capped = results["capped"]
            print(
                f"capped at {capped['rate_cap']:g}/s: achieved {capped['achieved_rate']:.1f}/s, "
                f"busiest 1-second window {capped['busiest_window']}"
            )
        if args.json:
            for phase in ("pipeline", "capped"):
                if phase in results:
                    results[phase] = {k: v for k, v in results[phase].items() if k != "arrivals"}
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    finally:
        ses.stop()


if __name__ == "__main__":
    main()

"""Instructions per message, counted by valgrind: the worker's send path beside the ceiling's.

    .venv/bin/python -m bench.instructions [--messages 100,300]

CPU seconds on this machine swing by a quarter from one second to the next
(the host's other tenants), so two runs of the same code minutes apart differ
by 10-20% and a change smaller than that cannot be seen in bench.run's
figures. Instruction counts do not move with the host: callgrind counts the
same total for the same code and inputs.

Both sides run in one thread of one process under `valgrind --tool=callgrind`,
twice, sending N1 and then N2 messages to the fake SES (no latency), and the
difference of the two totals divided by N2 - N1 is the count per message:
start-up (imports, Django, the SES client) cancels out. The pipeline first
renders every question's mail in both languages, as a long run has (a run
renders each once per worker process, then only personalises it): without
that, the renders only the larger run meets counted as per-message work
(0.8 M of the 2.0 M instructions the pipeline added to the ceiling's 9.1 M).

- pipeline: a run's pending deliveries sent by `send_delivery_batch` in
  batches of SEND_BATCH_SIZE, as a worker thread sends them, against the
  bench database and Redis; Celery's own per-task work is not in it.
- ceiling: `bench.ceiling` with one thread (django-ses alone).

Only the sending process is counted: PostgreSQL, Redis and the fake SES are
not (bench.run's "other programs" and "fake SES" CPU are theirs).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from bench.proc import free_port
from bench.run import BASE_DIR, SEND_DAY, bench_env, write_mail_templates
from bench.ses_process import SESProcess

PIPELINE_SCRIPT = """
import json, sys
import django
django.setup()
from django.conf import settings
from mailer.sending import batch, daily_email, runs
from mailer.models import Delivery, Question
ids = json.load(open(sys.argv[1]))
# A long run renders each question's mail once per language, then only
# personalises it. Every render the bench's readers can need is made first,
# the same in both runs, so that the difference is a long run's per-message cost.
day = Delivery.objects.select_related("run").get(id=ids[0]).run.day
for question in Question.objects.filter(is_published=True):
    for language in ("ko", "en"):
        daily_email.build_daily_email(subscriber_id=1, email="warm@bench.example", language=language,
                                   category=question.category, day=day, questions=[question],
                                   subscription_id=1, link_generation=0)
size = settings.SEND_BATCH_SIZE
sent = 0
for start in range(0, len(ids), size):
    sent += batch.send_delivery_batch(ids=ids[start:start + size]).sent
print(json.dumps({"sent": sent}))
"""


def valgrind_command(output: Path) -> list[str]:
    # The venv's python (a link valgrind follows; Python still finds the venv), not a shim script.
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}", sys.executable]


def collected(stderr: str) -> int:
    match = re.search(r"Collected : (\d+)", stderr)
    if not match:
        raise RuntimeError(f"callgrind printed no total:\n{stderr[-2000:]}")
    return int(match.group(1))


def pending_ids(count: int) -> list[int]:
    """A fresh sending run for SEND_DAY with `count` subscriptions due; its delivery ids."""
    from bench import seed
    from mailer.models import SendRun
    from mailer.sending import runs

    seed.reset_runs()
    seed.limit_active(count)
    run = SendRun.objects.create(day=SEND_DAY, cutoff=runs.send_cutoff(SEND_DAY), status=SendRun.Status.SENDING)
    runs._create_deliveries(run)
    return list(run.deliveries.filter(status="pending").order_by("id").values_list("id", flat=True))


def count_pipeline(env: dict, count: int) -> int:
    ids = pending_ids(count)
    with tempfile.TemporaryDirectory() as folder:
        ids_file = Path(folder) / "ids.json"
        ids_file.write_text(json.dumps(ids))
        output = Path(folder) / "callgrind.out"
        done = subprocess.run(
            [*valgrind_command(output), "-c", PIPELINE_SCRIPT, str(ids_file)],
            cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0 or json.loads(done.stdout.strip().splitlines()[-1])["sent"] != count:
        raise RuntimeError(f"pipeline run failed:\n{done.stdout[-1000:]}\n{done.stderr[-2000:]}")
    return collected(done.stderr)


def count_ceiling(env: dict, count: int, template: Path) -> int:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "callgrind.out"
        done = subprocess.run(
            [*valgrind_command(output), "-m", "bench.ceiling", f"--count={count}", "--threads=1",
             f"--template={template}"],
            cwd=BASE_DIR, env=env, input="go\n", capture_output=True, text=True, check=False,
        )  # fmt: skip
    report = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    if done.returncode != 0 or report.get("sent") != count:
        raise RuntimeError(f"ceiling run failed:\n{done.stdout[-1000:]}\n{done.stderr[-2000:]}")
    return collected(done.stderr)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="100,300", help="N1,N2: the two runs' sizes (default 100,300)")
    parser.add_argument("--database", default="dailyq_bench_instructions")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    small, large = (int(n) for n in args.messages.split(","))
    settings = SimpleNamespace(
        database_url=f"postgres://postgres@127.0.0.1:5432/{args.database}",
        redis_url=args.redis_url,
        queue="dailyq-bench-instructions",
        workers=1,
        concurrency=1,
        batch_size=None,
    )
    with SESProcess(latency=0, port=free_port()) as ses:
        env = bench_env(settings, ses.url, rate=100_000)
        # A batch under valgrind runs ~80x slower: keep it inside its time limits.
        env.update({"CELERY_TASK_SOFT_TIME_LIMIT": "3600", "CELERY_TASK_TIME_LIMIT": "3700", "PYTHONHASHSEED": "0"})
        env.pop("DAILYQ_BENCH")  # no bench.instrument timers: they are not the app's work
        os.environ.update(env)
        import django

        from bench import seed

        seed.ensure_database(settings.database_url)
        seed.migrate(dict(os.environ))
        django.setup()
        if seed.seeded_count() < large:
            seed.seed(large)
        template = write_mail_templates()
        counts = {}
        for label in ("pipeline", "ceiling"):
            for n in (small, large):
                counts[label, n] = count_pipeline(env, n) if label == "pipeline" else count_ceiling(env, n, template)
                print(f"{label:8} {n:5} messages: {counts[label, n]:,} instructions", flush=True)
        seed.reset_runs()
    labels = ("pipeline", "ceiling")
    per_message = {label: (counts[label, large] - counts[label, small]) / (large - small) for label in labels}
    pipeline, ceiling = per_message["pipeline"], per_message["ceiling"]
    print(
        f"per message: pipeline {pipeline / 1e6:.2f} M instructions, ceiling {ceiling / 1e6:.2f} M; "
        f"ceiling/pipeline {ceiling / pipeline:.2f}"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"messages": [small, large], "totals": {f"{k[0]}-{k[1]}": v for k, v in counts.items()},
                        "per_message": per_message}, indent=2),
            encoding="utf-8",
        )  # fmt: skip


if __name__ == "__main__":
    main()

"""Bench-only measurements inside the processes under test.

Loaded into Celery workers with `celery -A mailservice worker -I bench.instrument`
(the harness does this, and sets DAILYQ_BENCH=1); it changes no behaviour,
it only counts and times:

- every SQL statement Django executes (an execute wrapper on every database
  connection, installed through `connection_created`), per Celery task;
- per message, the time `_send_one` spends in `send_message` (build + pace +
  SES call), in `build_daily_email` (rendering and building the message) and
  within it `render_email`, `render_markdown` and the CSS inliner, in the
  pacer (`wait_for_slot`) and in django-ses's `send_messages` (MIME
  serialisation, request signing and the HTTP round trip). These are wall
  times: with many threads they include waiting for the GIL.

Totals go to Redis (the bench's own database) after every task, in
`bench:*` keys that the harness reads. BEGIN/COMMIT and the connection
health check's `SELECT 1` run on the raw connection and are not seen here;
the harness cross-checks with PostgreSQL's own transaction counter.
"""

import os
import threading
import time
from collections import defaultdict
from functools import wraps

ENABLED = os.environ.get("DAILYQ_BENCH") == "1"
PREFIX = "bench:"

_local = threading.local()
_lock = threading.Lock()
_redis = None
_redis_pid = None
# Queries made outside any task (worker start-up, the harness itself).
outside_tasks = defaultdict(int)


def redis_client():
    global _redis, _redis_pid
    if _redis is None or _redis_pid != os.getpid():
        import redis

        _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
        _redis_pid = os.getpid()
    return _redis


def _state():
    state = getattr(_local, "state", None)
    if state is None:
        state = _local.state = {"task": None, "queries": 0, "timings": defaultdict(list)}
    return state


def _count_query(execute, sql, params, many, context):
    state = _state()
    if state["task"] is None:
        with _lock:
            outside_tasks[sql.split(None, 1)[0].upper() if sql else "?"] += 1
    else:
        state["queries"] += 1
    return execute(sql, params, many, context)


def _on_connection(sender, connection, **kwargs):
    if _count_query not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_query)


def _timed(name, function):
    @wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _state()["timings"][name].append(time.perf_counter() - started)

    wrapper.__bench_wrapped__ = True
    return wrapper


def install_query_counter() -> None:
    from django.db import connections
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection, weak=False, dispatch_uid="bench-count-queries")
    for alias in connections:
        connection = connections[alias]
        if connection.connection is not None:
            _on_connection(None, connection)


class _TimedInliner:
    """Stands in for mailer.emails._inliner (a css_inline.CSSInliner) to time its calls."""

    def __init__(self, inliner):
        self._inliner = inliner
        self.inline = _timed("css_inline", inliner.inline)

    def __getattr__(self, name):
        return getattr(self._inliner, name)


def install_timers() -> None:
    import django_ses

    from mailer import emails, gate, pacing, selectors
    from mailer.sending import batch

    if not getattr(gate.send_message, "__bench_wrapped__", False):
        gate.send_message = _timed("send_message", gate.send_message)
        batch.build_daily_email = _timed("build", batch.build_daily_email)
        selectors.render_markdown = _timed("markdown", selectors.render_markdown)
        emails.render_email = _timed("render_email", emails.render_email)
        emails._inliner = _TimedInliner(emails._inliner)
        django_ses.SESBackend.send_messages = _timed("ses_call", django_ses.SESBackend.send_messages)
        pacing.pacer.wait_for_slot = _timed("pace", pacing.pacer.wait_for_slot)


def install_celery_hooks() -> None:
    from celery import signals

    @signals.task_prerun.connect(weak=False)
    def _task_started(task=None, **kwargs):
        state = _state()
        state["task"] = task.name if task else "?"
        state["queries"] = 0
        state["timings"] = defaultdict(list)

    @signals.task_postrun.connect(weak=False)
    def _task_finished(task=None, **kwargs):
        state = _state()
        name = state["task"] or "?"
        pipe = redis_client().pipeline(transaction=False)
        pipe.hincrby(f"{PREFIX}tasks:{name}", "queries", state["queries"])
        pipe.hincrby(f"{PREFIX}tasks:{name}", "count", 1)
        for timing, values in state["timings"].items():
            if values:
                pipe.rpush(f"{PREFIX}timings:{timing}", *(f"{value:.6f}" for value in values))
        pipe.execute()
        state["task"] = None
        state["queries"] = 0
        state["timings"] = defaultdict(list)

    @signals.worker_ready.connect(weak=False)
    def _worker_ready(sender=None, **kwargs):
        hostname = getattr(sender, "hostname", None) or str(os.getpid())
        redis_client().hset(f"{PREFIX}ready", hostname, os.getpid())


if ENABLED:
    install_query_counter()
    install_timers()
    install_celery_hooks()

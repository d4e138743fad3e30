"""The Celery app. Configuration comes from Django settings (CELERY_*);
the beat schedule is written here, in code, so it is reviewed like code."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun, worker_ready
from django.db import close_old_connections

from mailservice.envfile import load_env_file

# `celery -A mailservice` enters here; so does every import of the package
# (mailservice/__init__.py), so settings never load before the .env file.
load_env_file()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")

app = Celery("mailservice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # The send schedule is data an admin edits (admin -> Send schedule), so beat
    # asks it every minute: the run starts at its time, and a day whose run has
    # not started by the time plus a grace is reported missed. Firing twice, or
    # beside a cron `send_daily`, is harmless: one run per day.
    "send-schedule": {
        "task": "mailer.tasks.check_send_schedule",
        "schedule": crontab(),
    },
    # Scheduled announcements start at their time, each once (its run is unique).
    "announcements": {
        "task": "mailer.tasks.start_due_announcements",
        "schedule": crontab(),
    },
    # Deliveries whose worker died mid-batch are settled from its journal (the
    # one in flight is "fate unknown"); those of unknown fate are confirmed by
    # SES Send events or, past the grace period, sent again; stalled runs requeued.
    "sweep-expired-claims": {
        "task": "mailer.tasks.sweep_expired_claims",
        "schedule": crontab(minute="*/5"),
    },
    # Deliveries, SES events and dead verifications past their retention
    # (mailer/retention.py), at a quiet hour.
    "purge-expired": {
        "task": "mailer.tasks.purge_expired",
        "schedule": crontab(hour=4, minute=30),
    },
    # Readers about to start a category again from its first question: ADMINS
    # are told once, ahead of time (mailer/bank_wraps.py), after the morning's send.
    "bank-wraps": {
        "task": "mailer.tasks.check_bank_wraps",
        "schedule": crontab(hour=12, minute=0),
    },
    "heartbeat": {
        "task": "mailservice.tasks.record_heartbeat",
        "schedule": crontab(minute="*/5"),
    },
}


@worker_ready.connect
def _announce_worker(sender, **kwargs):
    # One heartbeat through the broker as soon as a worker is up, so /healthz
    # shows at once that tasks are flowing instead of after the first beat.
    from mailservice.tasks import record_heartbeat as record_heartbeat_task

    record_heartbeat_task.delay()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **kwargs):
    # What Django does around each web request: drop the connections that are
    # broken or older than CONN_MAX_AGE, keep the rest (CELERY_DB_REUSE_MAX).
    # An eager task runs inside its caller's transaction: leave it alone.
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()

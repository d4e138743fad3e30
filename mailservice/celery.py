"""The Celery app. Configuration comes from Django settings (CELERY_*);
the beat schedule is written here, in code, so it is reviewed like code."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailservice.settings")

app = Celery("mailservice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
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

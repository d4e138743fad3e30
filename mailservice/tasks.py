from celery import shared_task

from mailservice import services


@shared_task
def record_heartbeat():
    services.record_heartbeat()

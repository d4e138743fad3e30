"""Celery doors to the mailer services. Each takes ids or plain values."""

from datetime import date

from celery import shared_task
from django.utils import timezone

from mailer import services


@shared_task
def start_daily_send(*, day: str | None = None) -> int | None:
    """Beat's entry point: today's send (in TIME_ZONE) unless a day is given."""
    send_day = date.fromisoformat(day) if day else timezone.localdate()
    run = services.start_daily_send(day=send_day)
    return run.id if run else None


# No autoretry: a batch records every delivery's outcome itself, and a
# redelivered batch (worker lost) finds its rows already claimed.
@shared_task
def send_delivery_batch(*, ids: list[int]) -> dict:
    return vars(services.send_delivery_batch(ids=ids))


@shared_task(autoretry_for=(Exception,), retry_backoff=30, max_retries=5)
def send_run_report(*, run_id: int) -> bool:
    return services.send_run_report(run_id=run_id)


@shared_task(autoretry_for=(Exception,), retry_backoff=30, max_retries=5)
def send_pause_alert(*, reason: str) -> int:
    return services.send_pause_alert(reason=reason)


@shared_task
def sweep_expired_claims() -> int:
    swept, _requeued = services.sweep_sends()
    return swept

"""Celery doors to the subscription services. Each takes ids, never objects."""

from celery import shared_task

from subscriptions import services

# Mail to one person: a few quick retries cover a passing SES or network
# error; the visitor can always ask again from the page.
MAIL_RETRY = {"autoretry_for": (Exception,), "retry_backoff": 5, "retry_jitter": True, "max_retries": 3}


@shared_task(**MAIL_RETRY)
def send_verification(*, verification_id: int) -> bool:
    return services.send_verification(verification_id=verification_id)


@shared_task(**MAIL_RETRY)
def send_welcome(*, subscriber_id: int) -> bool:
    return services.send_welcome(subscriber_id=subscriber_id)


@shared_task(**MAIL_RETRY)
def send_manage_link(*, subscriber_id: int) -> bool:
    return services.send_manage_link(subscriber_id=subscriber_id)

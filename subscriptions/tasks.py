"""Celery doors to the subscription services. Each takes ids, never objects."""

from celery import shared_task

from subscriptions import services

# send_message already retries throttling and passing errors with backoff;
# what still fails is recorded in the log, and the visitor can ask again.


@shared_task
def send_verification(*, verification_id: int) -> bool:
    return services.send_verification(verification_id=verification_id)


@shared_task
def send_welcome(*, subscriber_id: int) -> bool:
    return services.send_welcome(subscriber_id=subscriber_id)


@shared_task
def send_manage_link(*, subscriber_id: int) -> bool:
    return services.send_manage_link(subscriber_id=subscriber_id)

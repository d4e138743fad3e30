import re

import pytest
from django.core import mail

from subscriptions import services
from subscriptions.models import Subscriber


@pytest.fixture(autouse=True)
def _subscriptions_setup(eager_tasks, db):
    mail.outbox.clear()


def mails_to(address: str):
    return [m for m in mail.outbox if m.to == [address]]


def code_from(message) -> str:
    return re.search(r"\b(\d{6})\b", message.subject).group(1)


def confirm_link_from(message) -> str:
    return re.search(r"https?://\S+/confirm/\S+/", message.body).group(0)


@pytest.fixture
def subscribe(django_capture_on_commit_callbacks):
    """Submit the subscribe form's service and run the tasks it enqueues."""

    def _subscribe(email, categories=("backend",), frequency="daily", language="ko", client_ip="192.0.2.1"):
        with django_capture_on_commit_callbacks(execute=True):
            services.request_subscription(
                email=email, categories=list(categories), frequency=frequency, language=language, client_ip=client_ip
            )

    return _subscribe


@pytest.fixture
def confirmed(subscribe, django_capture_on_commit_callbacks):
    """An active subscriber, confirmed with the code from its mail."""

    def _confirmed(email="reader@example.org", **kwargs) -> Subscriber:
        subscribe(email, **kwargs)
        code = code_from(mails_to(email)[-1])
        with django_capture_on_commit_callbacks(execute=True):
            return services.confirm_with_code(email=email, code=code)

    return _confirmed

"""Manage and unsubscribe links that a reader's old mails carry stop acting on
a subscription begun since: subscribing again rotates them. An old
unsubscribe link still works for 60 days after its mail, as bulk-sender
rules expect of an unsubscribe link."""

import re
import time
from datetime import date, timedelta
from unittest import mock

import pytest
from django.core import mail
from django.test import Client

from mailer.sending.runs import start_daily_send
from subscriptions import preferences, services
from subscriptions.models import Subscriber, Subscription
from tests.factories import LONG_AGO, make_questions, make_subscriber
from tests.subscriptions.conftest import code_from, mails_to

pytestmark = pytest.mark.django_db(transaction=True)

MONDAY = date(2026, 11, 30)
DAY = 24 * 3600


def link_path(message, page: str) -> str:
    return re.search(rf"https?://[^/\s]+(/{page}/[^/\s]+/)", message.body).group(1)


def confirm_again(subscribe, django_capture_on_commit_callbacks, email: str, frequency: str = "weekly") -> None:
    subscribe(email, categories=["backend", "frontend"], frequency=frequency, client_ip="192.0.2.77")
    with django_capture_on_commit_callbacks(execute=True):
        services.confirm_with_code(email=email, code=code_from(mails_to(email)[-1]))


def state_of(email: str):
    subscriber = Subscriber.objects.get(email=email)
    active = sorted(subscriber.subscriptions.filter(is_active=True).values_list("category", flat=True))
    return subscriber.status, subscriber.frequency, active


def test_an_old_manage_link_stops_working_once_the_reader_subscribes_again(
    confirmed, subscribe, django_capture_on_commit_callbacks
):
    subscriber = confirmed("reader@example.org", categories=["backend"])
    old_manage = link_path(mails_to("reader@example.org")[-1], "manage")
    assert Client().get(old_manage).status_code == 200
    preferences.unsubscribe(subscriber=subscriber)

    confirm_again(subscribe, django_capture_on_commit_callbacks, "reader@example.org")
    before = state_of("reader@example.org")
    answer = Client().post(old_manage, {"action": "save", "categories": ["backend"], "frequency": "daily"})

    assert answer.status_code == 404
    assert state_of("reader@example.org") == before == ("active", "weekly", ["backend", "frontend"])
    assert Client().post(old_manage, {"action": "unsubscribe"}).status_code == 404
    new_manage = link_path(mails_to("reader@example.org")[-1], "manage")
    assert Client().get(new_manage).status_code == 200


def test_an_old_unsubscribe_link_works_for_sixty_days_after_its_mail_then_stops(
    confirmed, subscribe, django_capture_on_commit_callbacks
):
    mailed = time.time()
    with mock.patch("time.time", return_value=mailed):
        subscriber = confirmed("reader@example.org")
    old_unsubscribe = link_path(mails_to("reader@example.org")[-1], "unsubscribe")
    preferences.unsubscribe(subscriber=subscriber)
    confirm_again(subscribe, django_capture_on_commit_callbacks, "reader@example.org")

    with mock.patch("time.time", return_value=mailed + 59 * DAY):
        assert Client().get(old_unsubscribe).status_code == 200
    with mock.patch("time.time", return_value=mailed + 61 * DAY):
        assert Client().get(old_unsubscribe).status_code == 404
        assert Client().post(old_unsubscribe, {"List-Unsubscribe": "One-Click"}).status_code == 404
    assert state_of("reader@example.org")[0] == "active"

    with mock.patch("time.time", return_value=mailed + 59 * DAY):
        assert Client().post(old_unsubscribe, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert state_of("reader@example.org") == ("unsubscribed", "weekly", [])


def test_links_of_the_current_subscription_keep_working_in_mails_people_keep(confirmed):
    long_ago = time.time() - 3 * 365 * DAY
    with mock.patch("time.time", return_value=long_ago):
        confirmed("reader@example.org")
    welcome = mails_to("reader@example.org")[-1]

    assert Client().get(link_path(welcome, "manage")).status_code == 200
    assert Client().post(link_path(welcome, "unsubscribe"), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert state_of("reader@example.org")[0] == "unsubscribed"


def test_the_daily_mail_carries_the_links_of_the_current_subscription(
    settings, subscribe, django_capture_on_commit_callbacks
):
    settings.ADMINS = []
    make_questions("backend", 2)
    make_questions("frontend", 2)
    subscriber = make_subscriber("reader@example.org")
    start_daily_send(day=MONDAY)
    monday = link_path(mails_to("reader@example.org")[-1], "manage")
    preferences.unsubscribe(subscriber=subscriber)
    confirm_again(subscribe, django_capture_on_commit_callbacks, "reader@example.org", frequency="daily")
    Subscription.objects.update(activated_at=LONG_AGO)  # back again before Tuesday's send
    mail.outbox.clear()

    start_daily_send(day=MONDAY + timedelta(days=1))

    assert Client().get(monday).status_code == 404
    [backend, _frontend] = sorted(mails_to("reader@example.org"), key=lambda m: m.subject)
    assert Client().get(link_path(backend, "manage")).status_code == 200
    unsubscribe = backend.extra_headers["List-Unsubscribe"].strip("<>").split("://", 1)[1].split("/", 1)[1]
    assert Client().post("/" + unsubscribe, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert list(Subscription.objects.filter(is_active=True).values_list("category", flat=True)) == ["frontend"]

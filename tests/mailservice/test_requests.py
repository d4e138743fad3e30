"""Requests that cannot be read: every POST door answers 400, changes nothing, mails no one."""

import pytest
from django.core import mail
from django.test import Client

from subscriptions import links
from subscriptions.models import Subscriber
from tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

UTF16_FORM = "application/x-www-form-urlencoded; charset=utf-16"


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@pytest.fixture
def doors():
    subscriber = make_subscriber("reader@example.org")
    return subscriber, {
        "subscribe": "/subscribe/",
        "verify": "/verify/",
        "resend": "/verify/resend/",
        "confirm": "/confirm/x/",
        "manage": links.manage_path(subscriber.id),
        "unsubscribe": path_of(links.unsubscribe_url(subscriber.id)),
        "webhook": "/ses/events/",
        "admin login": "/admin/login/",
        "language": "/i18n/setlang/",
    }


@pytest.mark.parametrize(
    "body",
    [
        "email=reader%40example.org&action=unsubscribe".encode("utf-16"),
        "List-Unsubscribe=One-Click".encode("utf-16"),
        b"List-Unsubscribe=One-Click",  # the right bytes, a charset that is not theirs
    ],
    ids=["utf-16 form", "utf-16 one-click", "utf-8 bytes"],
)
def test_a_form_post_declaring_another_charset_is_a_400_at_every_door(doors, settings, body):
    settings.ADMINS = [("Ops", "ops@example.org")]
    subscriber, paths = doors
    # A browser's CSRF cookie and a client that enforces CSRF, as in production.
    client = Client(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = "a" * 32
    for door, path in paths.items():
        response = client.generic("POST", path, body, content_type=UTF16_FORM)
        assert response.status_code == 400, (door, response.status_code)
        assert "양식을 읽을 수 없습니다" in response.content.decode(), door
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert mail.outbox == []


def test_the_right_charset_spelled_any_way_is_read(client, doors):
    subscriber, paths = doors
    for charset in ("utf-8", "UTF-8"):
        response = client.post(
            paths["unsubscribe"],
            b"List-Unsubscribe=One-Click",
            content_type=f"application/x-www-form-urlencoded; charset={charset}",
        )
        assert response.status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED

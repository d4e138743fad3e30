"""Django admin for suppressions: adding and editing them by hand."""

import pytest
from django.urls import reverse
from django.utils import timezone

from mailer.models import Suppression
from mailer.suppressions import suppress_address

pytestmark = pytest.mark.django_db(transaction=True)

ADD = reverse("admin:mailer_suppression_add")


def add(admin_client, email, detail=""):
    return admin_client.post(ADD, {"email": email, "reason": "admin", "detail": detail}, HTTP_ACCEPT_LANGUAGE="en")


def test_adding_an_address_that_is_already_suppressed_says_so(admin_client):
    suppress_address(email="bad@example.org", reason="bounce")

    response = add(admin_client, "Bad@Example.org")
    assert response.status_code == 200
    assert "This address is already suppressed." in response.content.decode()
    assert Suppression.objects.count() == 1


def test_an_address_whose_suppression_was_lifted_can_be_suppressed_again(admin_client):
    suppress_address(email="bad@example.org", reason="bounce")
    Suppression.objects.update(lifted_at=timezone.now())

    assert add(admin_client, "bad@example.org", detail="again").status_code == 302
    assert Suppression.objects.filter(lifted_at__isnull=True).get().detail == "again"


def test_editing_a_suppression_keeps_one_in_force_per_address(admin_client):
    suppress_address(email="one@example.org", reason="admin")
    other = suppress_address(email="two@example.org", reason="admin")
    change = reverse("admin:mailer_suppression_change", args=[other.pk])

    same = {"email": "TWO@example.org", "reason": "admin", "detail": "noted"}
    assert admin_client.post(change, same, HTTP_ACCEPT_LANGUAGE="en").status_code == 302

    clash = {"email": "one@example.org", "reason": "admin", "detail": ""}
    response = admin_client.post(change, clash, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "This address is already suppressed." in response.content.decode()
    other.refresh_from_db()
    assert other.email == "two@example.org" and other.detail == "noted"  # kept in its canonical form


def test_a_suppression_is_lifted_never_deleted(admin_client):
    # The row is the address's history; lifting keeps it, deleting would not.
    suppression = suppress_address(email="bad@example.org", reason="bounce")
    one = admin_client.post(reverse("admin:mailer_suppression_delete", args=[suppression.pk]), {"post": "yes"})
    assert one.status_code == 403
    admin_client.post(
        reverse("admin:mailer_suppression_changelist"),
        {"action": "delete_selected", "_selected_action": [suppression.pk], "post": "yes"},
    )
    assert Suppression.objects.filter(email="bad@example.org", lifted_at__isnull=True).exists()

"""The admins that only show rows (ReadOnlyAdminMixin): nothing added or changed there, and
deliveries and missed days never deleted, even by a superuser."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

READ_ONLY = ["mailer_sendrun", "mailer_delivery", "mailer_missedday", "mailer_sesevent",
             "subscriptions_verification", "subscriptions_setasideaddress"]  # fmt: skip
NEVER_DELETED = ["mailer_delivery", "mailer_missedday"]


@pytest.mark.parametrize("admin_name", READ_ONLY)
def test_read_only_admin_lists_rows_but_adds_none(admin_client, admin_name):
    assert admin_client.get(reverse(f"admin:{admin_name}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"admin:{admin_name}_add")).status_code == 403


@pytest.mark.parametrize("admin_name", NEVER_DELETED)
def test_deliveries_and_missed_days_are_never_deleted(admin_client, admin_name):
    assert admin_client.post(reverse(f"admin:{admin_name}_delete", args=[1]), {"post": "yes"}).status_code == 403


def test_set_aside_addresses_stay_deletable_once_settled(admin_client):
    # No such row: past the permission check, Django sends the admin back to the list.
    response = admin_client.post(reverse("admin:subscriptions_setasideaddress_delete", args=[1]), {"post": "yes"})
    assert response.status_code == 302

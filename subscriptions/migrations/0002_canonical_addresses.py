"""Stored addresses take their canonical form (subscriptions.addresses).

A row whose address is not one DailyQ can mail (a local part that is not
ASCII), and every row but one of a group whose addresses are spellings of
one mailbox, is set aside: its subscriber keeps its id, history and
deliveries under a placeholder address that gets no mail, is unsubscribed,
and a SetAsideAddress row keeps the address as it was stored and why, for
an admin. Of a group, the subscriber kept is the active one, else the
unsubscribed one, else a pending one; then the one already spelled
canonically, confirmed first, added first.

The constraints that rely on this follow in 0003 (PostgreSQL will not alter
a table with row changes pending in the same transaction).
"""

import django.db.models.deletion
from django.core.exceptions import ValidationError
from django.db import migrations, models
from django.utils import timezone

from subscriptions.addresses import canonical_email

STANDING = {"active": 0, "unsubscribed": 1, "pending": 2}


def placeholder(subscriber_id: int) -> str:
    # .invalid is reserved (RFC 2606): nothing is ever delivered there.
    return f"subscriber-{subscriber_id}@set-aside.invalid"


def canonicalise_subscribers(apps, schema_editor):
    Subscriber = apps.get_model("subscriptions", "Subscriber")
    Subscription = apps.get_model("subscriptions", "Subscription")
    Verification = apps.get_model("subscriptions", "Verification")
    SetAsideAddress = apps.get_model("subscriptions", "SetAsideAddress")

    groups: dict[str, list] = {}
    invalid = []
    rows = Subscriber.objects.order_by("id").values_list("id", "email", "status", "confirmed_at", "created_at")
    for row in rows.iterator(chunk_size=2000):
        try:
            groups.setdefault(canonical_email(row[1]), []).append(row)
        except ValidationError as exc:
            invalid.append((row, " ".join(str(message) for message in exc.messages)))

    final: dict[int, str] = {}  # id -> the address it ends with, for the rows that change
    set_aside = []  # (row, reason, detail, kept_by id)
    for canonical, members in groups.items():
        members.sort(
            key=lambda r: (STANDING.get(r[2], 3), r[1] != canonical, r[3] is None, r[3] or r[4], r[4], r[0])
        )
        keeper, *others = members
        if keeper[1] != canonical:
            final[keeper[0]] = canonical
        for row in others:
            set_aside.append((row, "duplicate", f"The same address as {canonical}, kept by subscriber #{keeper[0]}.", keeper[0]))
    for row, message in invalid:
        set_aside.append((row, "invalid", message, None))
    for row, *_rest in set_aside:
        final[row[0]] = placeholder(row[0])
    if not final:
        return

    # Every row that changes first moves to its placeholder, then the kept
    # ones to their canonical address: no step meets another row's address.
    _set_emails(Subscriber, {subscriber_id: placeholder(subscriber_id) for subscriber_id in final})
    _set_emails(Subscriber, final)

    now = timezone.now()
    for row, reason, detail, kept_by in set_aside:
        subscriber_id, email, status = row[0], row[1], row[2]
        categories = sorted(
            Subscription.objects.filter(subscriber_id=subscriber_id, is_active=True).values_list("category", flat=True)
        )
        standing = f"It was {status}" + (f", receiving {', '.join(categories)}." if categories else ".")
        SetAsideAddress.objects.create(
            subscriber_id=subscriber_id, email=email, reason=reason, detail=f"{detail} {standing}", kept_by_id=kept_by
        )
        Subscription.objects.filter(subscriber_id=subscriber_id, is_active=True).update(
            is_active=False, deactivated_at=now
        )
        Verification.objects.filter(
            subscriber_id=subscriber_id, confirmed_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        Subscriber.objects.filter(id=subscriber_id).exclude(status="unsubscribed").update(
            status="unsubscribed", unsubscribed_at=now
        )
    print(
        f"\n  Canonical addresses: {len(final) - len(set_aside)} subscribers respelled, "
        f"{len(set_aside)} set aside (admin: Addresses set aside)."
    )


def _set_emails(Subscriber, emails: dict[int, str]) -> None:
    rows = [Subscriber(id=subscriber_id, email=email) for subscriber_id, email in emails.items()]
    Subscriber.objects.bulk_update(rows, ["email"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SetAsideAddress",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.CharField(max_length=1000, verbose_name="address as it was stored")),
                (
                    "reason",
                    models.CharField(
                        choices=[
                            ("invalid", "Not an address DailyQ can mail"),
                            ("duplicate", "Another spelling of a kept subscriber's address"),
                        ],
                        max_length=16,
                        verbose_name="reason",
                    ),
                ),
                ("detail", models.TextField(blank=True, verbose_name="detail")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="set aside")),
                (
                    "kept_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="subscriptions.subscriber",
                        verbose_name="subscriber that kept the address",
                    ),
                ),
                (
                    "subscriber",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="subscriptions.subscriber",
                        verbose_name="subscriber set aside",
                    ),
                ),
            ],
            options={
                "verbose_name": "address set aside",
                "verbose_name_plural": "addresses set aside",
            },
        ),
        migrations.RunPython(canonicalise_subscribers, migrations.RunPython.noop),
    ]

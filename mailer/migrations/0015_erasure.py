"""Erasure keeps suppression: every suppression gets the keyed hash of its
address (subscriptions.addresses.address_hash), one in force per hash; a
delivery outlives its erased reader (subscription set NULL); erased
addresses are remembered as hashes only."""

import django.db.models.deletion
from django.db import migrations, models

from subscriptions.addresses import address_hash


def hash_suppressions(apps, schema_editor):
    Suppression = apps.get_model("mailer", "Suppression")
    rows = []
    for suppression in Suppression.objects.only("id", "email").iterator(chunk_size=2000):
        suppression.email_hash = address_hash(suppression.email)
        rows.append(suppression)
    Suppression.objects.bulk_update(rows, ["email_hash"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [
        ("mailer", "0014_send_schedule"),
        ("subscriptions", "0004_subscriber_link_generation"),
    ]

    operations = [
        migrations.AddField(
            model_name="suppression",
            name="email_hash",
            field=models.CharField(default="", editable=False, max_length=64, verbose_name="address hash"),
            preserve_default=False,
        ),
        migrations.RunPython(hash_suppressions, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="suppression",
            name="email",
            field=models.EmailField(blank=True, max_length=254, verbose_name="email"),
        ),
        migrations.RemoveConstraint(model_name="suppression", name="suppression_one_active_per_email"),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                condition=models.Q(("lifted_at__isnull", True), models.Q(("email", ""), _negated=True)),
                fields=("email",),
                name="suppression_one_active_per_email",
            ),
        ),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                condition=models.Q(("lifted_at__isnull", True)),
                fields=("email_hash",),
                name="suppression_one_active_per_hash",
            ),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="subscription",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="deliveries",
                to="subscriptions.subscription",
            ),
        ),
        migrations.CreateModel(
            name="ErasedAddress",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email_hash", models.CharField(max_length=64, unique=True, verbose_name="address hash")),
                ("erased_at", models.DateTimeField(verbose_name="erased")),
            ],
            options={"verbose_name": "erased address", "verbose_name_plural": "erased addresses"},
        ),
    ]

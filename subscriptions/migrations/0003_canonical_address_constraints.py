import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0002_canonical_addresses"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="subscriber",
            name="subscriber_email_unique_ci",
        ),
        migrations.AddConstraint(
            model_name="subscriber",
            constraint=models.UniqueConstraint(fields=("email",), name="subscriber_email_unique"),
        ),
        migrations.AddConstraint(
            model_name="subscriber",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("email", django.db.models.functions.text.Lower("email")), ("email__regex", "^[ -~]+\\Z")
                ),
                name="subscriber_email_canonical",
            ),
        ),
    ]

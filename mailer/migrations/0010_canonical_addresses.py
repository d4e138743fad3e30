"""Suppressions and SES events keep addresses in their canonical form
(subscriptions.addresses), and one suppression in force per address is a
plain unique constraint on it.

Of several suppressions in force for spellings of one address, the first
stays in force and the others are lifted with a note naming it (the address
stays suppressed). An address with no canonical form (a local part that is
not ASCII) is left as it was stored: nothing is ever mailed to it, and no
lookup reaches it.
"""

from django.core.exceptions import ValidationError
from django.db import migrations, models
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from subscriptions.addresses import canonical_email


def _canonical(email: str) -> str | None:
    try:
        return canonical_email(email)
    except ValidationError:
        return None


def canonicalise_addresses(apps, schema_editor):
    Suppression = apps.get_model("mailer", "Suppression")
    SESEvent = apps.get_model("mailer", "SESEvent")

    in_force: dict[str, int] = {}
    respelled: dict[int, str] = {}
    now = timezone.now()
    rows = Suppression.objects.order_by("created_at", "id").values_list("id", "email", "lifted_at")
    for suppression_id, email, lifted_at in rows.iterator(chunk_size=2000):
        canonical = _canonical(email)
        if canonical is None:
            continue
        if canonical != email:
            respelled[suppression_id] = canonical
        if lifted_at is not None:
            continue
        if canonical in in_force:
            note = f"Lifted when addresses became canonical: suppression #{in_force[canonical]} holds {canonical}.\n"
            Suppression.objects.filter(id=suppression_id).update(
                lifted_at=now, detail=Concat(Value(note), F("detail"), output_field=models.TextField())
            )
        else:
            in_force[canonical] = suppression_id
    Suppression.objects.bulk_update(
        [Suppression(id=i, email=email) for i, email in respelled.items()], ["email"], batch_size=1000
    )

    events = SESEvent.objects.exclude(email="").values_list("id", "email")
    changed = [
        SESEvent(id=event_id, email=canonical)
        for event_id, email in events.iterator(chunk_size=2000)
        if (canonical := _canonical(email)) is not None and canonical != email
    ]
    SESEvent.objects.bulk_update(changed, ["email"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("mailer", "0009_question_license"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="suppression",
            name="suppression_one_active_per_email",
        ),
        migrations.RunPython(canonicalise_addresses, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="suppression",
            constraint=models.UniqueConstraint(
                condition=models.Q(("lifted_at__isnull", True)),
                fields=("email",),
                name="suppression_one_active_per_email",
            ),
        ),
    ]

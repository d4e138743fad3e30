import subscriptions.models
from django.db import migrations, models


def move_category_settings(apps, schema_editor):
    """Each category's start position moves onto its Track; a category only questions name becomes a track."""
    Track = apps.get_model("subscriptions", "Track")
    CategorySettings = apps.get_model("mailer", "CategorySettings")
    Question = apps.get_model("mailer", "Question")
    for slug in Question.objects.order_by().values_list("category", flat=True).distinct():
        Track.objects.get_or_create(slug=slug, defaults={"name_ko": slug, "name_en": slug, "position": 100})
    for row in CategorySettings.objects.all():
        Track.objects.update_or_create(
            slug=row.category,
            defaults={"start_position": row.start_position},
            create_defaults={"name_ko": row.category, "name_en": row.category, "position": 100,
                             "start_position": row.start_position},
        )


def restore_category_settings(apps, schema_editor):
    Track = apps.get_model("subscriptions", "Track")
    CategorySettings = apps.get_model("mailer", "CategorySettings")
    for track in Track.objects.all():
        CategorySettings.objects.update_or_create(
            category=track.slug, defaults={"start_position": track.start_position}
        )


class Migration(migrations.Migration):

    dependencies = [
        ('mailer', '0019_bank_wrap_notice'),
        ('subscriptions', '0006_tracks'),
    ]

    operations = [
        migrations.RunPython(move_category_settings, restore_category_settings),
        migrations.DeleteModel(
            name='CategorySettings',
        ),
        migrations.AlterField(
            model_name='announcement',
            name='category',
            field=models.CharField(blank=True, help_text='Empty: every category.', max_length=16, validators=[subscriptions.models.validate_offered_track], verbose_name='category'),
        ),
        migrations.AlterField(
            model_name='bankwrapnotice',
            name='category',
            field=models.CharField(max_length=16, verbose_name='category'),
        ),
        migrations.AlterField(
            model_name='question',
            name='category',
            field=models.CharField(max_length=16, validators=[subscriptions.models.validate_track], verbose_name='category'),
        ),
    ]

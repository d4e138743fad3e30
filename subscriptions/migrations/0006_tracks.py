import subscriptions.models
from django.db import migrations, models


# The two categories DailyQ had in code, with the names its pages gave them.
SEEDED = [("backend", "백엔드", "Backend", 1), ("frontend", "프론트엔드", "Frontend", 2)]


def seed_tracks(apps, schema_editor):
    """Backend and frontend become rows; so does any other category a subscription names."""
    Track = apps.get_model("subscriptions", "Track")
    Subscription = apps.get_model("subscriptions", "Subscription")
    for slug, name_ko, name_en, position in SEEDED:
        Track.objects.get_or_create(slug=slug, defaults={"name_ko": name_ko, "name_en": name_en, "position": position})
    for slug in Subscription.objects.exclude(category__in=[s[0] for s in SEEDED]).values_list("category", flat=True):
        Track.objects.get_or_create(slug=slug, defaults={"name_ko": slug, "name_en": slug, "position": 100})


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0005_reader_loop'),
    ]

    operations = [
        migrations.CreateModel(
            name='Track',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('slug', models.SlugField(help_text='Lowercase letters, digits and hyphens; fixed once created (it is in links and imports).', max_length=16, unique=True, verbose_name='slug')),
                ('name_ko', models.CharField(max_length=60, verbose_name='name in Korean')),
                ('name_en', models.CharField(max_length=60, verbose_name='name in English')),
                ('position', models.PositiveSmallIntegerField(default=0, help_text='Lower comes first.', verbose_name='order')),
                ('is_active', models.BooleanField(default=True, help_text='A retired track is no longer offered or mailed; its questions stay in the archive.', verbose_name='offered')),
                ('start_position', models.PositiveIntegerField(default=1, help_text='The question a new subscription starts at.', verbose_name='start position')),
            ],
            options={
                'verbose_name': 'track',
                'verbose_name_plural': 'tracks',
                'ordering': ['position', 'slug'],
            },
        ),
        migrations.RunPython(seed_tracks, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='subscription',
            name='category',
            field=models.CharField(max_length=16, validators=[subscriptions.models.validate_track], verbose_name='category'),
        ),
    ]

"""Trigram indexes on the English text, so the archive's search (which matches
both languages) stays answered from indexes on PostgreSQL. See 0012."""

from django.db import migrations

INDEXES = {
    "question_title_en_trgm": "title_en",
    "question_question_md_en_trgm": "question_md_en",
    "question_answer_md_en_trgm": "answer_md_en",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "mailer_question" USING gin (UPPER("{column}"::text) gin_trgm_ops)'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("mailer", "0015_erasure"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]

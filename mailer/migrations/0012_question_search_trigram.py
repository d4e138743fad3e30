"""Trigram indexes for the archive's search (mailer.archive.search_questions), on PostgreSQL only.

Korean has no stemmer in PostgreSQL's full-text search, so the search is a
substring match (ILIKE through Django's icontains), which pg_trgm's GIN
indexes serve. Django writes icontains as UPPER(column) LIKE UPPER(pattern),
so the indexes are on UPPER(column). SQLite gets nothing: it scans.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "question_title_trgm": "title",
    "question_question_md_trgm": "question_md",
    "question_answer_md_trgm": "answer_md",
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
        ("mailer", "0011_delivery_send_event"),
    ]

    operations = [
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]

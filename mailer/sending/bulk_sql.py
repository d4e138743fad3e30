"""The send path's bulk writes: the only SQL that differs between PostgreSQL and the others."""

import json

from django.db import connection

from mailer.models import Delivery, SendRun


def refresh_delivery_statistics() -> None:
    """ANALYZE the deliveries now that the day's rows are there, before any batch runs.

    The statistics PostgreSQL last took saw every row sent: it then believes
    no row is pending and reads a batch's rows through an index on status,
    that is every pending row of the run for each batch of 100 (a run's
    work grew with the square of its size). Sampling costs a
    fraction of a second once a day. ANALYZE counts this transaction's own
    new rows, and its lock keeps out only VACUUM and other ANALYZEs.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(Delivery._meta.db_table)}")


def insert_deliveries(run: SendRun, rows: list[tuple[int, list[int], list[int], str, str]]) -> None:
    """INSERT the run's rows (subscription, question ids, review question ids, status, reason); rows
    already there are kept.

    On PostgreSQL the varying columns travel as one array each and every
    other column takes its model default: bulk_create preparing each value
    of 100,000 model instances took two thirds of a run's start.
    """
    if connection.vendor != "postgresql":
        deliveries = [
            Delivery(
                run=run,
                subscription_id=subscription,
                question_ids=questions,
                review_question_ids=reviews,
                status=status,
                reason=reason,
            )
            for subscription, questions, reviews, status, reason in rows
        ]
        Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        return
    defaults = Delivery(run=run)
    varying = {"subscription": 0, "question_ids": 1, "status": 2, "reason": 3, "review_question_ids": 4}
    quote = connection.ops.quote_name
    columns, values, constants = [], [], []
    for column in Delivery._meta.concrete_fields:
        if column.primary_key:
            continue
        columns.append(quote(column.column))
        if column.name in varying:
            values.append(f"v.c{varying[column.name]}")
        else:
            values.append(f"%s::{column.db_type(connection)}")
            constants.append(column.get_db_prep_save(getattr(defaults, column.attname), connection))
    arrays = [
        [subscription for subscription, _q, _rv, _s, _r in rows],
        [json.dumps(questions) for _s, questions, _rv, _st, _r in rows],
        [status for _s, _q, _rv, status, _r in rows],
        [reason for _s, _q, _rv, _st, reason in rows],
        [json.dumps(reviews) for _s, _q, reviews, _st, _r in rows],
    ]
    types = ["bigint", "jsonb", Delivery._meta.get_field("status").db_type(connection), "text", "jsonb"]
    unnest = ", ".join(f"%s::{kind}[]" for kind in types)
    # Only the model's own (quoted) table and column names are formatted in; values are parameters.
    sql = (
        f"INSERT INTO {quote(Delivery._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM unnest({unnest}) AS v(c0, c1, c2, c3, c4) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*constants, *arrays])


def bulk_set(model, values: dict[int, tuple], fields: list[str], *, claim: str | None = None) -> set[int]:
    """Write `fields` of `model`'s rows in one statement; returns the ids written.

    `values` maps a row's id to its values, in the order of `fields`. With
    `claim`, only rows still holding that claim are written. Django's
    bulk_update builds a CASE expression per row and field, which cost a
    fifth of a sending worker's CPU; on PostgreSQL the
    values travel as one array per field instead.
    """
    if not values:
        return set()
    if connection.vendor != "postgresql":
        rows = model.objects.filter(id__in=list(values))
        ours = set((rows.filter(claim=claim) if claim is not None else rows).values_list("id", flat=True))
        objects = [model(id=pk, **dict(zip(fields, values[pk], strict=True))) for pk in ours]
        model.objects.bulk_update(objects, fields)
        return ours
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
    arrays = ", ".join(["%s::bigint[]", *(f"%s::{f.db_type(connection)}[]" for f in columns)])
    names = ", ".join(["id", *(quote(f.column) for f in columns)])
    # Only the model's own (quoted) table and column names are formatted in; values are parameters.
    sql = f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM unnest({arrays}) AS v({names}) WHERE t.id = v.id"  # noqa: S608
    params = [list(values)]
    params += [[f.get_db_prep_value(row[n], connection) for row in values.values()] for n, f in enumerate(columns)]
    if claim is not None:
        sql += " AND t.claim = %s"
        params.append(claim)
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING t.id", params)
        return {row[0] for row in cursor.fetchall()}

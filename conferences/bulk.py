"""Set-based writes that stay linear in the number of rows.

Django's `bulk_update` builds one CASE expression per field with a WHEN per row, which
Postgres evaluates per row: its cost grows with the square of the rows. `update_rows`
sends each column as one array and joins them with `unnest`, so one statement updates
any number of rows in time proportional to their number.
"""

from django.db import connection


def update_rows(model, rows, fields):
    """UPDATE the given fields of every row (model instances with a pk) in one statement."""
    if not rows:
        return 0
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk
    columns = [(pk.column, pk.db_type(connection), [row.pk for row in rows])]
    for name in fields:
        field = model._meta.get_field(name)
        values = [field.get_db_prep_save(getattr(row, field.attname), connection) for row in rows]
        columns.append((field.column, field.db_type(connection), values))
    quoted = [connection.ops.quote_name(column) for column, _, _ in columns]
    assignments = ", ".join(f"{column} = v.{column}" for column in quoted[1:])
    arrays = ", ".join(f"%s::{db_type}[]" for _, db_type, _ in columns)
    sql = (
        f"UPDATE {table} AS t SET {assignments} "
        f"FROM unnest({arrays}) AS v({', '.join(quoted)}) "
        f"WHERE t.{quoted[0]} = v.{quoted[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [values for _, _, values in columns])
        return cursor.rowcount

"""Set-based writes that stay linear in the number of rows.

Django's `bulk_update` builds one CASE expression per field with a WHEN per row, which
Postgres evaluates per row: its cost grows with the square of the rows. `update_rows`
sends each column as one array and joins them with `unnest`, so one statement updates
any number of rows in time proportional to their number.
"""

from types import SimpleNamespace

import psycopg
from django.db import connection


def update_rows(model, rows, fields):
    """UPDATE the given fields of every row in one statement. Rows are objects with a `pk`
    and the fields' attributes holding plain values (not JSON or other adapted types)."""
    if not rows or not fields:
        return 0
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk
    columns = [(pk.column, pk.db_type(connection), [row.pk for row in rows])]
    for name in fields:
        field = model._meta.get_field(name)
        # Plain values (numbers, text, booleans, aware datetimes, UUIDs): psycopg adapts
        # them itself, far faster than the fields' own conversion.
        values = [getattr(row, field.attname) for row in rows]
        columns.append((field.column, field.db_type(connection), values))
    quoted = [connection.ops.quote_name(column) for column, _, _ in columns]
    assignments = ", ".join(f"{column} = v.{column}" for column in quoted[1:])
    arrays = ", ".join(f"%b::{db_type}[]" for _, db_type, _ in columns)
    sql = (
        f"UPDATE {table} AS t SET {assignments} "
        f"FROM unnest({arrays}) AS v({', '.join(quoted)}) "
        f"WHERE t.{quoted[0]} = v.{quoted[0]}"
    )
    # A psycopg cursor that binds on the server, with the arrays sent as binary
    # parameters: Django's (client-side binding) cursor would spell thousands of values
    # out as text in the statement.
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, [values for _, _, values in columns])
        return cursor.rowcount


def select_rows(model, fields, pks, *, lock=False):
    """{pk: row} of the given fields (attnames) of these rows, as plain attribute objects
    (model instances cost too much per row). With lock=True the rows stay locked (FOR
    UPDATE, in pk order) until the transaction ends."""
    table = connection.ops.quote_name(model._meta.db_table)
    pk = model._meta.pk.column
    columns = [model._meta.get_field(name).column for name in fields]
    sql = (
        f"SELECT {', '.join(connection.ops.quote_name(c) for c in columns)} FROM {table} "
        f"WHERE {connection.ops.quote_name(pk)} = ANY(%b::bigint[]) ORDER BY 1"
    )
    if lock:
        sql += " FOR UPDATE"
    return fetch_rows(sql, [list(pks)], fields)


def fetch_rows(sql, params, names):
    """{first value: row} of a SELECT whose columns are `names`, read with psycopg's own
    cursor (binary results) and fetched in one call; each row a plain attribute object."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        found = cursor.fetchall()
    rows = {}
    for values in found:
        row = Row()
        row.__dict__.update(zip(names, values, strict=True))
        rows[values[0]] = row
    return rows


class Row(SimpleNamespace):
    """A database row as plain attributes; `pk` is its `id`."""

    @property
    def pk(self):
        return self.id

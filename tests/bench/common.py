"""What the benchmarks share: their own database (created when missing, dropped at the
end, never the demo's; its URL is DATABASE_URL, which each benchmark sets before Django
starts) and a table printer."""

import os


def database_urls():
    url = os.environ["DATABASE_URL"]
    return url.rsplit("/", 1)[1], url.rsplit("/", 1)[0] + "/postgres"


def ensure_database():
    import psycopg

    name, admin_url = database_urls()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def drop_database():
    import psycopg
    from django.db import connections

    connections.close_all()
    name, admin_url = database_urls()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def print_table(columns):
    """Print {column title: {row name: text}} as a table, rows in first-seen order."""
    rows = []
    for cells in columns.values():
        rows += [name for name in cells if name not in rows]
    width = max(len(name) for name in rows)
    widths = {
        title: max([len(title)] + [len(text) for text in cells.values()])
        for title, cells in columns.items()
    }
    print(" " * width + "".join(f"  {title:>{widths[title]}}" for title in columns))
    for name in rows:
        texts = (f"  {cells.get(name, '-'):>{widths[title]}}" for title, cells in columns.items())
        print(f"{name:<{width}}" + "".join(texts))

"""The benchmarks' own database: created when missing, dropped at the end, never the
demo's. Its URL is DATABASE_URL, which each benchmark sets before Django starts."""

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

"""History and events lose a day's rows to retention and gain a day's rows every day,
about 1/180 of each table. Postgres' default autovacuum waits until a fifth of a table
has changed (4 million rows at 20 million): until then the space of deleted rows is not
reused, so the tables and their indexes grow day after day, and the newest pages (the
ones the 7-day chart reads from the index alone) are not marked all-visible. Vacuuming
after 0.5% has changed, deleted or inserted, means about once a day at 20 million rows
(bench_scale.py measures it); on a small table it costs next to nothing."""

from django.db import migrations

TABLES = ("conferences_historyentry", "conferences_event")
SETTINGS = "autovacuum_vacuum_scale_factor = 0.005, autovacuum_vacuum_insert_scale_factor = 0.005"
RESET = "autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor"


class Migration(migrations.Migration):
    dependencies = [
        ("conferences", "0023_member_held_present_index"),
    ]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE {table} SET ({SETTINGS})", f"ALTER TABLE {table} RESET ({RESET})"
        )
        for table in TABLES
    ]

"""History's and events' foreign key index on the conference becomes (conference, -id):
the admin's records of one conference and their capped count read it in order. Built
CONCURRENTLY (writes go on meanwhile: the tables hold millions of rows), then the old
single-column indexes dropped."""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conferences", "0025_conference_last_change_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["conference", "-id"], name="event_by_conference_id_idx"),
        ),
        AddIndexConcurrently(
            model_name="historyentry",
            index=models.Index(fields=["conference", "-id"], name="history_by_conference_id_idx"),
        ),
        migrations.AlterField(
            model_name="event",
            name="conference",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="conferences.conference",
            ),
        ),
        migrations.AlterField(
            model_name="historyentry",
            name="conference",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="history",
                to="conferences.conference",
            ),
        ),
    ]

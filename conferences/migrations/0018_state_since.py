from django.db import migrations, models

# Each conference's newest StatusChange or first_observed / state_changed event, in one
# pass over each table (a hash aggregate) and one UPDATE of the conference rows.
FILL = """
UPDATE conferences_conference AS c SET state_since = s.since
FROM (
    SELECT conference_id, max(at) AS since FROM (
        SELECT conference_id, changed_at AS at FROM conferences_statuschange
        UNION ALL
        SELECT conference_id, occurred_at FROM conferences_event
        WHERE kind IN ('state_changed', 'first_observed') AND conference_id IS NOT NULL
    ) AS changes GROUP BY conference_id
) AS s
WHERE c.id = s.conference_id AND c.state IS NOT NULL
"""


def forget_status_changes(apps, schema_editor):
    """The StatusChange permissions (granted to the roles by 0004) go with the model."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="conferences", model="statuschange").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("conferences", "0017_callbacks_blast_radius"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="conference",
            name="state_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
        migrations.DeleteModel(name="StatusChange"),
        migrations.RunPython(forget_status_changes, migrations.RunPython.noop),
    ]

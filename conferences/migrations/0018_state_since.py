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


class Migration(migrations.Migration):
    dependencies = [("conferences", "0017_callbacks_blast_radius")]

    operations = [
        migrations.AddField(
            model_name="conference",
            name="state_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
        migrations.DeleteModel(name="StatusChange"),
    ]

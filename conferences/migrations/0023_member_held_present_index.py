# Built concurrently: on a big members table a plain CREATE INDEX would hold up the
# rounds' and callbacks' member writes for as long as it takes.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conferences", "0022_tokens_api_tokens"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="member",
            index=models.Index(
                condition=models.Q(
                    models.Q(("hold", True), ("mute", True), _connector="OR"),
                    models.Q(("state", "completed"), _negated=True),
                ),
                fields=["conference"],
                include=("id", "hold", "mute"),
                name="member_held_present_idx",
            ),
        ),
    ]

# Built concurrently: on a big history table a plain CREATE INDEX would hold up the
# polling rounds' writes for as long as it takes.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("conferences", "0004_roles"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="historyentry",
            index=models.Index(fields=["state", "-id"], name="history_by_state_idx"),
        ),
    ]

"""The two support roles as groups (conferences/roles.py describes them).

A frozen copy of the lists in conferences/roles.py, as a migration must not depend on
code that changes later. Permissions are normally created after all migrations ran
(post_migrate), so the ones needed here are created now if missing, with the names
Django gives them.
"""

from django.db import migrations

VERBOSE_NAMES = {
    "conference": "conference",
    "account": "account",
    "subscription": "subscription",
    "historyentry": "history entry",
    "statuschange": "status change",
    "pollerror": "poll error",
    "event": "event",
    "delivery": "delivery",
}
MANAGED = ["conference", "account", "subscription"]
ACTIONS = ["add", "change", "delete", "view"]
GROUPS = {
    "support viewer": [f"view_{model}" for model in VERBOSE_NAMES],
    "support admin": [f"view_{model}" for model in VERBOSE_NAMES]
    + [f"{action}_{model}" for model in MANAGED for action in ACTIONS if action != "view"],
}


def create_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = {}
    for model, verbose_name in VERBOSE_NAMES.items():
        content_type, _ = ContentType.objects.get_or_create(app_label="conferences", model=model)
        for action in ACTIONS:
            permission, _ = Permission.objects.get_or_create(
                content_type=content_type,
                codename=f"{action}_{model}",
                defaults={"name": f"Can {action} {verbose_name}"},
            )
            permissions[permission.codename] = permission
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([permissions[codename] for codename in codenames])


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("conferences", "0003_events_subscriptions_deliveries"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]

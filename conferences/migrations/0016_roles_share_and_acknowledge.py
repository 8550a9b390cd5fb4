"""Share links and acknowledging a conference from its page are support admins' actions
(issue 19): the admin group gets add_sharelink and add_acknowledgement. A frozen copy,
like 0004 and 0013."""

from django.db import migrations

VERBOSE_NAMES = {"sharelink": "share link", "acknowledgement": "acknowledgement"}
GROUP = "support admin"
CODENAMES = ["add_sharelink", "add_acknowledgement"]


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = []
    for model, verbose_name in VERBOSE_NAMES.items():
        content_type, _ = ContentType.objects.get_or_create(app_label="conferences", model=model)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type,
            codename=f"add_{model}",
            defaults={"name": f"Can add {verbose_name}"},
        )
        permissions.append(permission)
    group = Group.objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="conferences", codename__in=CODENAMES
            )
        )


class Migration(migrations.Migration):
    dependencies = [("conferences", "0015_account_settings_checked")]

    operations = [migrations.RunPython(grant, revoke)]

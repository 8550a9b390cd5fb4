"""The support roles read the records added since 0004_roles: members, callback events
and acknowledgements (both roles), share links (support admins only: a link's page is
open to whoever holds it). A frozen copy, like 0004."""

from django.db import migrations

VERBOSE_NAMES = {
    "member": "member",
    "callbackevent": "callback event",
    "acknowledgement": "acknowledgement",
    "sharelink": "share link",
}
GROUPS = {
    "support viewer": ["view_member", "view_callbackevent", "view_acknowledgement"],
    "support admin": [
        "view_member",
        "view_callbackevent",
        "view_acknowledgement",
        "view_sharelink",
    ],
}


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permissions = {}
    for model, verbose_name in VERBOSE_NAMES.items():
        content_type, _ = ContentType.objects.get_or_create(app_label="conferences", model=model)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type,
            codename=f"view_{model}",
            defaults={"name": f"Can view {verbose_name}"},
        )
        permissions[permission.codename] = permission
    for name, codenames in GROUPS.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*[permissions[codename] for codename in codenames])


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for name, codenames in GROUPS.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="conferences", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [("conferences", "0012_user_preferences")]

    operations = [migrations.RunPython(grant, revoke)]

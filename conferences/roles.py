"""Who may do what: the two support roles, as Django groups, and the users who hold them.

A support viewer reads everything and changes nothing. A support admin manages tracking
(conferences), accounts and subscriptions, and reads the records (history, status
changes, poll errors, events, alert deliveries), which nobody edits. Both are staff, so
both reach the admin; the dashboard checks the same permissions in its views.

Migrations 0004_roles and 0013_roles_new_records create the groups with frozen copies of
these lists;
`ensure_groups` adds what is missing (createuser calls it, so a database whose groups
were deleted gets them back).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

VIEWER = "support viewer"
ADMIN = "support admin"
ROLES = {"viewer": VIEWER, "admin": ADMIN}

APP_LABEL = "conferences"
MANAGED_MODELS = ("conference", "account", "subscription")
RECORD_MODELS = (
    "historyentry",
    "statuschange",
    "pollerror",
    "event",
    "delivery",
    "member",
    "callbackevent",
    "acknowledgement",
)
# Share links: support admins only (a link's page is open to whoever holds it).
ADMIN_RECORD_MODELS = ("sharelink",)
ACTIONS = ("add", "change", "delete", "view")

# The dashboard's checks; the admin asks the same permissions of its model admins.
TRACK_PERMISSION = f"{APP_LABEL}.add_conference"


def group_permissions(group_name):
    """The permission codenames (of the conferences app) a role's group holds."""
    every_view = {f"view_{model}" for model in MANAGED_MODELS + RECORD_MODELS}
    if group_name == VIEWER:
        return every_view
    if group_name == ADMIN:
        managed = {f"{action}_{model}" for action in ACTIONS for model in MANAGED_MODELS}
        return every_view | managed | {f"view_{model}" for model in ADMIN_RECORD_MODELS}
    raise ValueError(f"Unknown group {group_name!r}.")


def ensure_groups():
    """Create the role groups if missing and give them every permission they lack
    (permissions someone added by hand are kept)."""
    groups = {}
    for group_name in ROLES.values():
        group, _ = Group.objects.get_or_create(name=group_name)
        wanted = Permission.objects.filter(
            content_type__app_label=APP_LABEL, codename__in=group_permissions(group_name)
        )
        group.permissions.add(*wanted)
        groups[group_name] = group
    return groups


def create_user(*, username, role, password, email=""):
    """A staff user in the role's group. Raises ValidationError (nothing written) for an
    unknown role, a taken name or a password the validators refuse."""
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"A user named {username!r} exists already.")
    user = User(username=username, email=email, is_staff=True)
    validate_password(password, user)
    with transaction.atomic():
        group = ensure_groups()[ROLES[role]]
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save()
        user.groups.add(group)
    return user


def can_track(user):
    return user.has_perm(TRACK_PERMISSION)


# The overview's row actions: pause and resume change a conference, untrack deletes it.
PAUSE_PERMISSION = f"{APP_LABEL}.change_conference"
UNTRACK_PERMISSION = f"{APP_LABEL}.delete_conference"

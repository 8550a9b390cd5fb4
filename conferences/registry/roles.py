"""Who may do what: the two support roles, as Django groups, the users who hold them, and
the one table of what each role may read and change (ABILITIES), which every view,
admin action and management command declares its need from.

A support viewer reads everything and changes only its own preferences and its own
subscriptions, addressed to its own email. A support admin also manages tracking
(conferences), accounts, everyone's subscriptions, share links and acknowledgements,
and reads the records (history, status changes, poll errors, events, alert deliveries),
which nobody edits. Both are staff, so both reach the admin; the dashboard asks the
same Django permissions in its views (`requires`) as the admin asks of its model admins.

Migrations 0004_roles, 0013_roles_new_records and 0015_roles_share_and_acknowledge create
the groups with frozen copies of these lists; `ensure_groups` adds what is missing
(createuser calls it, so a database whose groups were deleted gets them back).
"""

import functools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseNotAllowed

VIEWER = "support viewer"
ADMIN = "support admin"
ROLES = {"viewer": VIEWER, "admin": ADMIN}

APP_LABEL = "conferences"
MANAGED_MODELS = ("conference", "account", "subscription", "maintenancewindow")
RECORD_MODELS = (
    "historyentry",
    "pollerror",
    "event",
    "delivery",
    "member",
    "callbackevent",
    "acknowledgement",
)
# Share links: support admins only (a link's page is open to whoever holds it).
ADMIN_RECORD_MODELS = ("sharelink",)
# Support admins create share links and acknowledge a conference's alerts for everyone.
ADMIN_ADDS = ("sharelink", "acknowledgement")
ACTIONS = ("add", "change", "delete", "view")


def group_permissions(group_name):
    """The permission codenames (of the conferences app) a role's group holds."""
    every_view = {f"view_{model}" for model in MANAGED_MODELS + RECORD_MODELS}
    if group_name == VIEWER:
        return every_view
    if group_name == ADMIN:
        managed = {f"{action}_{model}" for action in ACTIONS for model in MANAGED_MODELS}
        admin_only = {f"view_{model}" for model in ADMIN_RECORD_MODELS}
        return every_view | managed | admin_only | {f"add_{model}" for model in ADMIN_ADDS}
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


# --------------------------------------------------------------------------- who may do what

# What an ability needs, besides a Django permission ("conferences.add_conference"):
OPEN = "anyone"  # nothing, or the token in the address authorises
SIGNED_IN = "signed in"  # any signed-in user
STAFF = "staff"  # the admin site: viewers, admins and superusers are staff
OPERATOR = "operator"  # a shell on the server: no web role

TABLE_ROLES = ("anonymous", "viewer", "admin", "superuser")
NEEDS_WORDS = (OPEN, SIGNED_IN, STAFF, OPERATOR)


@dataclass(frozen=True)
class Ability:
    what: str  # as the README's roles table says it
    needs: str  # OPEN, SIGNED_IN, STAFF, OPERATOR or a Django permission


ABILITIES = {
    "public": Ability(
        "Sign in; the health check; the icon; /metrics (which checks its own token or address)",
        OPEN,
    ),
    "token_links": Ability(
        "Links that carry their own token: unsubscribe and acknowledge from an alert email, "
        "a share link's page, Catapult's callbacks",
        OPEN,
    ),
    "pages.read": Ability(
        "Read the overview, conference pages, call search, maintenance windows, history "
        "exports, the JSON API (the JSON API and exports also with the user's API token)",
        SIGNED_IN,
    ),
    "account.own": Ability("Own time zone preference, own password, sign out", SIGNED_IN),
    "subscriptions.own": Ability(
        "Subscribe one's own email address; see, test and delete one's own subscriptions",
        SIGNED_IN,
    ),
    "subscriptions.others": Ability(
        "Subscribe any other address or a channel (dashboard); edit subscriptions and send "
        "them a test message (admin)",
        f"{APP_LABEL}.add_subscription",
    ),
    "conferences.track": Ability(
        "Track conferences (dashboard, admin, CSV import)", f"{APP_LABEL}.add_conference"
    ),
    "conferences.pause": Ability(
        "Pause, resume, poll now, edit a conference's label and tags",
        f"{APP_LABEL}.change_conference",
    ),
    "conferences.untrack": Ability(
        "Untrack conferences (deletes their history)", f"{APP_LABEL}.delete_conference"
    ),
    "conferences.acknowledge": Ability(
        "Acknowledge a conference on its page (silences its alerts for everyone)",
        f"{APP_LABEL}.add_acknowledgement",
    ),
    "share_links.manage": Ability(
        "Create and revoke share links; see the live share URLs", f"{APP_LABEL}.add_sharelink"
    ),
    "maintenance.manage": Ability(
        "Add, edit and end maintenance windows (alerts held, then summarised)",
        f"{APP_LABEL}.add_maintenancewindow",
    ),
    "accounts.manage": Ability(
        "Add and edit Catapult accounts, test their credentials", f"{APP_LABEL}.change_account"
    ),
    "api_tokens.manage": Ability(
        "Create API tokens for any user and revoke them (admin); a token reads only",
        f"{APP_LABEL}.change_apitoken",
    ),
    "admin.site": Ability(
        "Open the admin; each admin page as the role's model permissions say", STAFF
    ),
    "operator": Ability("Management commands (run from a shell on the server)", OPERATOR),
}

# The views Django provides declare here what the project's views declare with @requires.
# The admin's pages (names "admin:...") need "admin.site" and then each model admin's
# own permissions (has_view_permission, has_change_permission, ...).
FRAMEWORK_VIEWS = {
    "login": {"GET": "public", "POST": "public", "PUT": "public"},
    "logout": {"POST": "account.own"},
    "password_change": {"GET": "account.own", "POST": "account.own", "PUT": "account.own"},
    "password_change_done": {"GET": "account.own"},
    "favicon": {method: "public" for method in ("GET", "POST", "PUT", "PATCH", "DELETE")},
    "admin:login": {"GET": "public", "POST": "public", "PUT": "public"},
}
ADMIN_VIEWS = "admin.site"

# Every management command runs as the operator (a shell on the server, the database's
# credentials): none is reachable from the web.
COMMANDS = {
    name: "operator"
    for name in (
        "add_account",
        "api_token",
        "callback_url",
        "conference_status",
        "createuser",
        "demo_ready",
        "demo_setup",
        "import_conferences",
        "maintenance",
        "poll_once",
        "rotate_keys",
        "send_alerts",
        "share_link",
        "subscribe",
        "track",
    )
}


def allows(user, name):
    """Whether the user (anonymous or signed in) has the ability."""
    needs = ABILITIES[name].needs
    if needs == OPEN:
        return True
    if not user.is_authenticated or needs == OPERATOR:
        return False
    if needs == SIGNED_IN:
        return True
    if needs == STAFF:
        return user.is_active and user.is_staff
    return user.has_perm(needs)


def is_own_address(user, email):
    """Whether email is the user's own address: all a user without "subscriptions.others"
    may subscribe."""
    own = (user.email or "").strip().casefold()
    return bool(own) and str(email or "").strip().casefold() == own


def role_allows(role, name):
    """Whether a role of TABLE_ROLES has the ability, by its group's permissions: what
    `allows` answers for a user who holds the role (the README's table)."""
    needs = ABILITIES[name].needs
    if needs == OPEN:
        return True
    if role == "anonymous" or needs == OPERATOR:
        return False
    if role == "superuser" or needs in (SIGNED_IN, STAFF):
        return True
    app_label, codename = needs.split(".")
    return app_label == APP_LABEL and codename in group_permissions(ROLES[role])


def markdown_table():
    """The README's roles table: each ability, what it needs, and which roles hold it."""
    lines = [
        "| Ability | What | Needs | " + " | ".join(TABLE_ROLES) + " |",
        "|---|---|---|" + "---|" * len(TABLE_ROLES),
    ]
    for name, ability in ABILITIES.items():
        cells = ["yes" if role_allows(role, name) else "no" for role in TABLE_ROLES]
        needs = ability.needs if ability.needs in NEEDS_WORDS else f"`{ability.needs}`"
        lines.append(f"| `{name}` | {ability.what} | {needs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def requires(**abilities):
    """A view's declaration of the ability each method needs (`GET=` allows HEAD too):
    another method answers 405, a user without the ability 403 (nothing runs). The walk
    test (tests/test_permission_walk.py) reads `view.permissions`."""
    unknown = set(abilities.values()) - set(ABILITIES)
    if unknown:
        raise ValueError(f"Unknown abilities {sorted(unknown)}.")
    allowed_methods = sorted(set(abilities) | ({"HEAD"} if "GET" in abilities else set()))

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            method = "GET" if request.method == "HEAD" else request.method
            if method not in abilities:
                return HttpResponseNotAllowed(allowed_methods)
            if not allows(request.user, abilities[method]):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.permissions = dict(abilities)
        return wrapper

    return decorator


def admin_permission(name):
    """A model admin's `has_<x>_permission` method for actions declared
    `permissions=["<x>"]`: the ability from the table."""

    def has_permission(model_admin, request, obj=None):
        return allows(request.user, name)

    has_permission.ability = name
    return has_permission

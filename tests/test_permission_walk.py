"""Every URL pattern of the project, every method, every role, against the roles table
(conferences/registry/roles.py): anonymous visitors go to sign in (the JSON API answers 401), a
refused request answers 403 and changes nothing, an allowed one is not refused. A URL
that declares nothing fails here, so a new view cannot be added without its line in the
table."""

import re

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import RequestFactory

from conferences.alerting import acknowledgements, sharing, subscriptions
from conferences.alerting.unsubscribe import token_for as unsubscribe_token
from conferences.callbacks import receiver
from conferences.models import CallbackSettings
from conferences.registry import roles, tokens
from tests.test_access import snapshot, url_patterns
from tests.test_roles import PASSWORD, world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ADMIN_METHODS = ("GET", "POST")  # the admin's pages are forms and lists
JSON_API = {"conferences:api-list", "conferences:api-history", "conferences:api-call"}
LOGIN_PATHS = ("/accounts/login/", "/admin/login/")
LOGOUTS = {"logout", "admin:logout"}


def declared(route, name, view):
    """What the table says the URL needs, by method, or "admin" for the admin's model and
    site pages (Django's model permissions, each model admin's has_*_permission)."""
    if name in roles.FRAMEWORK_VIEWS:
        return roles.FRAMEWORK_VIEWS[name]
    if (name or "").startswith("admin:") or (name is None and route.startswith("admin/")):
        return "admin"
    return getattr(view, "permissions", None)


def test_every_url_declares_what_each_method_needs_from_the_table():
    undeclared = [
        (route, name) for route, name, view in url_patterns() if not declared(route, name, view)
    ]
    named = {
        ability
        for route, name, view in url_patterns()
        if isinstance(declared(route, name, view), dict)
        for ability in declared(route, name, view).values()
    }

    assert undeclared == []
    assert named <= set(roles.ABILITIES)
    assert roles.ADMIN_VIEWS in roles.ABILITIES


# ---------------------------------------------------------------- the objects walked on


def walker(role):
    email = f"{role}@example.com"
    if role == "superuser":
        return User.objects.create_superuser("root", email=email, password=PASSWORD)
    return roles.create_user(username=role, role=role, password=PASSWORD, email=email)


def objects_for(world, user):  # noqa: F811
    """A real object behind every parameter of every URL, and every admin's model."""
    account, conference = world["account"], world["conference"]
    subscription, _ = subscriptions.subscribe(email=user.email, user=user) if user else (None, 0)
    link = sharing.create_link(conference=conference)
    callback_url = receiver.callback_url(account)
    by_model = {f"conferences.{model}": obj for model, obj in world.items()}
    by_model["conferences.sharelink"] = link
    by_model["conferences.callbacksettings"] = CallbackSettings.objects.get(account=account)
    by_model["auth.user"] = user or User.objects.create_user("someone")
    by_model["conferences.apitoken"], _ = tokens.create_token(
        name="walked", user=by_model["auth.user"]
    )
    by_model["auth.group"] = Group.objects.get(name=roles.VIEWER)
    by_model["admin.logentry"] = LogEntry.objects.log_actions(
        by_model["auth.user"].pk, [conference], CHANGE, "walked", single_object=True
    )
    seen = {"user_agent": "walk", "http_accept": "*/*", "path_info": "/", "username": "x"}
    by_model["axes.accessattempt"] = AccessAttempt.objects.create(
        **seen, get_data="", post_data="", failures_since_start=1
    )
    by_model["axes.accesslog"] = AccessLog.objects.create(**seen)
    by_model["axes.accessfailurelog"] = AccessFailureLog.objects.create(**seen)
    return {
        "by_model": by_model,
        "pk": {
            "conferences:alert-delete": subscription.pk if subscription else 1,
            "conferences:alert-test": subscription.pk if subscription else 1,
            "conferences:share-revoke": link.pk,
        },
        "conference": conference,
        "token": {
            "conferences:unsubscribe": unsubscribe_token(world["subscription"]),
            "conferences:acknowledge-alert": acknowledgements.token_for(world["delivery"]),
            "conferences:shared": sharing.token_for(link),
        },
        "secret": re.search(r"/callbacks/([^/]+)/", callback_url).group(1),
    }


def admin_model(name):
    """(model admin, view) of an admin URL name such as admin:conferences_conference_add."""
    for model, model_admin in admin.site._registry.items():
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        if (name or "").startswith(prefix):
            return model_admin, name.removeprefix(prefix)
    return None, None


def concrete_url(route, name, objects):
    model_admin, _ = admin_model(name)
    label = model_admin.model._meta.label_lower if model_admin else ""
    conference = objects["conference"]
    values = {
        "pk": str(objects["pk"].get(name, conference.pk)),
        "token": objects["token"].get(name, ""),
        "secret": objects["secret"],
        "conference_id": conference.conference_id,
        "call_id": "c-1",
        "fmt": "csv",
        "object_id": str(objects["by_model"][label].pk if label else conference.pk),
        "id": str(objects["by_model"][label].pk if label else conference.pk),
        "content_type_id": str(conference_content_type()),
        "app_label": "conferences",
        "url": "no-such-page/",
    }
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], route)
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], url)
    return "/" + url.replace("^", "").replace("$", "") + QUERIES.get(name, "")


# The admin's autocomplete answers 403 without saying which field it completes.
QUERIES = {
    "admin:autocomplete": "?app_label=conferences&model_name=subscription"
    "&field_name=conferences&term=conf"
}


def conference_content_type():
    return ContentType.objects.get(app_label="conferences", model="conference").pk


# ---------------------------------------------------------------- what the table expects

ALLOWED, REFUSED, TO_LOGIN, UNAUTHORIZED, NOT_ALLOWED = "allowed", 403, "to login", 401, 405


def expected(role, route, name, view, method, user, objects):
    needs = declared(route, name, view)
    if needs == "admin":
        return expected_in_admin(role, name, method, user, objects)
    if role == "anonymous" and (
        getattr(view, "login_required", True) or getattr(view, "signed_out", "") == "login"
    ):
        return TO_LOGIN  # the middleware (or token_readable), whatever the method
    if role == "anonymous" and name in JSON_API:
        return UNAUTHORIZED
    if method not in needs:
        return NOT_ALLOWED
    return ALLOWED if roles.role_allows(role, needs[method]) else REFUSED


def expected_in_admin(role, name, method, user, objects):
    """The admin's own pages need staff ("admin.site"); a model's pages then ask the
    model admin's permissions, as Django's views do."""
    if not roles.role_allows(role, roles.ADMIN_VIEWS):
        return TO_LOGIN
    model_admin, page = admin_model(name)
    if model_admin is None:
        if name == "admin:autocomplete":
            conferences = admin.site._registry[type(objects["conference"])]
            return ALLOWED if conferences.has_view_permission(request_of(user)) else REFUSED
        return ALLOWED
    request = request_of(user)
    obj = objects["by_model"][model_admin.model._meta.label_lower]
    may = {
        "changelist": lambda: model_admin.has_view_or_change_permission(request),
        "add": lambda: model_admin.has_add_permission(request),
        "import": lambda: model_admin.has_add_permission(request),
        "history": lambda: model_admin.has_view_or_change_permission(request, obj),
        # Deleting also needs the permission to delete what goes with it (Django's check).
        "delete": lambda: (
            model_admin.has_delete_permission(request, obj)
            and (method == "GET" or not model_admin.get_deleted_objects([obj], request)[2])
        ),
        "password_change": lambda: model_admin.has_change_permission(request, obj),
        "change": lambda: (
            model_admin.has_change_permission(request, obj)
            if method == "POST"
            else model_admin.has_view_or_change_permission(request, obj)
        ),
    }
    assert page in may, f"{name}: an admin page the walk does not know; add it here"
    return ALLOWED if may[page]() else REFUSED


def request_of(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def rows_written():
    """Rows inserted, updated or deleted so far in this transaction, by table (Postgres'
    own count; a session's row is the request's to touch)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables"
            " WHERE relname <> 'django_session'"
        )
        return dict(cursor.fetchall())


def answer_of(response):
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(LOGIN_PATHS) and "next=" in location:
            return TO_LOGIN
    if response.status_code in (401, 403, 405):
        return response.status_code
    return ALLOWED


# ---------------------------------------------------------------- the walk


@pytest.mark.parametrize("role", roles.TABLE_ROLES)
def test_every_url_and_method_answers_each_role_as_the_table_says(client, world, role):  # noqa: F811
    user = None if role == "anonymous" else walker(role)
    if user:
        client.force_login(user)
    objects = objects_for(world, user)
    data = {"post": "yes", "email": user.email if user else "nobody@example.com"}
    session = client.cookies.get(settings.SESSION_COOKIE_NAME, "")
    session = session.value if session else ""
    before = snapshot()
    wrong, walked = [], 0

    for route, name, view in url_patterns():
        url = concrete_url(route, name, objects)
        is_admin = declared(route, name, view) == "admin"
        for method in ADMIN_METHODS if is_admin else METHODS:
            want = expected(role, route, name, view, method, user, objects)
            with transaction.atomic():  # an allowed change (untrack, delete) is undone
                written = rows_written()
                if method == "POST":
                    response = client.post(url, data)
                else:
                    response = client.generic(method, url)
                got = answer_of(response)
                if want in (REFUSED, TO_LOGIN, UNAUTHORIZED) and method != "GET":
                    assert rows_written() == written, f"{method} {url} changed something"
                transaction.set_rollback(True)
            walked += 1
            assert response.status_code < 500, f"{method} {url}"
            if got != want and not (is_admin and want == ALLOWED and got == NOT_ALLOWED):
                wrong.append((method, url, name, want, got, response.status_code))
            if name in LOGOUTS:
                client.cookies[settings.SESSION_COOKIE_NAME] = session  # its row was rolled back

    assert wrong == [], "\n".join(map(str, wrong))
    assert walked > 300
    assert snapshot() == before


def token_readable(view):
    return hasattr(view, "signed_out")  # conferences.web.auth.token_readable


def test_the_json_api_is_what_api_tokens_read():
    readable = {name for _, name, view in url_patterns() if token_readable(view)}

    assert readable == JSON_API | {"conferences:history-export"}


@pytest.mark.parametrize("role", roles.TABLE_ROLES[1:])
def test_an_api_token_reads_as_its_users_role_and_never_writes_or_signs_in(client, world, role):  # noqa: F811
    """The JSON API answers a token as the table answers its user's role on GET and HEAD,
    and 403 to every other method; every other URL answers it as an anonymous visitor."""
    user = walker(role)
    objects = objects_for(world, user)
    _, token_text = tokens.create_token(name=f"{role}'s script", user=user)
    headers = {"Authorization": f"Bearer {token_text}"}
    before = snapshot()
    wrong = []

    for route, name, view in url_patterns():
        url = concrete_url(route, name, objects)
        methods = METHODS + ("HEAD",) if token_readable(view) else ("GET",)
        for method in methods:
            if name == "conferences:metrics":
                want = 401  # /metrics checks its own token: any other bearer is refused
            elif not token_readable(view):
                want = expected("anonymous", route, name, view, method, None, objects)
            elif method in ("GET", "HEAD"):
                want = expected(role, route, name, view, "GET", user, objects)
            else:
                want = REFUSED
            with transaction.atomic():
                response = client.generic(method, url, headers=headers)
                transaction.set_rollback(True)
            got = answer_of(response)
            assert response.status_code < 500, f"{method} {url}"
            if got != want:
                wrong.append((method, url, name, want, got, response.status_code))

    assert wrong == [], "\n".join(map(str, wrong))
    assert snapshot() == before

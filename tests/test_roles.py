"""The two support roles: what anonymous visitors, viewers and admins can see and do, in
the admin and on the dashboard; the groups; the createuser command; where the API secret
must never show."""

import importlib
import logging
import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from conferences.admin import common
from conferences.alerting import sharing, subscriptions
from conferences.models import (
    Account,
    Acknowledgement,
    CallbackEvent,
    CallbackSettings,
    Conference,
    ConferenceMembersRead,
    Delivery,
    Event,
    HistoryEntry,
    MaintenanceWindow,
    Member,
    PollError,
    ShareLink,
    Subscription,
)
from conferences.registry import roles
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
TOKEN = "t-token-nobody-sees"
SECRET = "s-secret-nobody-sees"
MANAGED = ["account", "conference", "subscription", "maintenancewindow"]
RECORDS = [
    "historyentry",
    "pollerror",
    "event",
    "delivery",
    "member",
    "callbackevent",
    "acknowledgement",
]


@pytest.fixture
def world(db):
    """One of everything, so every admin page has an object to show."""
    account = make_account(name="acme", token=TOKEN, secret=SECRET)
    conference = make_conference(account, "conf-alpha", label="Board call", tags=["vip"])
    now = timezone.now()
    HistoryEntry.objects.create(
        conference=conference, state="active", first_seen_at=now, last_seen_at=now
    )
    PollError.objects.create(
        conference=conference,
        poll_status="not_found",
        message="gone",
        first_seen_at=now,
        last_seen_at=now,
    )
    event = Event.objects.create(
        kind="state_changed",
        account=account,
        conference=conference,
        occurred_at=now,
        before="created",
        after="active",
    )
    subscription, _ = subscriptions.subscribe(email="ann@example.com", tag="vip")
    delivery = Delivery.objects.create(
        email="ann@example.com",
        conference=conference,
        subscription=subscription,
        subject="Board call is active",
    )
    delivery.events.add(event)
    member = Member.objects.create(
        conference=conference,
        member_id="m-1",
        call_id="c-1",
        first_seen_at=now,
        last_seen_at=now,
        last_changed_at=now,
    )
    callback_event = CallbackEvent.objects.create(
        account=account,
        dedupe_key="k-1",
        event_type="conference",
        conference_id="conf-alpha",
        payload={"eventType": "conference"},
        received_at=now,
    )
    acknowledgement = Acknowledgement.objects.create(
        conference=conference, by="ann", what="the conference's alerts", created_at=now
    )
    window = MaintenanceWindow.objects.create(
        account=account, starts_at=now, ends_at=now + timedelta(hours=1), time_zone="UTC"
    )
    return {
        "maintenancewindow": window,
        "member": member,
        "callbackevent": callback_event,
        "acknowledgement": acknowledgement,
        "account": account,
        "conference": conference,
        "subscription": subscription,
        "historyentry": conference.history.get(),
        "pollerror": conference.errors.get(),
        "event": event,
        "delivery": delivery,
    }


def signed_in_as(client, role):
    if role == "anonymous":
        return client
    if role == "superuser":
        user = User.objects.create_superuser("root", password=PASSWORD)
    else:
        user = roles.create_user(username=role, role=role, password=PASSWORD)
    client.force_login(user)
    return client


def admin_urls(world):
    """Every admin page of the project, by what it is for."""
    urls = {"/admin/": "index", "/admin/conferences/": "index"}
    for model in MANAGED + RECORDS:
        pk = world[model].pk
        base = f"/admin/conferences/{model}/"
        urls[base] = "list"
        urls[f"{base}add/"] = "add"
        urls[f"{base}{pk}/change/"] = "view"
        urls[f"{base}{pk}/history/"] = "view"
        urls[f"{base}{pk}/delete/"] = "delete"
    urls["/admin/conferences/conference/import/"] = "import"
    urls["/admin/admin/logentry/"] = "log"
    urls["/admin/auth/user/"] = "auth"
    urls["/admin/auth/group/"] = "auth"
    return urls


def expected_status(role, url, purpose):
    model = url.split("/")[3] if url.count("/") > 3 else ""
    if role == "anonymous":
        return 302
    if purpose in ("index", "list", "view"):
        return 200
    if purpose in ("log", "auth"):
        return 403
    if role == "viewer":
        return 403
    if purpose == "import":
        return 200
    return 200 if model in MANAGED else 403  # add, delete: the support admin's models only


@pytest.mark.parametrize("role", ["anonymous", "viewer", "admin"])
def test_every_admin_page_answers_each_role_as_its_permissions_say(client, world, role):
    client = signed_in_as(client, role)

    answers = {url: client.get(url).status_code for url in admin_urls(world)}

    expected = {
        url: expected_status(role, url, purpose) for url, purpose in admin_urls(world).items()
    }
    assert answers == expected
    if role == "anonymous":
        assert client.get("/admin/").url.startswith("/admin/login/")


def test_a_viewer_reads_the_admin_without_a_single_control_to_change_it(client, world):
    client = signed_in_as(client, "viewer")

    for model in MANAGED + RECORDS:
        listing = client.get(f"/admin/conferences/{model}/").content.decode()
        page = client.get(f"/admin/conferences/{model}/{world[model].pk}/change/").content.decode()
        assert f"/admin/conferences/{model}/add/" not in listing
        assert 'name="_save"' not in page and "/delete/" not in page
        assert "<textarea" not in page and 'type="text"' not in page
    conferences = client.get("/admin/conferences/conference/").content.decode()
    actions = re.findall(r'<option value="(\w+)">', conferences)
    assert actions == ["export_csv"]
    assert "Import CSV" not in conferences


def test_a_support_admin_manages_tracking_but_not_the_records(client, world):
    client = signed_in_as(client, "admin")

    conferences = client.get("/admin/conferences/conference/").content.decode()
    history = client.get("/admin/conferences/historyentry/").content.decode()

    actions = set(re.findall(r'<option value="(\w+)">', conferences))
    assert actions == {
        "delete_selected",
        "pause_tracking",
        "resume_tracking",
        "poll_now",
        "export_csv",
    }
    assert "Import CSV" in conferences
    assert "/admin/conferences/historyentry/add/" not in history
    assert 'value="delete_selected"' not in history


def test_what_a_viewer_tries_to_change_stays_as_it_was(client, world):
    client = signed_in_as(client, "viewer")
    conference, account = world["conference"], world["account"]

    paused = client.post(
        "/admin/conferences/conference/",
        {"action": "pause_tracking", "_selected_action": [conference.pk]},
    )
    changed = client.post(
        f"/admin/conferences/conference/{conference.pk}/change/",
        {"label": "Hijacked", "tags": "", "paused": "on"},
    )
    deleted = client.post(f"/admin/conferences/conference/{conference.pk}/delete/", {"post": "yes"})
    secret = client.post(
        f"/admin/conferences/account/{account.pk}/change/",
        {
            "name": "acme",
            "user_id": "u",
            "base_url": "https://x.example",
            "request_budget": 1,
            "api_token": "t",
            "api_secret": "s",
        },
    )
    imported = client.post(
        "/admin/conferences/conference/import/", {"account": account.pk, "text": "conf-new"}
    )
    tracked = client.post("/conferences/track/", {"account": account.pk, "conference_ids": "x1"})

    assert paused.status_code == 302  # back to the changelist: the action is not offered
    assert [changed.status_code, deleted.status_code, secret.status_code] == [403, 403, 403]
    assert [imported.status_code, tracked.status_code] == [403, 403]
    conference = reload(conference)
    assert not conference.paused and conference.label == "Board call"
    assert reload(account).credentials() == (TOKEN, SECRET)
    assert Conference.objects.count() == 1
    assert not LogEntry.objects.exists()


def test_every_admin_change_is_logged_with_who_made_it(client, world):
    client = signed_in_as(client, "admin")
    conference, account = world["conference"], world["account"]

    client.post(
        f"/admin/conferences/conference/{conference.pk}/change/",
        {"label": "Board call (new)", "tags": "vip", **empty_inlines()},
    )
    client.post(
        f"/admin/conferences/account/{account.pk}/change/",
        {
            "name": "acme",
            "user_id": account.user_id,
            "base_url": account.base_url,
            "request_budget": "3",
            "api_secret": "s-rotated",
        },
    )
    client.post(
        "/admin/conferences/conference/",
        {"action": "pause_tracking", "_selected_action": [conference.pk]},
    )
    client.post("/admin/conferences/conference/import/", {"account": account.pk, "text": "conf-b"})
    client.post(
        "/admin/conferences/conference/",
        {"action": "delete_selected", "_selected_action": [conference.pk], "post": "yes"},
    )

    log = list(
        LogEntry.objects.order_by("pk").values_list(
            "user__username", "object_repr", "change_message"
        )
    )
    assert [who for who, _, _ in log] == ["admin"] * 5
    assert [what for _, what, _ in log] == [
        "Board call (new)",
        "acme",
        "Board call (new)",
        "conf-b",
        "Board call (new)",
    ]
    assert "Label" in log[0][2] and "API secret" in log[1][2] and "s-rotated" not in log[1][2]
    assert log[2][2] == "Paused tracking." and log[3][2] == "Imported from CSV."


def empty_inlines():
    """The management forms of the conference page's read-only inlines."""
    data = {}
    for prefix in ["history", "errors", "events", "deliveries"]:
        data[f"{prefix}-TOTAL_FORMS"] = "0"
        data[f"{prefix}-INITIAL_FORMS"] = "0"
    return data


# ---------------------------------------------------------------- the dashboard


def dashboard_urls(world):
    conference = world["conference"]
    return [
        "/",
        f"/conferences/{conference.pk}/",
        "/conferences/track/",
        "/alerts/",
        "/api/conferences/",
        f"/api/conferences/{conference.conference_id}/history/",
    ]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("anonymous", [302, 302, 302, 302, 401, 401]),
        ("viewer", [200, 200, 403, 200, 200, 200]),
        ("admin", [200, 200, 200, 200, 200, 200]),
    ],
)
def test_every_dashboard_page_answers_each_role_as_its_permissions_say(
    client, world, role, expected
):
    client = signed_in_as(client, role)

    answers = [client.get(url).status_code for url in dashboard_urls(world)]

    assert answers == expected


def test_only_those_who_may_track_are_offered_the_track_page(client, world):
    viewer_page = signed_in_as(client, "viewer").get("/").content.decode()
    client.logout()
    admin_page = signed_in_as(client, "admin").get("/").content.decode()

    assert "Track a conference" not in viewer_page and "Track a conference" in admin_page
    assert "/admin/" in viewer_page  # both are staff


def test_a_support_admin_tracks_from_the_dashboard(client, world):
    client = signed_in_as(client, "admin")

    response = client.post(
        "/conferences/track/",
        {"account": world["account"].pk, "conference_ids": "conf-new", "tags": ""},
        follow=True,
    )

    assert "Now tracking conf-new." in response.content.decode()


# ---------------------------------------------------------------- groups and users


def test_the_migration_creates_the_two_groups_with_exactly_their_permissions(db):
    Group.objects.filter(name__in=roles.ROLES.values()).delete()
    importlib.import_module("conferences.migrations.0004_roles").create_groups(apps, None)
    importlib.import_module("conferences.migrations.0013_roles_new_records").grant(apps, None)
    importlib.import_module("conferences.migrations.0016_roles_share_and_acknowledge").grant(
        apps, None
    )
    importlib.import_module("conferences.migrations.0018_state_since").forget_status_changes(
        apps, None
    )
    importlib.import_module("conferences.migrations.0021_maint_windows_grouping").grant(apps, None)

    for group_name in roles.ROLES.values():
        group = Group.objects.get(name=group_name)
        held = set(group.permissions.values_list("content_type__app_label", "codename"))
        assert held == {
            ("conferences", codename) for codename in roles.group_permissions(group_name)
        }
    viewer = roles.group_permissions(roles.VIEWER)
    assert viewer == {f"view_{model}" for model in MANAGED + RECORDS}
    admin = roles.group_permissions(roles.ADMIN)
    assert {"add_conference", "change_account", "delete_subscription"} <= admin
    assert "view_sharelink" in admin and "view_sharelink" not in viewer
    assert {"add_sharelink", "add_acknowledgement"} <= admin
    assert {name for name in admin if name.endswith(tuple(RECORDS)) and "view" not in name} == {
        "add_acknowledgement"  # acknowledging from the conference page
    }


def test_createuser_makes_a_staff_user_in_the_role_with_the_password_from_the_environment(
    client, monkeypatch, db
):
    monkeypatch.setenv("CONFWATCH_USER_PASSWORD", PASSWORD)
    out = StringIO()

    call_command("createuser", "vera", "--role", "viewer", "--email", "v@example.com", stdout=out)

    user = User.objects.get(username="vera")
    assert user.is_staff and not user.is_superuser and user.email == "v@example.com"
    assert list(user.groups.values_list("name", flat=True)) == ["support viewer"]
    assert "Created vera, support viewer (staff)." in out.getvalue()
    assert PASSWORD not in out.getvalue()
    assert client.login(username="vera", password=PASSWORD)
    assert client.get("/admin/conferences/conference/").status_code == 200


def test_createuser_asks_for_the_password_when_the_environment_has_none(monkeypatch, db):
    monkeypatch.delenv("CONFWATCH_USER_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    call_command("createuser", "adam", "--role", "admin", stdout=StringIO())

    user = User.objects.get(username="adam")
    assert user.check_password(PASSWORD) and user.is_staff
    assert user.has_perm("conferences.add_conference")
    assert not user.has_perm("conferences.delete_historyentry")


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["vera", "--role", "viewer"], "short", "too short"),
        (["vera", "--role", "viewer"], "password", "too common"),
        (["taken", "--role", "admin"], PASSWORD, "exists already"),
    ],
)
def test_createuser_refuses_clearly_and_creates_nothing(monkeypatch, db, args, password, message):
    User.objects.create_user("taken")
    monkeypatch.setenv("CONFWATCH_USER_PASSWORD", password)

    with pytest.raises(CommandError, match=message):
        call_command("createuser", *args, stdout=StringIO())

    assert list(User.objects.values_list("username", flat=True)) == ["taken"]


def test_createuser_without_a_terminal_or_a_password_says_what_to_set(monkeypatch, db):
    monkeypatch.delenv("CONFWATCH_USER_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)

    with pytest.raises(CommandError, match="Set CONFWATCH_USER_PASSWORD"):
        call_command("createuser", "vera", "--role", "viewer", stdout=StringIO())


def test_createuser_refuses_an_unknown_role(db):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("createuser", "vera", "--role", "boss", stdout=StringIO())


# ---------------------------------------------------------------- the secret


@pytest.mark.parametrize("role", ["viewer", "admin", "superuser"])
def test_the_secret_shows_on_no_admin_page_export_or_log(client, world, role, caplog):
    caplog.set_level(logging.DEBUG)
    account = world["account"]
    hidden = [TOKEN, SECRET, account.api_token_encrypted, account.api_secret_encrypted]
    client = signed_in_as(client, role)
    client.post(
        "/admin/conferences/account/",
        {"action": "check_credentials", "_selected_action": [account.pk]},
    )

    pages = {url: client.get(url).content.decode() for url in admin_urls(world)}
    pages["export"] = client.post(
        "/admin/conferences/conference/",
        {"action": "export_csv", "_selected_action": [world["conference"].pk]},
    ).content.decode()
    pages["dashboard"] = client.get("/").content.decode()
    pages["api"] = client.get("/api/conferences/").content.decode()
    pages["log"] = caplog.text
    pages["admin log"] = repr(list(LogEntry.objects.values()))

    leaks = {name for name, text in pages.items() for value in hidden if value in text}
    assert not leaks
    assert len(pages["export"]) > 50


def test_an_error_report_never_shows_the_secret_that_was_posted(
    client, world, settings, monkeypatch, mailoutbox, caplog
):
    # Production: DEBUG off, a generic error page, the full report mailed to ADMINS
    # (with the request's POST and every frame's variables). With DEBUG on, Django shows
    # a developer everything on purpose.
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = signed_in_as(client, "admin")
    client.raise_request_exception = False
    account = world["account"]
    # Built here, so that the test's own source lines in the traceback do not hold them.
    posted_token, posted_secret = "-".join(["t", "posted", "token"]), "-".join(["s", "gone"])

    def explode(self, *args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Account, "save", explode)
    response = client.post(
        f"/admin/conferences/account/{account.pk}/change/",
        {
            "name": "acme",
            "user_id": account.user_id,
            "base_url": account.base_url,
            "request_budget": "1",
            "api_token": posted_token,
            "api_secret": posted_secret,
        },
    )

    assert response.status_code == 500
    assert len(mailoutbox) == 1
    report = mailoutbox[0].body + "".join(str(part[0]) for part in mailoutbox[0].alternatives)
    assert "the database went away" in report and "api_secret" in report
    for text in [response.content.decode(), report, caplog.text]:
        for value in [posted_token, posted_secret, TOKEN, SECRET]:
            assert value not in text


def test_the_account_form_never_renders_the_credentials_back(client, world):
    client = signed_in_as(client, "admin")
    account = world["account"]

    refused = client.post(
        f"/admin/conferences/account/{account.pk}/change/",
        {
            "name": "acme",
            "user_id": account.user_id,
            "base_url": "https://elsewhere.example",
            "request_budget": "1",
            "api_token": "t-typed",
            "api_secret": "",
        },
    )

    text = refused.content.decode()
    assert refused.status_code == 200 and "t-typed" not in text
    assert "enter the API token and secret again" in text


def test_the_admin_module_names_its_record_models(db):
    assert common.RECORD_MODELS == {
        HistoryEntry,
        PollError,
        Event,
        Delivery,
        Acknowledgement,
        ShareLink,
        Member,
        ConferenceMembersRead,
        CallbackEvent,
        CallbackSettings,
    }


def test_a_support_admin_edits_a_subscription_without_seeing_the_users(client, world):
    client = signed_in_as(client, "admin")
    subscription = world["subscription"]

    page = client.get(f"/admin/conferences/subscription/{subscription.pk}/change/")
    response = client.post(
        f"/admin/conferences/subscription/{subscription.pk}/change/",
        {
            "email": "bob@example.com",
            "scope": "tag",
            "tag": "vip",
            "kinds": "state,hold",
            "time_zone": "",
        },
    )

    assert page.status_code == 200 and 'name="user"' not in page.content.decode()
    assert response.status_code == 302
    subscription = reload(subscription)
    assert subscription.email == "bob@example.com" and subscription.kinds == ["state", "hold"]
    autocomplete = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "conferences",
            "model_name": "subscription",
            "field_name": "conferences",
            "term": "conf",
        },
    )
    assert "Board call" in autocomplete.content.decode()  # found by its id


# ---------------------------------------------------------------- the roles table


def test_the_readme_shows_the_modules_roles_table():
    readme = (settings.BASE_DIR / "README.md").read_text()

    assert roles.markdown_table() in readme


def test_each_role_holds_exactly_the_abilities_the_table_gives_it(world):
    users = {
        role: roles.create_user(username=role, role=role, password=PASSWORD)
        for role in ["viewer", "admin"]
    }
    users["superuser"] = User.objects.create_superuser("root", password=PASSWORD)
    users["anonymous"] = AnonymousUser()

    held = {
        role: {name for name in roles.ABILITIES if roles.allows(user, name)}
        for role, user in users.items()
    }

    assert held == {
        role: {name for name in roles.ABILITIES if roles.role_allows(role, name)}
        for role in roles.TABLE_ROLES
    }
    assert held["anonymous"] == {"public", "token_links"}
    assert held["viewer"] == {"public", "token_links", "pages.read", "account.own"} | {
        "subscriptions.own",
        "admin.site",
    }
    # API tokens are the superuser's: a token may read as any user (a superuser too).
    assert held["admin"] == set(roles.ABILITIES) - {"operator", "api_tokens.manage"}
    assert held["superuser"] == set(roles.ABILITIES) - {"operator"}


def test_every_management_command_declares_that_it_runs_as_the_operator():
    commands = Path(settings.BASE_DIR, "conferences", "management", "commands").glob("*.py")

    names = {path.stem for path in commands if not path.stem.startswith("_")}

    assert names == set(roles.COMMANDS)
    assert set(roles.COMMANDS.values()) == {"operator"}


def test_every_admin_action_names_its_ability_from_the_table():
    undeclared = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "conferences":
            continue
        for function, name, _ in model_admin._get_base_actions():
            if name == "delete_selected":
                continue  # Django's, on the model's delete permission
            abilities = [
                getattr(getattr(model_admin, f"has_{permission}_permission"), "ability", None)
                for permission in getattr(function, "allowed_permissions", ())
            ]
            if not abilities or not set(abilities) <= set(roles.ABILITIES):
                undeclared.append((model.__name__, name, abilities))

    assert undeclared == []


# ---------------------------------------------------------------- what a viewer may not do


def test_a_viewer_cannot_share_revoke_acknowledge_or_subscribe_another_address(client, world):
    conference = world["conference"]
    support_admin = roles.create_user(username="adam", role="admin", password=PASSWORD)
    link = sharing.create_link(conference=conference, user=support_admin)
    client = signed_in_as(client, "viewer")
    User.objects.filter(username="viewer").update(email="viewer@example.com")

    answers = [
        client.post(f"/conferences/{conference.pk}/share/", {"expires": "31d"}),
        client.post(f"/share-links/{link.pk}/revoke/"),
        client.post(f"/conferences/{conference.pk}/acknowledge/", {"reason": "mine now"}),
        client.post(
            "/alerts/", {"email": "victim@external.example", "scope": "all", "kinds": ["state"]}
        ),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 403, 403]
    assert list(ShareLink.objects.values_list("pk", "revoked_at")) == [(link.pk, None)]
    assert list(Acknowledgement.objects.all()) == [world["acknowledgement"]]
    assert not Subscription.objects.filter(email="victim@external.example").exists()


def test_a_viewer_subscribes_its_own_address_and_an_admin_any_address(client, world):
    client = signed_in_as(client, "viewer")
    User.objects.filter(username="viewer").update(email="Vera@Example.com")
    alerts = {"scope": "all", "kinds": ["state"]}

    own = client.post("/alerts/", {"email": " vera@example.com", **alerts})
    client.logout()
    other = signed_in_as(client, "admin").post(
        "/alerts/", {"email": "oncall@external.example", **alerts}
    )

    assert own.status_code == 302 and other.status_code == 302
    assert set(Subscription.objects.values_list("user__username", "email")) >= {
        ("viewer", "vera@example.com"),
        ("admin", "oncall@external.example"),
    }


def test_a_viewer_is_shown_no_form_it_may_not_use(client, world):
    conference = world["conference"]
    link = sharing.create_link(conference=conference)
    # The token's signature carries the second it was made: compare what comes before it.
    share_url = sharing.share_url(link).rsplit(":", 2)[0]
    client = signed_in_as(client, "viewer")
    User.objects.filter(username="viewer").update(email="viewer@example.com")

    page = client.get(f"/conferences/{conference.pk}/").content.decode()
    alerts = client.get("/alerts/").content.decode()
    client.logout()
    admin_page = signed_in_as(client, "admin").get(f"/conferences/{conference.pk}/")

    assert "Acknowledgements" in page and "the conference&#x27;s alerts" in page  # it reads
    assert "acknowledge-form" not in page and "share-form" not in page
    assert share_url not in page and "/revoke/" not in page
    assert re.search(r'name="email"[^>]*readonly|readonly[^>]*name="email"', alerts)
    admin_text = admin_page.content.decode()
    assert "acknowledge-form" in admin_text and "share-form" in admin_text
    assert share_url in admin_text and f"/share-links/{link.pk}/revoke/" in admin_text

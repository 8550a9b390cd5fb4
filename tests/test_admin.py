import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conferences.admin.common import CappedCountPaginator
from conferences.alerting import sharing
from conferences.models import (
    Account,
    Conference,
    Delivery,
    Event,
    HistoryEntry,
    PollError,
    UserPreference,
)
from conferences.polling import support
from conferences.registry import importing, roles
from tests.conftest import (
    WORKER_ARGS,
    make_account,
    make_conference,
    reload,
    requests_seen,
    start_celery,
    wait_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(user)
    return client


def test_the_changelists_row_checkbox_is_djangos_own_whatever_the_label(admin):
    from django.contrib import admin as django_admin

    account = make_account()
    hostile = make_conference(account, "conf-odd", label="<b>\"Board\" & 'ops'</b>")
    plain = make_conference(account, "conf-plain", label="Board call")
    conference_admin = django_admin.site.get_model_admin(type(plain))

    for conference in (hostile, plain):
        ours = conference_admin.action_checkbox(conference)
        djangos = django_admin.ModelAdmin.action_checkbox(conference_admin, conference)
        assert str(ours) == str(djangos)
    page = admin.get("/admin/conferences/conference/").content.decode()
    assert str(conference_admin.action_checkbox(hostile)) in page
    assert '<input type="checkbox" id="action-toggle"' in page


def test_staff_find_conferences_by_id_label_or_tag_in_the_admin(admin):
    account = make_account()
    make_conference(account, "conf-alpha", label="Board call", tags=["acme"], state="active")
    make_conference(account, "conf-beta", label="Ops room", tags=["globex"], state="created")

    by_tag = admin.get("/admin/conferences/conference/?q=acme").content.decode()
    by_label = admin.get("/admin/conferences/conference/?q=Ops").content.decode()
    by_state = admin.get("/admin/conferences/conference/?state__exact=created").content.decode()
    by_tag_filter = admin.get("/admin/conferences/conference/?tag=globex").content.decode()

    assert "conf-alpha" in by_tag and "conf-beta" not in by_tag
    assert "conf-beta" in by_label and "conf-alpha" not in by_label
    assert "conf-beta" in by_state and "conf-alpha" not in by_state
    assert "conf-beta" in by_tag_filter and "conf-alpha" not in by_tag_filter


def test_an_account_added_in_the_admin_keeps_its_secret_encrypted_and_hidden(admin):
    response = admin.post(
        "/admin/conferences/account/add/",
        {
            "name": "acme",
            "user_id": "u-acme",
            "base_url": "https://api.catapult.inetwork.com",
            "request_budget": "1",
            "api_token": "t-visible-nowhere",
            "api_secret": "s-visible-nowhere",
        },
    )
    assert response.status_code == 302
    account = Account.objects.get(name="acme")
    assert account.credentials() == ("t-visible-nowhere", "s-visible-nowhere")
    page = admin.get(f"/admin/conferences/account/{account.pk}/change/").content.decode()
    assert "s-visible-nowhere" not in page and "t-visible-nowhere" not in page


def test_a_new_account_without_credentials_is_refused(admin):
    response = admin.post(
        "/admin/conferences/account/add/",
        {"name": "acme", "user_id": "u-acme", "base_url": "https://x.example", "request_budget": 1},
    )
    assert response.status_code == 200
    assert "needs its API token and secret" in response.content.decode()
    assert not Account.objects.exists()


def test_history_is_read_only_in_the_admin(admin):
    conference = make_conference(make_account(), "conf-alpha")
    entry = HistoryEntry.objects.create(
        conference=conference,
        state="active",
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )

    page = admin.get(f"/admin/conferences/historyentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="state"' not in page.content.decode()
    assert admin.get("/admin/conferences/historyentry/add/").status_code == 403
    detail = admin.get(f"/admin/conferences/conference/{conference.pk}/change/")
    assert detail.status_code == 200


# ---------------------------------------------------------------- finding conferences


def conference_ids_listed(admin, query):
    """The conference ids of the changelist's rows (not of its filters or search box)."""
    text = admin.get(f"/admin/conferences/conference/?{query}").content.decode()
    return set(re.findall(r'class="field-conference_id"><a href="[^"]+">([^<]+)</a>', text))


@pytest.fixture
def searchable(db):
    """Conferences that differ in every way the changelist filters and searches."""
    acme, globex = make_account(name="acme"), make_account(name="globex")
    now = timezone.now()
    rows = [
        # id, account, label, tags, state, poll status, paused, hold, mute, from
        ("conf-a1", acme, "Board call", ["demo", "globex"], "active", "ok", False, True, False),
        ("conf-a2", acme, "Ops room", ["demo"], "created", "not_found", False, False, True),
        ("conf-a3", acme, "Globex weekly", [], None, "pending", True, None, None),
        ("conf-g1", globex, "Sales", ["demo"], "active", "not_found", False, False, False),
        ("conf-g2", globex, "Partner sync", ["vip"], "completed", "ok", True, False, True),
    ]
    for index, (cid, account, label, tags, state, status, paused, hold, mute) in enumerate(rows):
        make_conference(
            account,
            cid,
            label=label,
            tags=tags,
            state=state,
            poll_status=status,
            paused=paused,
            hold=hold,
            mute=mute,
            from_number=f"+1555000{index}",
            last_changed_at=now - timedelta(days=index * 40),
            created_time=now - timedelta(days=index * 40),
        )
    return acme, globex


def test_a_tag_search_narrows_a_filter_and_never_widens_it(admin, searchable):
    # The two URLs of the issue: a created conference and every demo conference came back.
    assert conference_ids_listed(admin, "state=active&q=globex") == {"conf-a1"}
    assert conference_ids_listed(admin, "poll_status__exact=not_found&q=demo") == {
        "conf-a2",
        "conf-g1",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=demo", {"conf-a1", "conf-a2", "conf-g1"}),
        ("q=globex", {"conf-a1", "conf-a3"}),  # a tag, or a word of a label
        ("q=globex&paused__exact=1", {"conf-a3"}),
        ("q=demo&account={globex}", {"conf-g1"}),
        ("q=demo&tag=globex", {"conf-a1"}),
        ("q=demo+ops", {"conf-a2"}),  # every word must match
        ("q=%2B15550003", {"conf-g1"}),  # the from number
        ("q=conf-g", {"conf-g1", "conf-g2"}),
        ("state=none", {"conf-a3"}),
        ("state=active&account={acme}", {"conf-a1"}),
        ("state=active&q=demo&hold__exact=1", {"conf-a1"}),
        ("mute__exact=1&q=demo", {"conf-a2"}),
        ("hold__isnull=True", {"conf-a3"}),
        ("tag=vip&q=partner", {"conf-g2"}),
        ("tag=vip&q=demo", set()),
        ("poll_status__exact=ok&q=sync", {"conf-g2"}),
        ("last_changed_at__gte={week_ago}&q=demo", {"conf-a1"}),
        ("created_time__gte={year_ago}&q=demo", {"conf-a1", "conf-a2", "conf-g1"}),
        ("created_time__year={year_of_g2}&q=sync", {"conf-g2"}),
    ],
)
def test_filters_combined_with_search_list_exactly_the_right_conferences(
    admin, searchable, query, expected
):
    acme, globex = searchable
    now = timezone.now()
    query = query.format(
        acme=f"{acme.pk}",
        globex=f"{globex.pk}",
        week_ago=quote((now - timedelta(days=7)).isoformat()),
        year_ago=quote((now - timedelta(days=365)).isoformat()),
        year_of_g2=(now - timedelta(days=160)).year,
    ).replace("account=", "account__id__exact=")

    assert conference_ids_listed(admin, query) == expected


def test_the_conference_list_has_the_columns_support_staff_asked_for(admin, searchable):
    Conference.objects.filter(conference_id="conf-a1").update(last_polled_at=timezone.now())
    text = admin.get("/admin/conferences/conference/?q=conf-a").content.decode()

    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', text)
    assert headers == [
        "conference_id",
        "label_and_link",
        "account",
        "state",
        "members",
        "hold_shown",
        "mute_shown",
        "last_change",
        "poll_health",
    ]
    # Poll health says when it was last polled and whether tracking is paused.
    assert "just now" in text and "never polled" in text
    assert "paused; pending (never polled)" in text
    assert (
        reverse("conferences:detail", args=[Conference.objects.get(conference_id="conf-a1").pk])
        in text
    )


def test_the_conference_filters_offer_what_support_staff_filter_by(admin, searchable):
    text = admin.get("/admin/conferences/conference/").content.decode()

    for title in ["state", "account", "tag", "paused", "poll health", "hold", "mute"]:
        assert f"By {title}" in text
    assert "By last changed at" in text and "By created time" in text
    assert '<nav class="toplinks">' in text  # the date hierarchy, by created time
    assert "Import CSV" in text


# ---------------------------------------------------------------- what the issue reported


def test_the_poll_error_filter_offers_only_what_an_error_can_be(admin):
    text = admin.get("/admin/conferences/pollerror/").content.decode()
    filters = text[text.index('id="changelist-filter"') :]

    assert "not found" in filters and "credentials rejected" in filters
    assert ">OK<" not in filters and "pending" not in filters


def test_the_account_page_keeps_the_budget_bookkeeping_to_itself(admin):
    account = make_account()
    Account.objects.filter(pk=account.pk).update(budget_next_at=timezone.now())

    text = admin.get(f"/admin/conferences/account/{account.pk}/change/").content.decode()

    assert "Budget next at" not in text and "budget_next_at" not in text


def test_a_conference_page_shows_only_the_newest_history_and_links_to_all(admin):
    conference = make_conference(make_account(), "conf-busy")
    start = timezone.now() - timedelta(days=10)
    HistoryEntry.objects.bulk_create(
        HistoryEntry(
            conference=conference,
            state="active",
            active_members=index % 7,
            first_seen_at=start + timedelta(minutes=index),
            last_seen_at=start + timedelta(minutes=index, seconds=30),
        )
        for index in range(5000)
    )
    newest = start + timedelta(minutes=4999)

    started = time.perf_counter()
    response = admin.get(f"/admin/conferences/conference/{conference.pk}/change/")
    seconds = time.perf_counter() - started
    text = response.content.decode()

    assert response.status_code == 200
    assert len(response.content) < 150_000 and seconds < 1.0
    assert len(re.findall(r'id="history-\d+"', text)) == 10  # the rows of the newest ten
    assert f"{timezone.localtime(newest):%Y-%m-%d %H:%M:%S}" in text
    all_url = f"/admin/conferences/historyentry/?conference={conference.pk}"
    assert all_url in text
    listed = admin.get(all_url).content.decode()
    assert "more than" not in listed and "5000 history entries" in listed


def test_records_offer_no_add_change_or_delete_even_to_a_superuser(admin):
    conference = make_conference(make_account(), "conf-alpha")
    now = timezone.now()
    records = [
        HistoryEntry.objects.create(conference=conference, first_seen_at=now, last_seen_at=now),
        PollError.objects.create(
            conference=conference,
            poll_status="not_found",
            message="Not found",
            first_seen_at=now,
            last_seen_at=now,
        ),
    ]
    for record in records:
        base = f"/admin/conferences/{record._meta.model_name}/"
        listing = admin.get(base).content.decode()
        detail = admin.get(f"{base}{record.pk}/change/").content.decode()

        assert 'value="delete_selected"' not in listing and f"{base}add/" not in listing
        assert f"{base}{record.pk}/delete/" not in detail and 'name="_save"' not in detail
        assert admin.get(f"{base}{record.pk}/delete/").status_code == 403
        assert admin.post(f"{base}{record.pk}/delete/", {"post": "yes"}).status_code == 403
        assert admin.post(f"{base}{record.pk}/change/", {}).status_code == 403
        assert type(record).objects.filter(pk=record.pk).exists()


def test_the_history_list_never_counts_or_scans_the_whole_table(admin):
    conference = make_conference(make_account(), "conf-alpha")
    now = timezone.now()
    HistoryEntry.objects.create(conference=conference, first_seen_at=now, last_seen_at=now)

    with CaptureQueriesContext(connection) as queries:
        response = admin.get("/admin/conferences/historyentry/?state=active")

    history = [q["sql"] for q in queries if "conferences_historyentry" in q["sql"]]
    assert response.status_code == 200
    assert not [sql for sql in history if "DISTINCT" in sql]
    counts = [sql for sql in history if "COUNT(" in sql]
    assert counts and all("LIMIT 10001" in sql for sql in counts)


def test_past_the_count_cap_the_history_list_says_more_than(admin, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    conference = make_conference(make_account(), "conf-alpha")
    now = timezone.now()
    HistoryEntry.objects.bulk_create(
        HistoryEntry(conference=conference, first_seen_at=now, last_seen_at=now) for _ in range(5)
    )

    text = admin.get("/admin/conferences/historyentry/").content.decode()

    assert "more than 3 history entries" in text


@pytest.fixture
def two_conferences_records(db):
    acme, globex = make_account(name="acme"), make_account(name="globex")
    board = make_conference(acme, "conf-board", label="Board call")
    sales = make_conference(globex, "conf-sales", label="Sales stand-up")
    old = timezone.now() - timedelta(days=40)
    now = timezone.now()
    for conference, when, state in [(board, now, "active"), (sales, old, "completed")]:
        HistoryEntry.objects.create(
            conference=conference, state=state, first_seen_at=when, last_seen_at=when
        )
        PollError.objects.create(
            conference=conference,
            poll_status="not_found" if state == "active" else "unreachable",
            message="problem",
            first_seen_at=when,
            last_seen_at=when,
        )
        event = Event.objects.create(
            kind="state_changed" if state == "active" else "hold_changed",
            account=conference.account,
            conference=conference,
            occurred_at=when,
        )
        Delivery.objects.create(
            email="ops@example.com",
            conference=conference,
            kind="change" if state == "active" else "digest",
        )
        Delivery.objects.filter(conference=conference).update(created_at=when)
        Event.objects.filter(pk=event.pk).update(occurred_at=when)
    return acme, board


RECORD_FILTERS = {
    "historyentry": ("state=active", "first_seen_at__gte"),
    "pollerror": ("poll_status=not_found", "first_seen_at__gte"),
    "event": ("kind__exact=state_changed", "occurred_at__gte"),
    "delivery": ("kind__exact=change", "created_at__gte"),
}


@pytest.mark.parametrize("model", list(RECORD_FILTERS))
def test_records_filter_by_conference_account_kind_and_time_and_search_by_id_or_label(
    admin, two_conferences_records, model
):
    acme, board = two_conferences_records
    kind, time_field = RECORD_FILTERS[model]
    base = f"/admin/conferences/{model}/"
    week_ago = quote((timezone.now() - timedelta(days=7)).isoformat())
    account = "account__id__exact" if model == "event" else "conference__account__id__exact"

    def listed(query):
        text = admin.get(f"{base}?{query}").content.decode()
        return {name for name in ("Board call", "Sales stand-up") if name in text}

    assert listed("") == {"Board call", "Sales stand-up"}
    assert listed(f"conference={board.pk}") == {"Board call"}
    assert listed(f"{account}={acme.pk}") == {"Board call"}
    assert listed(kind) == {"Board call"}
    assert listed(f"{time_field}={week_ago}") == {"Board call"}
    assert listed("q=conf-sales") == {"Sales stand-up"}
    assert listed("q=board") == {"Board call"}
    assert listed(f"q=board&{kind}") == {"Board call"}
    assert listed(f"q=sales&{kind}") == set()
    assert (
        f"{base}?conference={board.pk}"
        in admin.get(f"/admin/conferences/conference/{board.pk}/change/").content.decode()
    )


# ---------------------------------------------------------------- actions


def run_action(client, action, conferences, **extra):
    return client.post(
        "/admin/conferences/conference/",
        {"action": action, "_selected_action": [c.pk for c in conferences], **extra},
        follow=True,
    )


def test_pausing_and_resuming_are_logged_with_who_did_it(admin):
    conference = make_conference(make_account(), "conf-alpha")

    run_action(admin, "pause_tracking", [conference])
    assert reload(conference).paused
    run_action(admin, "resume_tracking", [conference])

    assert not reload(conference).paused
    messages = list(
        LogEntry.objects.filter(object_id=str(conference.pk))
        .order_by("pk")
        .values_list("user__username", "change_message")
    )
    assert messages == [("boss", "Paused tracking."), ("boss", "Resumed tracking.")]


def test_action_messages_count_in_words_one_conference_or_several(admin):
    account = make_account()
    one = make_conference(account, "conf-one")
    three = [make_conference(account, f"conf-three-{n}") for n in range(3)]

    def message(action, conferences):
        return [str(m) for m in run_action(admin, action, conferences).context["messages"]]

    assert message("pause_tracking", [one]) == ["Paused 1 conference."]
    assert message("pause_tracking", three) == ["Paused 3 conferences."]
    assert message("pause_tracking", [one]) == ["Nothing to pause: they were paused already."]
    assert message("resume_tracking", [one]) == ["Resumed 1 conference; it is due now."]
    assert message("resume_tracking", [one, *three]) == ["Resumed 3 conferences; they are due now."]


def test_revoking_share_links_counts_them_in_words(admin):
    conference = make_conference(make_account(), "conf-shared")
    links = [sharing.create_link(conference=conference) for _ in range(2)]

    def message(chosen):
        response = admin.post(
            "/admin/conferences/sharelink/",
            {"action": "revoke", "_selected_action": [link.pk for link in chosen]},
            follow=True,
        )
        return [str(m) for m in response.context["messages"]]

    assert message(links[:1]) == ["Revoked 1 share link."]
    assert message(links) == ["Revoked 2 share links."]


def test_admin_times_name_their_zone_in_the_users_time_zone(admin):
    boss = User.objects.get(username="boss")
    UserPreference.objects.create(user=boss, time_zone="Europe/Berlin")
    created = datetime(2026, 11, 28, 18, 23, 31, tzinfo=UTC)
    conference = make_conference(make_account(), "conf-zoned", created_time=created)
    HistoryEntry.objects.create(
        conference=conference, state="active", first_seen_at=created, last_seen_at=created
    )

    page = admin.get(f"/admin/conferences/conference/{conference.pk}/change/").content.decode()
    history = admin.get("/admin/conferences/historyentry/").content.decode()

    assert "2026-11-28 19:23:31 CET" in page  # the read-only "Created time"
    assert "2026-11-28 19:23:31 CET" in history


def test_the_csv_export_lists_the_selection_and_imports_as_it_is(admin, searchable):
    chosen = Conference.objects.filter(conference_id__in=["conf-a1", "conf-g2"])

    response = run_action(admin, "export_csv", chosen)

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["conference_id"] for row in rows] == ["conf-a1", "conf-g2"]
    assert rows[0]["label"] == "Board call" and rows[0]["tags"] == "demo;globex"
    assert rows[0]["account"] == "acme" and rows[1]["state"] == "completed"
    other = make_account(name="initech")
    result = importing.import_conferences(account=other, data=response.content)
    assert result.added == ["conf-a1", "conf-g2"]
    assert Conference.objects.get(account=other, conference_id="conf-a1").tags == [
        "demo",
        "globex",
    ]


def test_untracking_asks_first_counting_the_history_then_deletes_and_logs(admin):
    conference = make_conference(make_account(), "conf-alpha")
    now = timezone.now()
    HistoryEntry.objects.bulk_create(
        HistoryEntry(conference=conference, first_seen_at=now, last_seen_at=now) for _ in range(300)
    )

    asked = run_action(admin, "delete_selected", [conference]).content.decode()
    assert "History entries: 300" in asked
    assert asked.count("History entry:") == 0  # counted, not listed one by one
    run_action(admin, "delete_selected", [conference], post="yes")

    assert not Conference.objects.exists() and not HistoryEntry.objects.exists()
    entry = LogEntry.objects.get(object_id=str(conference.pk))
    assert entry.action_flag == DELETION and entry.user.username == "boss"


def test_untrack_is_what_the_delete_action_is_called(admin):
    make_conference(make_account(), "conf-alpha")
    text = admin.get("/admin/conferences/conference/").content.decode()
    assert "Untrack selected conferences" in text


def test_a_conference_added_in_the_admin_has_its_id_checked(admin):
    account = make_account()
    response = admin.post(
        "/admin/conferences/conference/add/",
        {"account": account.pk, "conference_id": "conf/../x", "label": "", "tags": ""},
    )

    assert response.status_code == 200
    assert "is not a conference id" in response.content.decode()
    assert not Conference.objects.exists()


def test_poll_now_takes_at_most_its_limit(admin, monkeypatch):
    monkeypatch.setattr(support, "MAX_POLL_NOW", 2)
    account = make_account()
    chosen = [make_conference(account, f"conf-{n}") for n in range(3)]

    text = run_action(admin, "poll_now", chosen).content.decode()

    assert "at most 2 conferences at once" in text
    assert not LogEntry.objects.exists()


def test_poll_now_records_each_outcome_for_the_user_who_asked(simulator, sim_client, db):
    boss = User.objects.create_superuser("boss", password="correct horse battery")
    account = make_account(simulator)
    live = make_conference(account, sim_client.create_conference(from_number="+15555550100"))
    gone = make_conference(account, "conf-gone")
    resting = make_conference(account, "conf-resting", paused=True)

    result = support.poll_now(conference_pks=[live.pk, gone.pk, resting.pk], user_pk=boss.pk)

    outcomes = dict(result.outcomes)
    assert outcomes[live.conference_id] == "OK, created, 0 active members."
    assert outcomes["conf-gone"].startswith("not found: ")
    assert outcomes["conf-resting"] == "not polled: tracking is paused."
    assert set(LogEntry.objects.values_list("user__username", flat=True)) == {"boss"}
    assert LogEntry.objects.filter(change_message__startswith="Poll now: ").count() == 3


# ---------------------------------------------------------------- accounts


def test_changing_the_base_url_asks_for_the_credentials_again(admin, settings):
    settings.CONFWATCH_ALLOWED_API_HOSTS = ["api.catapult.inetwork.com", "eu.catapult.example"]
    account = make_account(name="acme", base_url="https://api.catapult.inetwork.com")
    form = {
        "name": "acme",
        "user_id": account.user_id,
        "base_url": "https://eu.catapult.example",
        "request_budget": "1",
    }

    refused = admin.post(f"/admin/conferences/account/{account.pk}/change/", form)
    form.update(api_token="t-new", api_secret="s-new")
    accepted = admin.post(f"/admin/conferences/account/{account.pk}/change/", form)

    assert "enter the API token and secret again" in refused.content.decode()
    assert accepted.status_code == 302
    account = reload(account)
    assert account.base_url == "https://eu.catapult.example"
    assert account.credentials() == ("t-new", "s-new")


def test_other_account_changes_keep_the_stored_credentials(admin):
    account = make_account(name="acme")
    response = admin.post(
        f"/admin/conferences/account/{account.pk}/change/",
        {
            "name": "acme",
            "user_id": account.user_id,
            "base_url": account.base_url,
            "request_budget": "2",
        },
    )

    assert response.status_code == 302
    assert reload(account).request_budget == 2.0
    assert reload(account).credentials() == ("demo-token", "demo-secret")


def check_credentials_of(admin, account):
    return admin.post(
        "/admin/conferences/account/",
        {"action": "check_credentials", "_selected_action": [account.pk]},
        follow=True,
    ).content.decode()


def test_testing_credentials_the_simulator_accepts_says_so(admin, simulator):
    account = make_account(simulator)
    before = requests_seen(simulator)

    text = check_credentials_of(admin, account)

    assert "Account acme: credentials accepted" in text
    assert requests_seen(simulator) == before + 1
    entry = LogEntry.objects.get(object_id=str(account.pk))
    assert entry.user.username == "boss" and "credentials accepted" in entry.change_message


def test_testing_credentials_the_api_rejects_reports_the_typed_error(admin, simulator):
    account = make_account(simulator, secret="s-wrong-and-secret")

    text = check_credentials_of(admin, account)

    assert "Account acme: Credentials rejected" in text
    assert "s-wrong-and-secret" not in text


def test_testing_credentials_of_a_resting_account_sends_nothing(admin, simulator):
    account = make_account(simulator)
    Account.objects.filter(pk=account.pk).update(
        paused_until=timezone.now() + timedelta(minutes=5), problem="rate_limited"
    )
    before = requests_seen(simulator)

    text = check_credentials_of(admin, account)

    assert "not tested: the account rests until" in text and "rate limited" in text
    assert requests_seen(simulator) == before


def test_testing_credentials_when_the_budget_is_taken_says_it_is_busy(admin, simulator):
    account = make_account(simulator)
    Account.objects.filter(pk=account.pk).update(
        budget_next_at=timezone.now() + timedelta(seconds=60)
    )
    before = requests_seen(simulator)

    text = check_credentials_of(admin, account)

    assert "not tested: its budget is taken for the next" in text
    assert requests_seen(simulator) == before


def test_a_viewer_cannot_test_credentials(client, simulator):
    viewer = roles.create_user(username="vera", role="viewer", password="correct horse battery")
    client.force_login(viewer)
    account = make_account(simulator)
    before = requests_seen(simulator)

    response = check_credentials_of(client, account)

    assert "credentials accepted" not in response
    assert requests_seen(simulator) == before


@pytest.mark.django_db(transaction=True)
def test_poll_now_goes_to_a_real_worker_and_its_result_shows_on_the_next_page(
    client, simulator, sim_client, celery_env
):
    boss = User.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(boss)
    account = make_account(simulator)
    conference = make_conference(
        account, sim_client.create_conference(from_number="+15555550100"), label="Board call"
    )
    worker = start_celery(celery_env, *WORKER_ARGS)
    try:
        queued = run_action(client, "poll_now", [conference]).content.decode()
        assert "Polling 1 conference now, within its account&#x27;s budget" in queued

        wait_for(
            lambda: (
                reload(conference).last_polled_at is not None
                and LogEntry.objects.filter(change_message__startswith="Poll now: ").exists()
            ),
            what="the poll-now result",
        )
        page = client.get("/admin/conferences/conference/").content.decode()
        again = client.get("/admin/conferences/conference/").content.decode()
    finally:
        worker.terminate()
        worker.wait(timeout=20)

    assert "Poll now finished. Board call: OK, created, 0 active members." in page
    assert "Poll now finished" not in again
    assert reload(conference).poll_status == "ok"
    history = LogEntry.objects.filter(object_id=str(conference.pk)).order_by("pk")
    assert [entry.change_message for entry in history] == [
        "Poll now requested.",
        "Poll now: OK, created, 0 active members.",
    ]
    assert {entry.user.username for entry in history} == {"boss"}


def test_a_search_past_the_count_cap_says_more_than(admin, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    conference = make_conference(make_account(), "conf-alpha")
    now = timezone.now()
    HistoryEntry.objects.bulk_create(
        HistoryEntry(conference=conference, first_seen_at=now, last_seen_at=now) for _ in range(5)
    )

    text = admin.get("/admin/conferences/historyentry/?q=alpha").content.decode()

    assert "more than 3 results" in text


def form_fields(html):
    """The name=value pairs a browser would send for the page's main form."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        if not name or (kind and kind.group(1) in ("submit", "checkbox", "file")):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = value.group(1) if value else ""
    return fields


def test_a_conference_page_with_many_records_saves_as_a_browser_sends_it(admin):
    conference = make_conference(make_account(), "conf-busy", label="Old")
    now = timezone.now()
    HistoryEntry.objects.bulk_create(
        HistoryEntry(conference=conference, first_seen_at=now, last_seen_at=now) for _ in range(30)
    )
    url = f"/admin/conferences/conference/{conference.pk}/change/"
    data = form_fields(admin.get(url).content.decode())
    data.update(label="New", tags="vip")
    # A run recorded between loading the page and saving it.
    HistoryEntry.objects.create(conference=conference, first_seen_at=now, last_seen_at=now)

    response = admin.post(url, data)

    assert response.status_code == 302
    assert reload(conference).label == "New" and reload(conference).tags == ["vip"]
    assert conference.history.count() == 31

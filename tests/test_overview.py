"""The overview (the list page): counts, order, filters, pages, the live refresh, row
actions, the sign-in redirect of htmx requests and times in the viewer's time zone."""

import json
import re
import zoneinfo
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conferences.models import Conference, Member, UserPreference
from conferences.registry import roles
from conferences.web.selectors import overview
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def observed(account, conference_id, *, seconds_ago=1, changed_minutes_ago=5, **values):
    """A conference as polling leaves it: observed `seconds_ago`, last changed before."""
    now = timezone.now()
    defaults = {
        "state": "active",
        "active_members": 2,
        "hold": False,
        "mute": False,
        "poll_status": "ok",
        "last_observed_at": now - timedelta(seconds=seconds_ago),
        "last_polled_at": now - timedelta(seconds=seconds_ago),
        "last_changed_at": now - timedelta(minutes=changed_minutes_ago),
    }
    defaults.update(values)
    return make_conference(account, conference_id, **defaults)


def row_ids(html):
    return re.findall(r'data-conference-id="([^"]+)"', html)


def counts(html):
    found = re.findall(r'data-count="(\w+)"><span class="number">(\d+)</span>', html)
    return {name: int(number) for name, number in found}


def version_of(html):
    return re.search(r"[?&](?:amp;)?v=([0-9a-f]+)", html).group(1)


@pytest.fixture
def board(db):
    """One conference of each kind the counts name."""
    account = make_account(name="acme")
    now = timezone.now()
    observed(account, "conf-active-old", changed_minutes_ago=30, label="Old active")
    observed(account, "conf-active-new", changed_minutes_ago=1, label="New active")
    observed(account, "conf-created", state="created", active_members=0, label="Created one")
    observed(
        account,
        "conf-done",
        state="completed",
        active_members=0,
        completed_time=now - timedelta(minutes=3),
        label="Finished",
    )
    observed(
        account,
        "conf-missing",
        state=None,
        active_members=None,
        poll_status="not_found",
        last_observed_at=None,
        label="Missing",
    )
    observed(account, "conf-failing", poll_status="unreachable", label="Failing")
    observed(account, "conf-stale", seconds_ago=90, changed_minutes_ago=4, label="Stale")
    observed(account, "conf-paused", paused=True, seconds_ago=3600, label="Old demo")
    # Tracked a while ago and never found: "not found", not stale.
    Conference.objects.filter(conference_id="conf-missing").update(
        tracked_at=now - timedelta(minutes=1), last_changed_at=now - timedelta(minutes=3)
    )
    Conference.objects.filter(conference_id="conf-failing").update(
        last_changed_at=now - timedelta(minutes=2)
    )
    return account


# ---------------------------------------------------------------- sign-in for htmx


def test_an_htmx_poll_without_a_session_is_sent_to_sign_in_not_given_the_form(client, board):
    response = client.get(
        "/?state=active&v=abc",
        headers={**HTMX, "HX-Current-URL": "http://testserver/?state=active"},
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=/%3Fstate%3Dactive"
    assert response.content == b""


def test_an_expired_session_on_a_live_page_is_sent_to_sign_in(signed_in, board):
    assert signed_in.get("/", headers=HTMX).status_code == 200
    Session.objects.all().delete()  # expired, or signed out in another tab

    response = signed_in.get("/", headers={**HTMX, "HX-Current-URL": "http://testserver/"})

    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/accounts/login/?next=")


def test_an_htmx_action_without_a_session_is_sent_to_sign_in(client, board):
    conference = Conference.objects.get(conference_id="conf-active-new")

    response = client.post(reverse("conferences:pause", args=[conference.pk]), headers=HTMX)

    assert response.status_code == 204 and "HX-Redirect" in response
    assert not Conference.objects.get(pk=conference.pk).paused


def test_a_plain_request_without_a_session_still_gets_the_sign_in_page(client, board):
    response = client.get("/")
    assert response.status_code == 302 and "HX-Redirect" not in response


# ---------------------------------------------------------------- counts and order


def test_the_counts_name_each_state_and_problem_and_link_to_their_filter(signed_in, board):
    html = signed_in.get("/").content.decode()

    assert counts(html) == {
        "active": 4,  # old, new, failing and stale are active (the paused one is not)
        "created": 1,
        "completed_today": 1,
        "not_found": 1,
        "failing": 1,
        "stale": 1,  # the stale one (the one never found is "not found", not stale)
        "paused": 1,
    }
    assert 'href="?health=stale"' in html and 'href="?tracking=paused"' in html
    assert row_ids(signed_in.get("/?health=stale").content.decode()) == ["conf-stale"]


def test_each_count_is_exactly_what_its_quick_filter_shows(signed_in, board):
    observed(
        board,
        "conf-done-yesterday",
        state="completed",
        completed_time=timezone.now() - timedelta(days=2),
    )
    observed(board, "conf-paused-failing", paused=True, poll_status="unreachable")
    observed(board, "conf-done-lost", state="completed", poll_status="not_found")
    html = signed_in.get("/").content.decode()
    links = dict(re.findall(r'href="\?([^"]+)" data-count="(\w+)"', html))

    assert len(links) == 7
    for query, name in links.items():
        shown = row_ids(signed_in.get(f"/?{query}").content.decode())
        assert len(shown) == counts(html)[name], name


def test_problems_come_first_then_active_by_most_recent_change(signed_in, board):
    ids = row_ids(signed_in.get("/").content.decode())

    assert ids[:3] == ["conf-failing", "conf-missing", "conf-stale"]
    assert ids[3:] == ["conf-active-new", "conf-active-old", "conf-created", "conf-done"]
    assert "conf-paused" not in ids


def test_columns_sort_both_ways_and_the_sort_stays_in_the_links(signed_in, board):
    Conference.objects.filter(conference_id="conf-active-new").update(active_members=9)

    by_label = row_ids(signed_in.get("/?sort=label").content.decode())
    by_label_desc = row_ids(signed_in.get("/?sort=-label").content.decode())
    page = signed_in.get("/?sort=-members&state=active").content.decode()

    assert by_label[:3] == ["conf-created", "conf-failing", "conf-done"]
    assert by_label_desc == list(reversed(by_label))
    assert row_ids(page)[0] == "conf-active-new"
    assert 'aria-sort="descending"' in page
    assert "sort=-members" in page and "state=active" in version_link(page)


def version_link(html):
    return re.search(r'id="overview-live".*?hx-get="([^"]+)"', html, re.S).group(1)


# ---------------------------------------------------------------- rows


def test_a_paused_or_stale_conference_does_not_look_active(signed_in, board):
    html = signed_in.get("/?tracking=all").content.decode()
    paused_row = row_html(html, "conf-paused")
    stale_row = row_html(html, "conf-stale")

    assert "state-paused" in paused_row and ">paused<" in paused_row
    assert "state-active" not in paused_row and "last seen active" in paused_row
    assert "state-stale" in stale_row and "state-active" not in stale_row
    assert ">stale<" in stale_row and "last OK" in stale_row


def row_html(html, conference_id):
    start = html.index(f'data-conference-id="{conference_id}"')
    return html[start : html.index("</tr>", start)]


def test_a_row_shows_how_long_the_state_has_lasted_and_the_last_change(signed_in, board):
    conference = Conference.objects.get(conference_id="conf-active-new")
    conference.state_since = timezone.now() - timedelta(minutes=7)
    conference.save(update_fields=["state_since"])
    row = row_html(signed_in.get("/").content.decode(), "conf-active-new")

    assert "for <time" in row and ">7 min</time>" in row
    assert "1 min ago" in row
    assert ">Conference hold: off<" in row  # in words (no member seen yet)


def test_a_row_tells_conference_hold_and_mute_from_the_members_and_refreshes_with_them(
    signed_in, board
):
    conference = Conference.objects.get(conference_id="conf-active-new")
    now = timezone.now()
    for member_id, hold in (("m-1", True), ("m-2", False)):
        Member.objects.create(
            conference=conference,
            member_id=member_id,
            state="active",
            hold=hold,
            mute=False,
            first_seen_at=now,
            last_seen_at=now,
            last_changed_at=now,
        )
    first = signed_in.get("/").content.decode()
    version = version_of(first)
    row = row_html(first, "conf-active-new")

    assert '<td class="hold" data-label="Hold">Conference hold: off · 1 member on hold</td>' in row
    assert '<td class="mute" data-label="Mute">Conference mute: off · no member muted</td>' in row

    Member.objects.filter(member_id="m-2").update(hold=True)
    again = signed_in.get(f"/?v={version}", headers=HTMX)

    assert again.status_code == 200  # not 204: what the row says changed
    assert "Conference hold: off · 2 members on hold" in again.content.decode()


def test_the_live_check_of_members_on_hold_or_muted_reads_its_partial_index(db):
    # Every refresh sums these members up: scanning every member ever seen took 30-40 ms
    # at 200,000 members (see the model's index). The planner uses a partial index only
    # when the query's condition implies the index's: with scans of the table off, the
    # plan names the index only if they match.
    sql, params = overview.members_digest()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN SELECT {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "member_held_present_idx" in plan


def test_the_account_column_shows_only_with_more_than_one_account(signed_in, board):
    assert '<th scope="col">Account</th>' not in signed_in.get("/").content.decode()

    make_conference(make_account(name="globex"), "conf-globex")

    assert '<th scope="col">Account</th>' in signed_in.get("/").content.decode()


# ---------------------------------------------------------------- filters and pages


def test_filters_combine_and_search_finds_the_from_number(signed_in, board):
    Conference.objects.filter(conference_id="conf-active-old").update(
        tags=["vip"], hold=True, from_number="+15555550123"
    )
    Conference.objects.filter(conference_id="conf-active-new").update(tags=["vip"])

    assert row_ids(signed_in.get("/?tag=vip&hold=on").content.decode()) == ["conf-active-old"]
    assert row_ids(signed_in.get("/?tag=vip&state=active").content.decode()) == [
        "conf-active-new",
        "conf-active-old",
    ]
    assert row_ids(signed_in.get("/?q=5550123").content.decode()) == ["conf-active-old"]
    assert row_ids(signed_in.get("/?health=failing&mute=off").content.decode()) == ["conf-failing"]


def test_every_filter_has_a_label(signed_in, board):
    html = signed_in.get("/").content.decode()
    for name in ["q", "state", "account", "tag", "health", "hold", "mute", "tracking"]:
        assert f'<label for="id_{name}">' in html
    assert "tracked and paused" not in html and "paused or not" in html


def test_a_bad_filter_value_is_a_clear_error_not_a_500(signed_in, board):
    response = signed_in.get("/?state=exploded&page=0&sort=sideways")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="form-errors"' in html and "Select a valid choice" in html
    assert row_ids(html) == []


def test_pages_of_fifty_with_links_that_keep_the_filters(signed_in, db):
    account = make_account(name="acme")
    for index in range(120):
        observed(account, f"conf-{index:03d}", tags=["bulk"], changed_minutes_ago=index)

    first = signed_in.get("/?tag=bulk").content.decode()
    third = signed_in.get("/?tag=bulk&page=3").content.decode()

    assert row_ids(first)[:2] == ["conf-000", "conf-001"] and len(row_ids(first)) == 50
    assert "1–50 of 120" in first and 'href="?tag=bulk&amp;page=2"' in first
    assert row_ids(third) == [f"conf-{index:03d}" for index in range(100, 120)]
    assert "page 3 of 3" in third and 'rel="next"' not in third
    assert row_ids(signed_in.get("/?tag=bulk&page=9").content.decode()) == row_ids(third)


# ---------------------------------------------------------------- the live refresh


def test_an_unchanged_refresh_is_one_query_of_the_conferences_and_a_204(signed_in, board):
    version = version_of(signed_in.get("/?state=active", headers=HTMX).content.decode())

    with CaptureQueriesContext(connection) as queries:
        response = signed_in.get(f"/?state=active&v={version}", headers=HTMX)

    assert response.status_code == 204
    touching = [q["sql"] for q in queries if "conferences_conference" in q["sql"]]
    assert len(touching) == 1


def test_the_refresh_is_narrowed_by_the_filters(signed_in, board):
    version = version_of(signed_in.get("/?state=created", headers=HTMX).content.decode())

    Conference.objects.filter(conference_id="conf-active-old").update(active_members=7)
    unchanged = signed_in.get(f"/?state=created&v={version}", headers=HTMX)
    Conference.objects.filter(conference_id="conf-created").update(active_members=1)
    changed = signed_in.get(f"/?state=created&v={version}", headers=HTMX)

    assert unchanged.status_code == 204
    assert changed.status_code == 200 and row_ids(changed.content.decode()) == ["conf-created"]


def test_a_refresh_brings_the_counts_above_the_filters_along_out_of_band(signed_in, board):
    html = signed_in.get("/", headers=HTMX).content.decode()

    assert html.lstrip().startswith('<nav id="counts"')
    assert 'hx-swap-oob="true"' in html and counts(html)["stale"] == 1
    assert "hx-swap-oob" not in signed_in.get("/").content.decode()


def test_a_hidden_tab_refreshes_less_often(signed_in, board):
    html = signed_in.get("/").content.decode()
    trigger = re.search(r'id="overview-live".*?hx-trigger="([^"]+)"', html, re.S).group(1)

    hidden = re.search(r'id="overview-live".*?data-hidden-every="([^"]+)"', html, re.S).group(1)

    assert trigger == "every 2s"
    assert hidden == "30"  # static/js/confwatch.js holds a hidden tab's updates back


def test_the_account_strip_shows_the_budget_its_use_and_the_stalest_active(signed_in, board):
    html = signed_in.get("/").content.decode()
    strip = html[html.index('id="account-strip"') : html.index("</section>")]

    # 6 polled conferences (all but the completed and the paused) every 10 s = 0.6/s,
    # and the members lists of the 2 active ones every 30 s = 0.07/s.
    assert "budget 40 req/s" in strip and "polling needs 0.7 req/s (2%)" in strip
    assert "each polled every 10 s" in strip and "last polled" in strip


def same_render(html):
    """The HTML without what differs between any two renders: relative times' words
    and CSRF tokens."""
    html = re.sub(r"(<time [^>]*>)[^<]*(</time>)", r"\1\2", html)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken"', html)


@pytest.mark.parametrize(
    ("page", "refresh", "element"),
    [
        ("/?state=active", "/?state=active&part=accounts", '<section id="account-strip"'),
        ("/?state=active", "/?state=active", '<div id="overview-live"'),
        ("/conferences/{pk}/", "/conferences/{pk}/", '<div id="live-status"'),
    ],
)
def test_each_partials_refresh_renders_what_its_page_shows(
    signed_in, board, page, refresh, element
):
    pk = Conference.objects.get(conference_id="conf-active-old").pk
    full = same_render(signed_in.get(page.format(pk=pk)).content.decode())

    partial = same_render(signed_in.get(refresh.format(pk=pk), headers=HTMX).content.decode())

    part = partial[partial.index(element) :].strip()
    assert 'hx-trigger="every ' in part and not re.search(r'every s["<]|every=""', part)
    assert part in full


def test_an_account_short_of_budget_says_how_often_it_really_polls(signed_in, db):
    account = make_account(name="small", request_budget=1.0)
    for index in range(20):
        observed(account, f"conf-{index}")

    strip = signed_in.get("/?part=accounts", headers=HTMX).content.decode()

    # 20 conferences every 10 s and their 20 members lists every 30 s need 2.7/s of the
    # 0.9/s usable; the members lists keep a tenth of it (0.09/s), the conferences get
    # 0.81/s: each read every 20 / 0.81 = 24.7 s.
    assert "polling needs 2.7 req/s (296%)" in strip
    assert "over budget" in strip and "each polled about every 25 s" in strip


# ---------------------------------------------------------------- row actions


@pytest.fixture
def admin_client(signed_in, user):
    user.groups.add(roles.ensure_groups()[roles.ADMIN])
    return signed_in


@pytest.fixture
def viewer_client(signed_in, user):
    user.groups.add(roles.ensure_groups()[roles.VIEWER])
    return signed_in


def test_a_support_admin_pauses_resumes_and_untracks_from_the_list(admin_client, board):
    conference = Conference.objects.get(conference_id="conf-active-new")
    back = {"next": "/?state=active"}

    paused = admin_client.post(reverse("conferences:pause", args=[conference.pk]), back)
    assert paused.status_code == 302 and paused["Location"] == "/?state=active"
    assert Conference.objects.get(pk=conference.pk).paused

    admin_client.post(reverse("conferences:resume", args=[conference.pk]), back)
    assert not Conference.objects.get(pk=conference.pk).paused

    page = admin_client.post(
        reverse("conferences:untrack", args=[conference.pk]), back, follow=True
    )
    assert not Conference.objects.filter(pk=conference.pk).exists()
    assert "Untracked New active (conf-active-new)" in page.content.decode()


def test_a_row_action_returns_only_to_this_site(admin_client, board):
    conference = Conference.objects.get(conference_id="conf-active-new")
    response = admin_client.post(
        reverse("conferences:pause", args=[conference.pk]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_a_viewer_sees_no_row_actions_and_the_server_refuses_them(viewer_client, board):
    conference = Conference.objects.get(conference_id="conf-active-new")
    html = viewer_client.get("/").content.decode()

    answers = [
        viewer_client.post(reverse(f"conferences:{name}", args=[conference.pk])).status_code
        for name in ["pause", "resume", "untrack"]
    ]

    assert 'aria-label="Pause' not in html and "Untrack" not in html
    assert answers == [403, 403, 403]
    conference = Conference.objects.get(pk=conference.pk)
    assert not conference.paused


def test_row_actions_take_only_post(admin_client, board):
    conference = Conference.objects.get(conference_id="conf-active-new")
    assert admin_client.get(reverse("conferences:pause", args=[conference.pk])).status_code == 405
    assert not Conference.objects.get(pk=conference.pk).paused


# ---------------------------------------------------------------- time zones


def test_times_are_shown_in_the_users_time_zone_with_the_zone_named(signed_in, user, board):
    UserPreference.objects.create(user=user, time_zone="America/New_York")
    moment = timezone.now().replace(microsecond=0) - timedelta(minutes=3)
    Conference.objects.filter(conference_id="conf-active-new").update(last_changed_at=moment)

    html = signed_in.get("/").content.decode()
    row = row_html(html, "conf-active-new")

    local = timezone.localtime(moment, timezone=zoneinfo.ZoneInfo("America/New_York"))
    assert f'datetime="{local.isoformat()}"' in row
    assert local.strftime("%Y-%m-%d %H:%M:%S %Z") in row  # the title names the zone
    assert "3 min ago" in row
    assert "Time zone: America/New_York" in html


def test_the_page_gives_its_clock_the_zones_abbreviations(signed_in, user, board):
    UserPreference.objects.create(user=user, time_zone="Europe/Berlin")

    html = signed_in.get("/").content.decode()

    # What static/js/confwatch.js writes after a time ("CET", not the browser's "GMT+1").
    names = re.search(r'data-zone-abbreviations="([^"]*)"', html).group(1)
    assert json.loads(unescape(names)) == {"60": "CET", "120": "CEST"}


def test_without_a_choice_times_are_in_the_sites_time_zone(signed_in, board, settings):
    html = signed_in.get("/").content.decode()
    assert f"Time zone: {settings.TIME_ZONE}" in html
    assert "+00:00" in row_html(html, "conf-active-new")


def test_a_user_chooses_a_time_zone_and_a_bad_one_is_refused(signed_in, user):
    saved = signed_in.post(reverse("conferences:preferences"), {"time_zone": "Europe/Berlin"})
    refused = signed_in.post(reverse("conferences:preferences"), {"time_zone": "Mars/Olympus"})

    assert saved.status_code == 302
    assert UserPreference.objects.get(user=user).time_zone == "Europe/Berlin"
    assert refused.status_code == 200 and "is not a time zone" in refused.content.decode()
    assert "Time zone: Europe/Berlin" in signed_in.get("/").content.decode()


# ---------------------------------------------------------------- small things


def test_tracking_semicolon_separated_ids_tracks_each(admin_client, db):
    account = make_account(name="acme")
    response = admin_client.post(
        reverse("conferences:track"),
        {"account": account.pk, "conference_ids": "conf-a;conf-b,conf-c\nconf-d", "tags": ""},
        follow=True,
    )
    assert "Now tracking conf-a, conf-b, conf-c, conf-d." in response.content.decode()
    assert Conference.objects.count() == 4


def test_a_refused_id_is_shown_as_a_styled_field_error(admin_client, db):
    account = make_account(name="acme")
    html = admin_client.post(
        reverse("conferences:track"), {"account": account.pk, "conference_ids": "conf-a;x/y"}
    ).content.decode()
    assert 'class="field field-conference_ids has-errors"' in html
    assert "contains &#x27;/&#x27;" in html
    assert not Conference.objects.exists()


def test_the_favicon_is_there_without_signing_in(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")

"""Blast radius inside a polling round: one account's bad settings or error,
or one answer the database refuses, stops or falsifies nobody else's polling."""

import dataclasses
import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from conferences.catapult import answers
from conferences.models import HistoryEntry, Member, PollError
from conferences.ops import outages
from conferences.polling import claims, dispatch, rounds
from conferences.recording import observations
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db


def poll_all():
    return rounds.poll_round(force=True)


def set_budget_directly(account, value):
    """What the admin or add_account now refuse, stored as an old row or a raw UPDATE
    could have left it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE conferences_account SET request_budget = %s::float8 WHERE id = %s",
            [value, account.pk],
        )


def good_and_bad(simulator, sim_client, *, good=2, bad=2):
    """A good account and a second one (both on the simulator), each with conferences
    created there."""
    first = make_account(simulator, name="good")
    second = make_account(simulator, name="bad")
    good_ones = [
        make_conference(first, sim_client.create_conference(from_number="+15555550100"))
        for _ in range(good)
    ]
    bad_ones = [
        make_conference(second, sim_client.create_conference(from_number="+15555550101"))
        for _ in range(bad)
    ]
    return first, second, good_ones, bad_ones


def lines(caplog, text):
    return [record for record in caplog.records if text in record.getMessage()]


@pytest.mark.parametrize("budget", ["NaN", "Infinity", "1e308", "0", "-3"])
def test_an_account_with_an_unusable_budget_shows_why_once_and_the_others_are_polled(
    simulator, sim_client, caplog, budget
):
    _, bad, good_ones, bad_ones = good_and_bad(simulator, sim_client)
    set_budget_directly(bad, budget)
    caplog.set_level(logging.INFO)

    summaries = [poll_all() for _ in range(3)]

    assert [summary.polled for summary in summaries] == [2, 2, 2]
    for conference in map(reload, good_ones):
        assert (conference.state, conference.poll_status) == ("created", "ok")
        assert HistoryEntry.objects.filter(conference=conference).count() == 1
    bad = reload(bad)
    assert bad.problem == "account_error"
    assert "request budget" in bad.problem_message
    assert bad.problem_at is not None
    for conference in map(reload, bad_ones):
        assert conference.poll_status == "pending"
        assert conference.claim_token is None
    assert len(lines(caplog, "account bad cannot be polled")) == 1

    set_budget_directly(bad, "5")
    summary = poll_all()

    assert summary.polled == 4
    assert reload(bad).problem == ""
    assert all(reload(c).poll_status == "ok" for c in bad_ones)
    assert len(lines(caplog, "account bad is polled again")) == 1
    assert len(lines(caplog, "account bad cannot be polled")) == 1


@pytest.mark.parametrize("budget", ["NaN", "Infinity", "0"])
def test_the_conference_and_list_pages_say_why_an_account_cannot_be_polled(
    simulator, sim_client, signed_in, budget
):
    _, bad, _, (conference, _) = good_and_bad(simulator, sim_client)
    set_budget_directly(bad, budget)
    poll_all()

    detail = signed_in.get(reverse("conferences:detail", args=[conference.pk]))
    overview = signed_in.get(reverse("conferences:list"))

    for page in (detail, overview):
        text = page.content.decode()
        assert "Account bad: account cannot be polled" in text
        assert "The request budget must be" in text


def test_an_unreadable_secret_stops_only_its_own_account(simulator, sim_client, caplog):
    _, bad, good_ones, bad_ones = good_and_bad(simulator, sim_client)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE conferences_account SET api_secret_encrypted = 'not a token' WHERE id = %s",
            [bad.pk],
        )

    first, second = poll_all(), poll_all()

    assert (first.polled, second.polled) == (2, 2)
    assert all(reload(c).poll_status == "ok" for c in good_ones)
    assert all(reload(c).claim_token is None for c in bad_ones)
    bad = reload(bad)
    assert bad.problem == "account_error"
    assert "cannot be decrypted" in bad.problem_message
    assert len(lines(caplog, "account bad cannot be polled")) == 1


def test_an_error_while_sending_one_accounts_requests_stops_only_that_account(
    simulator, sim_client, monkeypatch
):
    _, bad, good_ones, bad_ones = good_and_bad(simulator, sim_client)
    dispatch_next = dispatch.dispatch_next

    def failing_for_bad(plan, at, pool):
        if plan.account.name == "bad":
            raise RuntimeError("a bug in the dispatcher")
        return dispatch_next(plan, at, pool)

    monkeypatch.setattr(dispatch, "dispatch_next", failing_for_bad)
    before = timezone.now()

    summary = poll_all()

    assert summary.polled == 2
    assert all(reload(c).poll_status == "ok" for c in good_ones)
    bad = reload(bad)
    assert bad.problem == "account_error"
    assert bad.problem_message == (
        "RuntimeError while sending its requests: a bug in the dispatcher"
    )
    for conference in map(reload, bad_ones):
        # Never sent: released and due again at once.
        assert conference.claim_token is None
        assert conference.next_poll_at <= before


def test_an_error_while_recording_one_accounts_answers_loses_only_those_answers(
    simulator, sim_client, monkeypatch
):
    _, bad, good_ones, bad_ones = good_and_bad(simulator, sim_client)
    bad_pks = {c.pk for c in bad_ones}
    observe = observations.Observation.of_conference

    def failing_for_bad(conference_pk, result, **kwargs):
        if conference_pk in bad_pks:
            raise KeyError("surprise")
        return observe(conference_pk, result, **kwargs)

    monkeypatch.setattr(observations.Observation, "of_conference", failing_for_bad)

    summary = poll_all()

    assert summary.polled == 2
    assert all(reload(c).poll_status == "ok" for c in good_ones)
    assert reload(bad).problem == "account_error"
    assert "KeyError while recording its answers" in reload(bad).problem_message
    assert all(reload(c).claim_token is None for c in bad_ones)


def answering(monkeypatch, conference_id, change):
    """The round's parsed answer for conference_id changed by `change` (a parsed result
    the database refuses, built directly: the parser cleans what the API sends)."""
    fetch_one = dispatch.fetch_one

    def changed(plan, job):
        fetch_one(plan, job)
        if job.conference.conference_id == conference_id and job.result is not None:
            job.result = change(job.result)

    monkeypatch.setattr(dispatch, "fetch_one", changed)


UNSTORABLE = {
    "a state longer than its column": (
        lambda result: dataclasses.replace(result, state="s" * 31),
        "value too long for type character varying(30)",
    ),
    "a NUL in a text field": (
        lambda result: dataclasses.replace(result, from_number="+1555\x00555"),
        "0x00",
    ),
}


@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_an_answer_the_database_refuses_is_a_poll_error_and_the_rest_of_the_round_is_stored(
    simulator, sim_client, monkeypatch, caplog, settings, case
):
    good, other, good_ones, (refused, neighbour) = good_and_bad(simulator, sim_client)
    change, reason = UNSTORABLE[case]
    answering(monkeypatch, refused.conference_id, change)
    before = timezone.now()

    summary = poll_all()

    assert summary.polled == 4
    assert summary.outcomes == {"ok": 3, "unstorable": 1}
    # Every storable answer is stored: the other account's and the same account's.
    for conference in map(reload, [*good_ones, neighbour]):
        assert (conference.state, conference.poll_status) == ("created", "ok")
        assert HistoryEntry.objects.filter(conference=conference).count() == 1
        assert conference.claim_token is None
    refused = reload(refused)
    assert refused.poll_status == "unstorable"
    assert refused.poll_error.startswith("answer not storable: ")
    assert reason in refused.poll_error
    assert "\x00" not in refused.poll_error and len(refused.poll_error) < 200
    assert refused.state is None  # nothing of the refused answer is taken for its status
    assert HistoryEntry.objects.filter(conference=refused).count() == 0
    assert refused.claim_token is None
    assert refused.consecutive_failures == 1
    assert refused.problem_since is not None
    interval = timedelta(seconds=settings.CONFWATCH_POLL_INTERVAL)
    assert before + interval <= refused.next_poll_at <= timezone.now() + interval
    (run,) = PollError.objects.filter(conference=refused)
    assert (run.poll_status, run.occurrences) == ("unstorable", 1)
    assert len(lines(caplog, "writing it again account by account")) == 1

    poll_all()

    refused = reload(refused)
    assert refused.consecutive_failures == 2
    assert PollError.objects.get(conference=refused).occurrences == 2


def test_a_members_page_the_database_refuses_shows_on_its_conference(
    simulator, sim_client, monkeypatch
):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    sim_client.add_member(conference_id, call_id="c-one")
    conference = make_conference(account, conference_id)
    poll_all()  # observed active: its members list is due at once
    long_call_id = "c" * 201

    def long_call_ids(page):
        if not isinstance(page, answers.MembersPage):
            return page
        members = tuple(dataclasses.replace(m, call_id=long_call_id) for m in page.members)
        return dataclasses.replace(page, members=members)

    answering(monkeypatch, conference_id, long_call_ids)
    summary = poll_all()

    assert summary.members_pages == 1
    conference = reload(conference)
    assert conference.poll_status == "unstorable"
    assert conference.poll_error.startswith("answer not storable: value too long")
    assert conference.state == "active"  # its last stored status is kept
    assert not Member.objects.filter(conference=conference).exists()
    assert conference.members_read.due_at > timezone.now()  # not read again every round


def test_a_state_catapult_does_not_document_is_stored_unknown_and_quoted_in_the_message(
    account, sim_client, monkeypatch
):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id)

    @dataclasses.dataclass(frozen=True)
    class WithRawState(answers.Conference):
        state_raw: str | None = None

    def undocumented(result):
        values = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
        return WithRawState(**dict(values, state="unknown", state_raw="on-fire\x00"))

    answering(monkeypatch, conference_id, undocumented)
    poll_all()

    conference = reload(conference)
    assert conference.state == "unknown"
    assert conference.poll_status == "ok"
    assert conference.poll_error == "state not documented by Catapult: 'on-fire\\x00'"


def test_a_rate_limited_accounts_overdue_conferences_stay_as_overdue_as_they_were(
    account, sim_client, simulator
):
    long_ago = timezone.now() - timedelta(minutes=5)
    conferences = [
        make_conference(
            account,
            sim_client.create_conference(from_number="+15555550100"),
            next_poll_at=long_ago,
        )
        for _ in range(3)
    ]
    simulator.set_faults(rate_limited_seconds=30)

    rounds.poll_round()

    assert reload(account).problem == "rate_limited"
    for conference in map(reload, conferences):
        assert conference.claim_token is None
        assert conference.next_poll_at == long_ago


@pytest.mark.django_db(transaction=True)
def test_a_lost_database_connection_fails_the_round_instead_of_blaming_an_account(
    simulator, monkeypatch
):
    account = make_account(simulator)
    make_conference(account, "conf-x")

    def losing_the_connection(**_kwargs):
        connection.connection.close()
        return reload(account)

    monkeypatch.setattr(claims, "claim_due_conferences", losing_the_connection)

    with pytest.raises(outages.UNAVAILABLE):
        rounds.poll_round(force=True)

    connection.close()
    assert reload(account).problem == ""

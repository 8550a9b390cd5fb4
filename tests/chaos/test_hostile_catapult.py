"""Chaos, a hostile Catapult: twenty ordinary conferences that change between every two
polls, one conference for each hostile shape the simulator serves (simulator/hostile.py),
and an account whose budget was written straight into its table. Every change of the
twenty is stored once, the hostile ones each show what was wrong, and the bad account
stops nobody."""

import pytest
from django.db import connection

from conferences.models import Account, Conference, HistoryEntry, PollStatus
from conferences.polling import dispatch, rounds
from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.conftest import SIM_USER, make_account, make_conference, reload

pytestmark = pytest.mark.django_db

ORDINARY = 20
ROUNDS = 4
SHAPES = ["nul-text", "long-state", "long-call-id", "huge-body", "drip"]


def insert_account_with_budget(like, *, name, budget):
    """An account row written by SQL, as an old release or a careless UPDATE would leave
    it: no entry of confwatch accepts such a budget."""
    columns = [
        field.column
        for field in Account._meta.concrete_fields
        if field.column not in {"id", "name", "request_budget"}
    ]
    listed = ", ".join(columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO conferences_account (name, request_budget, {listed}) "
            f"SELECT %s, %s::float8, {listed} FROM conferences_account WHERE id = %s "
            "RETURNING id",
            [name, budget, like.pk],
        )
        (pk,) = cursor.fetchone()
    return Account.objects.get(pk=pk)


def test_a_hostile_api_loses_no_change_of_the_ordinary_conferences_and_names_each_problem(
    settings,
):
    settings.CONFWATCH_HTTP_TOTAL_TIMEOUT = 1.5
    with running_simulator(rate_limit=0, drip_seconds=0.5, huge_bytes=2_000_000) as sim:
        user_id, token, secret = SIM_USER
        client = CatapultDriver(
            base_url=sim.url, user_id=user_id, api_token=token, api_secret=secret
        )
        number = "+15555550100"
        ordinary_ids = [client.create_conference(from_number=number) for _ in range(ORDINARY)]
        hostile_ids = {shape: client.create_conference(from_number=number) for shape in SHAPES}
        for conference_id in [*ordinary_ids, *hostile_ids.values()]:
            client.add_member(conference_id, call_id=f"c-{conference_id}")
        for shape, conference_id in hostile_ids.items():
            sim.set_hostile(conference_id, shape)
        account = make_account(sim, request_budget=200.0)
        ordinary = [make_conference(account, conference_id) for conference_id in ordinary_ids]
        hostile = {
            shape: make_conference(account, conference_id)
            for shape, conference_id in hostile_ids.items()
        }
        bad = insert_account_with_budget(account, name="bad-budget", budget="NaN")
        for index in range(3):
            make_conference(bad, f"conf-bad-{index}")
        dispatch._clients.clear()

        rounds.poll_round(force=True)
        for round_number in range(1, ROUNDS + 1):
            for conference_id in ordinary_ids:
                client.update_conference(conference_id, hold=round_number % 2 == 1)
            rounds.poll_round(force=True)
        client.close()

    for conference in ordinary:
        runs = list(
            HistoryEntry.objects.filter(conference=conference)
            .order_by("first_seen_at")
            .values_list("hold", flat=True)
        )
        # The first observation, then one run per change: every change stored, once.
        assert runs == [False, True, False, True, False], conference.conference_id
        assert reload(conference).poll_status == PollStatus.OK

    shown = {shape: reload(conference) for shape, conference in hostile.items()}
    assert shown["nul-text"].catapult_tag == "hostiletag"
    assert shown["nul-text"].from_number == "+19195550100"
    assert shown["long-state"].state == "unknown"
    assert "state not documented by Catapult" in shown["long-state"].poll_error
    assert shown["huge-body"].poll_status == PollStatus.MALFORMED
    assert "too large" in shown["huge-body"].poll_error
    assert shown["drip"].poll_status == PollStatus.UNREACHABLE
    assert "timed out" in shown["drip"].poll_error
    for conference in shown.values():
        for value in (conference.catapult_tag, conference.from_number, conference.poll_error):
            assert "\x00" not in (value or "")

    bad = reload(bad)
    assert bad.problem == PollStatus.ACCOUNT_ERROR
    assert "finite" in bad.problem_message
    assert not Conference.objects.filter(account=bad, last_polled_at__isnull=False).exists()

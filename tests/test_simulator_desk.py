"""The simulator's desk scenario: conferences in waves over several accounts, a change log
of every change it makes, callbacks from half the accounts (no Django)."""

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from simulator.__main__ import build_parser, simulator_from_args
from simulator.desk import WAVE_JITTER_SECONDS, build_desk_plan
from simulator.testing import running_simulator

USERS = [("u-desk-0", "t0", "s0"), ("u-desk-1", "t1", "s1")]
# An hour of scenario clock in 1.5 s of real time.
FAST = {"minutes": 0.025, "speed": 2400}


def test_started_conferences_start_in_waves_on_the_hour_and_half_hour():
    plan = build_desk_plan(seed=3, conferences=60, accounts=4, minutes=2, speed=30)

    assert plan.wave_times() == (0, 1800, 3600)
    waves_used = set()
    for start in plan.starts:
        if start is None:
            continue
        wave = max(time for time in plan.wave_times() if time <= start)
        assert start - wave <= WAVE_JITTER_SECONDS
        waves_used.add(wave)
    assert waves_used == {0, 1800, 3600}


def test_the_plan_mixes_kinds_and_spreads_conferences_over_every_account():
    plan = build_desk_plan(seed=3, conferences=60, accounts=4, minutes=2, speed=30)

    assert set(plan.kinds) == {"normal", "alone", "never"}
    assert sorted(set(plan.accounts)) == [0, 1, 2, 3]
    never = {index for index, kind in enumerate(plan.kinds) if kind == "never"}
    assert all(plan.starts[index] is None for index in never)
    assert not [step for step in plan.steps if step.conference in never]
    assert [step.at for step in plan.steps] == sorted(step.at for step in plan.steps)


def test_the_same_seed_gives_the_same_plan():
    first = build_desk_plan(seed=9, conferences=20, accounts=2, minutes=1, speed=60)
    assert first == build_desk_plan(seed=9, conferences=20, accounts=2, minutes=1, speed=60)


def test_a_plan_without_accounts_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="at least one conference and one account"):
        build_desk_plan(seed=1, conferences=5, accounts=0, minutes=1)


def test_the_command_line_takes_the_desk_options():
    args = build_parser().parse_args(
        ["--desk", "10", "--desk-minutes", "2", "--desk-log", "/tmp/x.jsonl"]
        + ["--desk-callback", "u-demo=http://127.0.0.1:9/cb/", "--speed", "30"]
    )
    sim = simulator_from_args(args)
    assert len(sim.desk.plan.kinds) == 10
    assert sim.desk.callback_urls == {"u-demo": "http://127.0.0.1:9/cb/"}


def test_the_command_line_refuses_a_callback_without_a_url():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--desk-callback", "u-demo"])


class Receiver(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cb/"
    server.shutdown()
    server.server_close()


def play_desk(tmp_path, callback_url):
    log_path = tmp_path / "changes.jsonl"
    desk = {
        "conferences": 24,
        "minutes": FAST["minutes"],
        "log_path": str(log_path),
        "callback_urls": {"u-desk-0": callback_url},
    }
    with running_simulator(
        users=USERS, rate_limit=0, seed=5, speed=FAST["speed"], desk=desk
    ) as sim:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            progress = requests.get(f"{sim.url}/_sim/desk", timeout=5).json()
            if progress["applied_steps"] + progress["skipped_steps"] == progress["steps"]:
                break
            time.sleep(0.1)
        conferences = progress["list"]
        states = {row["id"]: row["state"] for row in sim.conferences()}
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    return progress, conferences, states, lines


def test_the_change_log_holds_every_change_in_order_and_ends_where_the_simulator_is(
    tmp_path, receiver
):
    progress, conferences, states, lines = play_desk(tmp_path, receiver)

    assert progress["skipped_steps"] == 0
    assert progress["changes"] == len(lines)
    by_conference = defaultdict(list)
    for line in lines:
        assert set(line) - {"member"} == {"conference", "account", "field", "old", "new", "at"}
        by_conference[line["conference"]].append(line)
    assert set(by_conference) == set(states)
    for row in conferences:
        changes = by_conference[row["id"]]
        assert {line["account"] for line in changes} == {row["account"]}
        times = [line["at"] for line in changes]
        assert times == sorted(times)
        for field in ("state", "active_members"):
            values = [line for line in changes if line["field"] == field]
            for previous, line in zip(values, values[1:], strict=False):
                assert line["old"] == previous["new"]
        last_state = [line["new"] for line in changes if line["field"] == "state"][-1]
        assert last_state == states[row["id"]]
        if row["kind"] == "never":
            assert [line["field"] for line in changes] == ["state"]
            assert states[row["id"]] == "created"
        else:
            assert states[row["id"]] == "completed"
        if row["kind"] == "alone":
            members = [line for line in changes if line["field"] == "active_members"]
            assert (members[-1]["old"], members[-1]["new"]) == (1, 0)


def test_only_the_callback_accounts_conferences_call_back(tmp_path, receiver):
    progress, conferences, states, lines = play_desk(tmp_path, receiver)

    calling = {row["id"] for row in conferences if row["callbacks"]}
    assert {row["account"] for row in conferences if row["callbacks"]} == {"u-desk-0"}
    deadline = time.monotonic() + 20
    while (
        time.monotonic() < deadline
        and not {event.get("conferenceId") for event in Receiver.received} >= calling
    ):
        time.sleep(0.1)
    called = {event.get("conferenceId") for event in Receiver.received}
    assert called == calling


def test_the_change_log_holds_every_member_count_a_callback_tells_even_at_termination(
    tmp_path, receiver
):
    progress, conferences, states, lines = play_desk(tmp_path, receiver)

    calling = [row["id"] for row in conferences if row["callbacks"] and row["kind"] != "never"]
    told = defaultdict(list)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        told.clear()
        for event in Receiver.received:
            if event.get("eventType") == "conference-member":
                counts = told[event["conferenceId"]]
                if not counts or counts[-1] != event["activeMembers"]:
                    counts.append(event["activeMembers"])
        if all(told[conference_id][-1:] == [0] for conference_id in calling):
            break
        time.sleep(0.1)
    logged = defaultdict(list)
    for line in lines:
        if line["field"] == "active_members":
            logged[line["conference"]].append(line["new"])
    assert calling
    assert {conference_id: told[conference_id] for conference_id in calling} == {
        conference_id: logged[conference_id] for conference_id in calling
    }


def test_a_stopped_desk_makes_no_more_changes_and_its_log_says_so(tmp_path):
    log_path = tmp_path / "changes.jsonl"
    desk = {"conferences": 6, "minutes": 1, "log_path": str(log_path), "delay": 60}
    with running_simulator(users=USERS, rate_limit=0, seed=5, desk=desk) as sim:
        stopped = requests.post(f"{sim.url}/_sim/desk/stop", timeout=10).json()
        states = {row["state"] for row in sim.conferences()}

    assert stopped["applied_steps"] == 0
    assert states == {"created"}
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(line["field"], line["old"], line["new"]) for line in lines] == [
        ("state", None, "created")
    ] * 6

"""Hostile answers (simulator/hostile.py) read by the real client over real HTTP, and a
polling round that meets them: each is read safely or fails alone, with the right error."""

import json
import time
import urllib.request

import pytest

from conferences.catapult.answers import CALL_ID_LIMIT, MalformedResponse, TransientError
from conferences.models import Conference, Member, PollStatus
from conferences.polling import dispatch, rounds
from simulator.__main__ import build_parser, simulator_from_args
from simulator.hostile import LONG_STATE, SHAPES
from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.conftest import SIM_USER, make_account, make_conference


def client_for(sim, **options):
    user_id, token, secret = SIM_USER
    return CatapultDriver(
        base_url=sim.url, user_id=user_id, api_token=token, api_secret=secret, **options
    )


@pytest.fixture(scope="module")
def hostile_sim():
    with running_simulator(rate_limit=0, huge_bytes=2_000_000) as sim:
        yield sim


@pytest.fixture
def sim(hostile_sim):
    hostile_sim.hostile.reset()
    hostile_sim.hostile.update({"huge_bytes": 2_000_000})
    return hostile_sim


def active_conference(client):
    conference_id = client.create_conference(from_number="+15555550100", tag="weekly")
    client.add_member(conference_id, call_id="c-ordinary")
    return conference_id


def test_nul_bidi_and_zero_width_characters_are_dropped_from_tag_from_and_call_ids(sim):
    with client_for(sim) as client:
        hostile, ordinary = active_conference(client), active_conference(client)
        sim.set_hostile(hostile, "nul-text")

        conference = client.get_conference(hostile)
        page = client.list_members_page(hostile)
        untouched = client.get_conference(ordinary)

    assert (conference.tag, conference.from_number) == ("hostiletag", "+19195550100")
    assert conference.problems == ()
    assert sorted(member.call_id for member in page.members) == ["c-nulid", "c-ordinary"]
    assert (untouched.tag, untouched.from_number) == ("weekly", "+15555550100")


def test_a_500_character_state_reads_unknown_and_keeps_100_characters_of_it(sim):
    with client_for(sim) as client:
        conference_id = active_conference(client)
        sim.set_hostile(conference_id, "long-state")

        conference = client.get_conference(conference_id)
        (member,) = client.list_members_page(conference_id).members

    assert conference.state == member.state == "unknown"
    assert conference.state_raw == member.state_raw == LONG_STATE[:99] + "…"
    assert "state" not in conference.unknown


def test_a_call_id_longer_than_its_column_is_cut_and_shows_the_cut(sim):
    with client_for(sim) as client:
        conference_id = active_conference(client)
        sim.set_hostile(conference_id, "long-call-id")

        page = client.list_members_page(conference_id)

    long_one = next(member for member in page.members if member.id == "member-hostile")
    assert len(long_one.call_id) == CALL_ID_LIMIT and long_one.call_id.endswith("9…")
    assert len(page.members) == 2


@pytest.mark.parametrize("members", [False, True], ids=["conference", "members list"])
def test_a_body_over_the_cap_is_a_malformed_too_large_and_the_client_goes_on(sim, members):
    with client_for(sim) as client:
        conference_id, ordinary = active_conference(client), active_conference(client)
        sim.set_hostile(conference_id, "huge-body")
        read = client.list_members_page if members else client.get_conference

        with pytest.raises(MalformedResponse) as raised:
            read(conference_id)
        after = client.get_conference(ordinary)

    assert raised.value.message == "too large (over 1048576 bytes)"
    assert raised.value.poll_status == "malformed" and not raised.value.transient
    assert after.id == ordinary


def test_a_ten_megabyte_answer_is_too_large_for_the_default_cap():
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        sim.set_hostile(conference_id, "huge-body")
        started = time.monotonic()

        with pytest.raises(MalformedResponse, match="too large"):
            client.get_conference(conference_id)

    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "drip_seconds",
    [0.2, 0.9, 5.0],
    ids=["a byte every 0.2 s", "a byte due just after the deadline", "a byte every 5 s"],
)
def test_a_drip_fed_answer_ends_at_the_total_deadline_as_a_timeout(sim, drip_seconds):
    sim.hostile.update({"drip_seconds": drip_seconds})
    with client_for(sim, timeout=(3.05, 10.0), total_timeout=1.0) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        sim.set_hostile(conference_id, "drip")
        started = time.monotonic()

        with pytest.raises(TransientError) as raised:
            client.get_conference(conference_id)
        took = time.monotonic() - started

    assert 0.9 <= took < 1.5
    assert "no complete answer within 1 s" in raised.value.message
    assert raised.value.poll_status == "unreachable"


def test_the_shapes_are_set_and_read_through_the_control_endpoint(sim):
    request = urllib.request.Request(
        f"{sim.url}/_sim/hostile",
        data=json.dumps({"conferences": {"conf-a": "drip", "*": "nul-text"}}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        settings = json.loads(answer.read())
    bad = urllib.request.Request(
        f"{sim.url}/_sim/hostile", data=b'{"conferences": {"x": "evil"}}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad)

    assert settings["conferences"] == {"conf-a": "drip", "*": "nul-text"}
    assert refused.value.code == 400


def test_the_command_line_names_hostile_conferences():
    args = build_parser().parse_args(
        ["--hostile", "conf-a=drip", "--hostile", "*=long-state", "--drip-seconds", "0.5"]
    )

    sim = simulator_from_args(args)

    assert sim.hostile.settings()["conferences"] == {"conf-a": "drip", "*": "long-state"}
    assert sim.hostile.settings()["drip_seconds"] == 0.5
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--hostile", "conf-a=evil"])


@pytest.mark.django_db
def test_a_round_stores_every_hostile_answer_safely_and_the_others_normally(settings):
    settings.CONFWATCH_HTTP_TOTAL_TIMEOUT = 1.0
    with running_simulator(rate_limit=0, drip_seconds=0.3) as sim:
        account = make_account(sim)
        with client_for(sim) as client:
            ids = {shape: active_conference(client) for shape in SHAPES}
            ordinary = active_conference(client)
        for shape, conference_id in ids.items():
            sim.set_hostile(conference_id, shape)
        tracked = {cid: make_conference(account, cid) for cid in [*ids.values(), ordinary]}
        dispatch._clients.clear()
        for _ in range(3):  # the status, then the members pages
            rounds.poll_round(force=True)

    stored = {c.conference_id: c for c in Conference.objects.filter(account=account)}
    assert stored[ordinary].poll_status == PollStatus.OK and stored[ordinary].state == "active"
    nul = stored[ids["nul-text"]]
    assert (nul.catapult_tag, nul.from_number, nul.poll_status) == (
        "hostiletag",
        "+19195550100",
        "ok",
    )
    assert stored[ids["long-state"]].state == "unknown"
    assert stored[ids["huge-body"]].poll_status == PollStatus.MALFORMED
    assert "too large" in stored[ids["huge-body"]].poll_error
    assert stored[ids["drip"]].poll_status == PollStatus.UNREACHABLE
    call_ids = set(
        Member.objects.filter(conference__in=tracked.values()).values_list("call_id", flat=True)
    )
    assert "c-nulid" in call_ids
    assert any(call_id and len(call_id) == CALL_ID_LIMIT for call_id in call_ids)

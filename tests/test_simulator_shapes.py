"""Every documented error shape the simulator can answer (reference §4.1, §4.2), checked
body by body over a real socket, and the members list's Link header shapes (§5.4)."""

import time

import pytest
import requests

from conferences.catapult import answers
from simulator.__main__ import build_parser, simulator_from_args
from simulator.faults import SHAPE_NAMES
from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.conftest import SIM_USER

USER_ID, TOKEN, SECRET = SIM_USER


def client_for(sim):
    return CatapultDriver(base_url=sim.url, user_id=USER_ID, api_token=TOKEN, api_secret=SECRET)


def api(sim, method, path="", **kwargs):
    return requests.request(
        method,
        f"{sim.url}/v1/users/{USER_ID}/conferences{path}",
        auth=(TOKEN, SECRET),
        timeout=5,
        **kwargs,
    )


def details_of(body):
    return {detail["name"]: detail["value"] for detail in body["details"]}


def completed_conference(sim):
    created = api(sim, "POST", json={"from": "+15555550100"})
    conference_id = created.headers["Location"].rsplit("/", 1)[-1]
    api(sim, "POST", f"/{conference_id}", json={"state": "completed"}).raise_for_status()
    return conference_id


def test_the_standard_error_shape_names_the_request():
    with running_simulator(rate_limit=0) as sim:
        bad = api(sim, "POST", json={})
        missing = api(sim, "GET", "/conf-nope")
        conference_id = completed_conference(sim)
        forbidden = api(sim, "POST", f"/{conference_id}", json={"mute": True})

    assert bad.status_code == 400
    assert bad.json()["category"] == "bad-request" and bad.json()["code"] == "missing-property"
    assert missing.status_code == 404 and missing.json()["code"] == "conference-not-found"
    assert forbidden.status_code == 403
    body = forbidden.json()
    assert (body["category"], body["code"]) == ("forbidden", "conference-error")
    assert body["message"]
    assert details_of(body) == {
        "requestPath": f"users/{USER_ID}/conferences/{conference_id}",
        "requestMethod": "POST",
    }


def test_the_documented_429_has_no_message_and_its_full_details_on_request():
    with running_simulator(rate_limit=0, rate_limited_seconds=30) as sim:
        plain = api(sim, "GET", "/conf-x")
        sim.set_faults(full_429_details=True)
        full = api(sim, "POST", "/conf-x", json={"mute": True})

    assert plain.status_code == 429
    assert set(plain.json()) == {"category", "code", "details"}
    assert set(details_of(plain.json())) == {"rateLimitResetTime", "requestPath"}
    body = full.json()
    assert (body["category"], body["code"]) == ("too-many-requests", "rate-limit-reached")
    assert "message" not in body
    details = details_of(body)
    assert details["requestMethod"] == "POST"
    assert details["remoteAddress"] == "127.0.0.1"
    assert details["requestPath"] == f"users/{USER_ID}/conferences/conf-x"
    assert details["rateLimitResetTime"] == full.headers["X-RateLimit-Reset"]
    assert int(details["rateLimitResetTime"]) > time.time() * 1000


def test_the_legacy_400_has_an_upper_case_category_an_integer_time_and_a_user():
    with running_simulator(rate_limit=0, legacy_400=True) as sim:
        response = api(sim, "POST", json={"from": "+15555550100", "profile": "loud"})
        other = api(sim, "GET", "/conf-nope")  # not a 400: the standard shape

    body = response.json()
    assert response.status_code == 400
    assert (body["category"], body["code"]) == ("BAD_REQUEST", "validation-error")
    assert body["message"] and body["id"]
    assert isinstance(body["time"], int) and abs(body["time"] / 1000 - time.time()) < 60
    assert body["user"] == {"id": USER_ID}
    assert all({"id", "name", "value", "version"} <= set(d) for d in body["details"])
    assert details_of(body)["requestMethod"] == "POST"
    assert other.json()["category"] == "not-found"


def test_a_403_may_come_with_empty_details():
    with running_simulator(rate_limit=0, empty_403_details=True) as sim:
        conference_id = completed_conference(sim)
        response = api(sim, "POST", f"/{conference_id}", json={"hold": True})

    assert response.status_code == 403
    assert response.json() == {
        "category": "forbidden",
        "code": "conference-error",
        "message": f"Conference {conference_id} is completed and cannot be updated",
        "details": [],
    }


@pytest.mark.parametrize(
    ("faults", "status", "category", "code"),
    [
        ({"limit_rate": 1.0}, 403, "limit", "call-rate-limit-reached"),
        ({"conflict_rate": 1.0}, 409, "conflict", "conference-update-conflict"),
        ({"error_rate": 1.0}, None, None, None),
    ],
)
def test_injected_errors_carry_the_standard_shape(faults, status, category, code):
    with running_simulator(rate_limit=0) as sim:
        created = api(sim, "POST", json={"from": "+15555550100"})
        conference_id = created.headers["Location"].rsplit("/", 1)[-1]
        sim.set_faults(**faults)
        response = api(sim, "POST", f"/{conference_id}", json={"mute": True})

    body = response.json()
    assert set(body) == {"category", "code", "message", "details"}
    if status is None:
        assert (response.status_code, body["category"]) in ((500, "backend"), (503, "unavailable"))
    else:
        assert (response.status_code, body["category"], body["code"]) == (status, category, code)
    assert details_of(body)["requestMethod"] == "POST"


def test_the_client_reads_every_untidy_error_shape():
    with running_simulator(rate_limit=0, untidy=True) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        with pytest.raises(answers.ApiError) as bad:
            client.add_member(conference_id, call_id="")
        client.update_conference(conference_id, state="completed")
        with pytest.raises(answers.ApiError) as forbidden:
            client.update_conference(conference_id, mute=True)
        sim.set_faults(rate_limited_seconds=30)
        with pytest.raises(answers.RateLimited) as limited:
            client.get_conference(conference_id)

    assert (bad.value.status, bad.value.category) == (400, "BAD_REQUEST")
    assert (forbidden.value.status, forbidden.value.code) == (403, "conference-error")
    assert limited.value.status == 429 and limited.value.reset_at is not None


def test_a_conflict_never_hits_a_create():
    with running_simulator(rate_limit=0, conflict_rate=1.0) as sim:
        created = api(sim, "POST", json={"from": "+15555550100"})
        conference_id = created.headers["Location"].rsplit("/", 1)[-1]
        added = api(sim, "POST", f"/{conference_id}/members", json={"callId": "c-1"})
        audio = api(sim, "POST", f"/{conference_id}/audio", json={"sentence": "hi"})
        member_id = added.headers["Location"].rsplit("/", 1)[-1]
        update = api(sim, "POST", f"/{conference_id}", json={"mute": True})
        member_update = api(sim, "POST", f"/{conference_id}/members/{member_id}", json={})

    assert (created.status_code, added.status_code, audio.status_code) == (201, 201, 200)
    assert update.json()["code"] == "conference-update-conflict"
    assert member_update.json()["code"] == "conference-member-update-conflict"


def test_links_can_be_relative_and_name_the_first_page():
    with running_simulator(
        rate_limit=0, members_page_size=2, relative_links=True, first_links=True
    ) as sim:
        created = api(sim, "POST", json={"from": "+15555550100"})
        conference_id = created.headers["Location"].rsplit("/", 1)[-1]
        for i in range(5):
            api(sim, "POST", f"/{conference_id}/members", json={"callId": f"c-{i}"})
        first = api(sim, "GET", f"/{conference_id}/members")
        last = api(sim, "GET", f"/{conference_id}/members", params={"page": 2})
        with client_for(sim) as client:
            listed = client.list_members(conference_id)

    assert first.headers["Link"] == (
        '<members?page=0&size=2>; rel="first", <members?page=1&size=2>; rel="next"'
    )
    assert "Link" not in last.headers
    assert listed.pages == 3
    assert [member.call_id for member in listed.members] == [f"c-{i}" for i in range(5)]


def test_untidy_turns_every_shape_on_from_the_command_line():
    args = build_parser().parse_args(["--untidy", "--port", "0"])
    sim = simulator_from_args(args)
    settings = sim.faults.settings()

    assert all(settings[name] is True for name in SHAPE_NAMES)
    assert (sim.state.omit_rate, sim.state.time_format) == (1.0, "untidy")
    assert sim.state.members_page_size == 3
    single = simulator_from_args(build_parser().parse_args(["--legacy-400"]))
    assert single.faults.shapes() == {"legacy-400"}


def test_shapes_change_live_through_the_control_endpoint():
    with running_simulator(rate_limit=0) as sim:
        changed = requests.post(
            f"{sim.url}/_sim/faults", json={"empty_403_details": True}, timeout=5
        ).json()
        refused = requests.post(f"{sim.url}/_sim/faults", json={"legacy_400": "maybe"}, timeout=5)

    assert changed["empty_403_details"] is True and changed["legacy_400"] is False
    assert refused.status_code == 400 and "legacy_400" in refused.json()["error"]

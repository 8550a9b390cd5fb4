"""The official v1 Python SDK (bandwidth-sdk 3.1.0, `bandwidth.voice.Client`) against the
simulator as untidy as it gets (`untidy`: every default left out, every timestamp shape,
members paged, every untidy error shape), rate limiting off: a client written from the
docs creates, reads, holds, mutes, lists members and terminates (issue #21).

The SDK cannot follow a relative `Link` target (docs/catapult-api.md §5.4): its members
are listed with the relative-links shape off, and one test shows why. confwatch's own
client is tested against relative links (tests/test_simulator_untidy.py)."""

import pytest
import requests

from simulator.testing import running_simulator
from tests.conftest import SIM_USER

voice = pytest.importorskip("bandwidth.voice")

USER_ID, TOKEN, SECRET = SIM_USER


class TimedClient(voice.Client):
    """The SDK's client, with a timeout on each request (the SDK sets none)."""

    def _request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 10)
        return super()._request(method, url, *args, **kwargs)


def sdk_for(sim):
    return TimedClient(USER_ID, TOKEN, SECRET, api_endpoint=sim.url)


@pytest.fixture
def untidy_sim():
    """Untidy, but with absolute Link targets, which is all the SDK can follow."""
    with running_simulator(untidy=True, rate_limit=0, faults={"relative_links": False}) as sim:
        yield sim


def test_the_sdk_creates_and_reads_a_conference_whose_defaults_are_left_out(untidy_sim):
    sdk = sdk_for(untidy_sim)

    conference_id = sdk.create_conference(
        "+15555550100", callback_url="http://127.0.0.1:9/hooks", callback_timeout=2000, tag="t"
    )
    conference = sdk.get_conference(conference_id)

    assert conference_id.startswith("conf-")
    assert conference["id"] == conference_id
    assert conference["state"] == "created"
    assert conference["from"] == "+15555550100"
    assert (conference["callback_url"], conference["tag"]) == ("http://127.0.0.1:9/hooks", "t")
    assert "hold" not in conference and "mute" not in conference  # defaults: left out


def test_the_sdk_holds_mutes_and_terminates_and_reads_each_change_back(untidy_sim):
    sdk = sdk_for(untidy_sim)
    conference_id = sdk.create_conference("+15555550100")

    sdk.update_conference(conference_id, hold=True)
    held = sdk.get_conference(conference_id)
    sdk.update_conference(conference_id, hold=False, mute=True)
    muted = sdk.get_conference(conference_id)
    sdk.update_conference(conference_id, state="completed")
    ended = sdk.get_conference(conference_id)

    assert held["hold"] is True
    assert muted["mute"] is True and "hold" not in muted
    assert ended["state"] == "completed" and ended["completed_time"]


def test_the_sdk_adds_reads_updates_and_lists_members_over_every_page(untidy_sim):
    sdk = sdk_for(untidy_sim)
    conference_id = sdk.create_conference("+15555550100")

    member_ids = [
        sdk.create_conference_member(conference_id, call_id=f"c-{number}", join_tone=True)
        for number in range(7)
    ]
    sdk.update_conference_member(conference_id, member_ids[0], mute=True)
    first = sdk.get_conference_member(conference_id, member_ids[0])
    listed = list(sdk.list_conference_members(conference_id))

    assert first["mute"] is True and first["join_tone"] is True
    assert first["call"].endswith("/calls/c-0")
    assert [member["id"] for member in listed] == member_ids  # 3 pages of 3, 3 and 1
    assert sdk.get_conference(conference_id)["active_members"] == 7


def test_the_sdk_reads_the_terminated_conferences_departed_members(untidy_sim):
    sdk = sdk_for(untidy_sim)
    conference_id = sdk.create_conference("+15555550100")
    member_id = sdk.create_conference_member(conference_id, call_id="c-1")

    sdk.update_conference(conference_id, state="completed")
    (member,) = list(sdk.list_conference_members(conference_id))

    assert member["id"] == member_id
    assert member["state"] == "completed" and member["removed_time"]


def test_the_sdk_reports_an_unknown_conference_as_a_404(untidy_sim):
    sdk = sdk_for(untidy_sim)

    with pytest.raises(voice.BandwidthVoiceAPIException) as raised:
        sdk.get_conference("conf-nobody-made")

    assert raised.value.status_code == 404


def test_the_sdk_cannot_follow_a_relative_link_so_its_members_run_with_absolute_ones():
    with running_simulator(untidy=True, rate_limit=0) as sim:
        sdk = sdk_for(sim)
        conference_id = sdk.create_conference("+15555550100")
        for number in range(4):
            sdk.create_conference_member(conference_id, call_id=f"c-{number}")

        with pytest.raises(requests.exceptions.MissingSchema):
            list(sdk.list_conference_members(conference_id))

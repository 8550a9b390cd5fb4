"""Members through the running product without callbacks: a real Celery worker and beat
poll the simulator, and members joining, muted, held and leaving are stored with their
events on the conference's timeline."""

import pytest

from conferences.models import Member
from conferences.recording import members
from conferences.web.selectors import timeline
from tests.conftest import WORKER_ARGS, make_account, make_conference, start_celery, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def beat_and_worker(celery_env):
    celery_env["CONFWATCH_MEMBERS_INTERVAL"] = "1"
    processes = [start_celery(celery_env, *WORKER_ARGS), start_celery(celery_env, "beat")]
    yield
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def test_members_changes_made_on_the_simulator_reach_the_timeline_by_polling(
    simulator, sim_client, beat_and_worker
):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    first = sim_client.add_member(conference_id, call_id="c-first")
    conference = make_conference(account, conference_id)
    wait_for(lambda: Member.objects.filter(conference=conference).exists(), what="a member")

    sim_client.add_member(conference_id, call_id="c-second")
    sim_client.update_member(conference_id, first, mute=True, hold=True)
    wait_for(
        lambda: Member.objects.filter(conference=conference, mute=True, hold=True).exists(),
        what="the mute and hold",
    )
    sim_client.update_member(conference_id, first, state="completed")
    wait_for(
        lambda: Member.objects.filter(conference=conference, state="completed").exists(),
        what="the member to leave",
    )

    entries = [e for e in timeline.timeline_page(conference).entries if e.kind == "member"]
    texts = [entry.title.split(" (")[0] for entry in entries]
    assert sorted(texts) == sorted(
        [
            "c-first joined",
            "c-second joined",
            "c-first muted",
            "c-first put on hold",
            "c-first left",
        ]
    )
    assert not any("reported by Catapult" in entry.title for entry in entries)  # all polled
    present, departed = members.members_for_page(conference)
    assert [m.call_id for m in present] == ["c-second"]
    assert [m.call_id for m in departed] == ["c-first"]

"""docs/api.md cannot rot: every field every JSON endpoint returns (its answers and its
errors) is in its field tables, every field there is still returned, every endpoint and
every error message is documented."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from conferences.models import Account, HistoryEntry, Member
from conferences.registry import roles, tokens
from tests.conftest import make_account, make_conference
from tests.test_access import url_patterns

pytestmark = pytest.mark.django_db

DOC = Path(settings.BASE_DIR, "docs", "api.md").read_text()
# The placeholders the page writes in addresses, for the URL patterns' parameters.
PLACEHOLDERS = {"conference_id": "ID", "call_id": "CALL_ID", "pk": "PK", "fmt": "json"}


def documented_fields():
    """The first cells of the rows of every table headed `| Field |`."""
    fields, in_table = set(), False
    for line in DOC.splitlines():
        if line.startswith("| Field |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table:
            fields.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return fields


def keys_of(value, *, skip=False):
    """Every key of every object in a JSON value; skip=True leaves out the keys of the
    outermost object (a 400's parameter names) but not those inside it."""
    if isinstance(value, list):
        return set().union(*(keys_of(item) for item in value))
    if isinstance(value, dict):
        inner = set().union(*(keys_of(item) for item in value.values()))
        return inner if skip else set(value) | inner
    return set()


@pytest.fixture
def answers(client):
    """Every JSON answer of the API with data in each list, read with an API token."""
    user = roles.create_user(username="ann", role="viewer", password="x" * 20)
    _, token_text = tokens.create_token(name="docs", user=user)
    now = timezone.now()
    account = make_account(name="acme")
    conference = make_conference(account, "conf-alpha", state="active", active_members=1)
    make_conference(make_account(name="other"), "conf-alpha")
    make_conference(account, "conf-beta")
    HistoryEntry.objects.create(
        conference=conference, state="active", first_seen_at=now, last_seen_at=now
    )
    Member.objects.create(
        conference=conference,
        member_id="m-1",
        call_id="c-1",
        state="active",
        joined_at=now,
        first_seen_at=now,
        last_seen_at=now,
        last_changed_at=now,
    )
    Account.objects.filter(pk=account.pk).update(paused_until=now + timedelta(minutes=5))
    headers = {"Authorization": f"Bearer {token_text}"}

    def get(url, status=200, **extra):
        response = client.get(url, headers={**headers, **extra})
        assert response.status_code == status, url
        if response.streaming:
            return json.loads(b"".join(response.streaming_content))
        return response.json()

    return {
        "list": get("/api/conferences/"),
        "history": get("/api/conferences/conf-beta/history/"),
        "export": get(f"/conferences/{conference.pk}/history.json?range=all"),
        "call": get("/api/calls/c-1/"),
        "health": client.get("/health/").json(),  # 200 or 503, the same fields
        "400": get("/api/conferences/?state=nope", status=400),
        "401": get("/api/conferences/", status=401, Authorization="Bearer cw_nope"),
        "403": client.post("/api/conferences/", headers=headers).json(),
        "404": get("/api/conferences/conf-gone/history/", status=404),
        "409": get("/api/conferences/conf-alpha/history/", status=409),
    }


def test_every_field_the_api_returns_is_documented_and_every_documented_field_returned(
    answers,
):
    returned = set().union(*(keys_of(body, skip=name == "400") for name, body in answers.items()))

    assert answers["call"]["conferences"] and answers["health"]["polling"]["resting_accounts"]
    assert returned - documented_fields() == set(), "returned, not in docs/api.md"
    assert documented_fields() - returned == set(), "in docs/api.md, no longer returned"


def test_every_error_message_of_the_api_is_documented(answers):
    messages = [answers[status]["error"] for status in ("401", "403", "404", "409")]

    for message in messages:
        written = message.replace("conf-gone", "ID").replace("conf-alpha", "ID")
        assert written in DOC, message


def test_every_refusal_of_a_token_is_documented():
    source = Path(tokens.__file__).read_text()

    refusals = re.findall(r'raise Refused\("([^"]+)"\)', source)

    assert len(refusals) == 5
    for message in refusals:
        assert f"`{message}`" in DOC


def test_every_json_endpoint_has_its_section():
    json_views = {
        name
        for _, name, view in url_patterns()
        if hasattr(view, "signed_out") or name == "conferences:health"
    }
    routes = {name: route for route, name, _ in url_patterns() if name in json_views}

    assert len(routes) == 5
    for route in routes.values():
        address = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: PLACEHOLDERS[m.group(1)], route)
        assert f"## `GET /{address}`" in DOC, address

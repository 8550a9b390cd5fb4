"""Every CSV confwatch writes (history exports, the admin's export) writes a cell that a
spreadsheet would run as a formula as text, with a leading '."""

import csv
import io
import json

import pytest
from django.utils import timezone

from conferences.models import Conference, HistoryEntry
from conferences.registry import importing
from conferences.web.selectors import exports
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db

ATTACK = "=cmd|' /c calc'!a0"


@pytest.fixture
def admin(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", password="x" * 16))
    return client


def rows_of(response):
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_starting_like_a_formula_is_written_as_text(start):
    assert exports.csv_value(f"{start}1+2") == f"'{start}1+2"
    assert exports.csv_text(f"'{start}1+2") == f"{start}1+2"


@pytest.mark.parametrize(
    "value, written",
    [
        ("active", "active"),
        ("1-2", "1-2"),
        ("'quoted", "'quoted"),
        (3, 3),
        (None, ""),
        (True, "true"),
    ],
)
def test_other_cells_are_written_as_they_are(value, written):
    assert exports.csv_value(value) == written


def test_the_history_csv_writes_a_state_from_the_api_as_text(admin):
    conference = make_conference(make_account(), "conf-csv", state=ATTACK)
    now = timezone.now()
    HistoryEntry.objects.create(
        conference=conference, state=ATTACK, active_members=2, first_seen_at=now, last_seen_at=now
    )

    [row] = rows_of(admin.get(f"/conferences/{conference.pk}/history.csv?range=all"))
    document = json.loads(
        b"".join(admin.get(f"/conferences/{conference.pk}/history.json?range=all")).decode()
    )

    assert row["state"] == "'" + ATTACK and row["active_members"] == "2"
    assert document["history"][0]["state"] == ATTACK  # JSON runs nothing: as it is


def test_the_admins_csv_export_writes_formulas_as_text_and_imports_as_it_is(admin):
    conference = make_conference(
        make_account(), "conf-csv", label="-weekly", from_number="=1+2", state=ATTACK
    )

    response = admin.post(
        "/admin/conferences/conference/",
        {"action": "export_csv", "_selected_action": [conference.pk]},
    )

    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["from_number"] == "'=1+2"
    assert row["label"] == "'-weekly"
    assert row["state"] == "'" + ATTACK
    other = make_account(name="initech")
    importing.import_conferences(account=other, data=response.content)
    assert Conference.objects.get(account=other).label == "-weekly"

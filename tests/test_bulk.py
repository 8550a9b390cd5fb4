"""Set-based writes (conferences/recording/bulk.py): every row gets its own values, however the
values are sent."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conferences.models import Conference, ConferenceMembersRead
from conferences.recording import bulk
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


def test_update_rows_writes_shared_repeated_and_distinct_values_to_each_row():
    account = make_account()
    conferences = [make_conference(account, f"conf-{n}") for n in range(3)]
    at = timezone.now()
    fields = ["state", "poll_error", "active_members", "last_observed_at", "last_polled_at"]
    fields += ["next_poll_at"]
    rows = [bulk.Row(id=conference.pk) for conference in conferences]
    for n, row in enumerate(rows):
        row.state = "active"  # the same for every row: sent once
        row.poll_error = ""
        row.active_members = n  # distinct
        row.last_observed_at = row.last_polled_at = at + timedelta(seconds=n)  # one array
        row.next_poll_at = at + timedelta(minutes=n)

    updated = bulk.update_rows(Conference, rows, fields)

    assert updated == 3
    stored = Conference.objects.order_by("pk").values_list(
        "state", "active_members", "last_observed_at", "last_polled_at", "next_poll_at"
    )
    assert list(stored) == [
        (
            "active",
            n,
            at + timedelta(seconds=n),
            at + timedelta(seconds=n),
            at + timedelta(minutes=n),
        )
        for n in range(3)
    ]


def test_update_rows_can_set_a_column_to_null_for_every_row():
    account = make_account()
    first = make_conference(account, "conf-1", active_members=3)
    second = make_conference(account, "conf-2", active_members=4)
    rows = [bulk.Row(id=first.pk, active_members=None), bulk.Row(id=second.pk, active_members=None)]

    bulk.update_rows(Conference, rows, ["active_members"])

    assert list(Conference.objects.values_list("active_members", flat=True)) == [None, None]


def test_update_rows_finds_rows_by_a_primary_key_that_is_not_called_id():
    conference = make_conference(make_account())
    ConferenceMembersRead.objects.create(conference=conference)
    due = timezone.now()
    read = bulk.Row(conference_id=conference.pk, due_at=due)

    bulk.update_rows(ConferenceMembersRead, [read], ["due_at"])

    assert ConferenceMembersRead.objects.get().due_at == due


SELECT_MEMBERS = (
    "SELECT id, active_members FROM conferences_conference WHERE id = ANY(%s) ORDER BY id"
)


def test_fetched_rows_keep_their_columns_as_read_when_the_rows_change():
    account = make_account()
    first = make_conference(account, "conf-1", active_members=3)
    second = make_conference(account, "conf-2", active_members=4)
    rows = bulk.fetch_rows(SELECT_MEMBERS, [[second.pk, first.pk]], ["id", "active_members"])
    for row in rows.values():
        row.active_members = 0

    assert [row.pk for row in rows.values()] == [first.pk, second.pk]
    assert rows.columns == {"id": (first.pk, second.pk), "active_members": (3, 4)}
    assert bulk.fetch_rows(SELECT_MEMBERS, [[]], ["id", "active_members"]).columns == {
        "id": (),
        "active_members": (),
    }

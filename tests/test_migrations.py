"""Data migrations run on a database that holds the old rows: migrated back to before
the migration, filled through the historical models, then migrated forward again."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conferences.models import Conference

# Outside a test transaction: migrations that build an index concurrently (0023) cannot
# run inside one.
pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_STATE_SINCE = ("conferences", "0017_callbacks_blast_radius")


def migrate(targets):
    """Migrate to `targets`; return the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    # Inserted rows' deferred foreign key checks run now: PostgreSQL refuses to alter a
    # table that has pending trigger events.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return MigrationExecutor(connection).loader.project_state(targets).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def at(minute):
    return datetime(2026, 3, 1, 12, minute, tzinfo=UTC)


def test_state_since_is_filled_from_the_newest_status_change_or_state_event():
    apps = migrate([BEFORE_STATE_SINCE])
    Account = apps.get_model("conferences", "Account")
    OldConference = apps.get_model("conferences", "Conference")
    StatusChange = apps.get_model("conferences", "StatusChange")
    Event = apps.get_model("conferences", "Event")
    account = Account.objects.create(
        name="acme", user_id="u-acme", api_token_encrypted="x", api_secret_encrypted="x"
    )

    def conference(conference_id, state):
        return OldConference.objects.create(
            account=account, conference_id=conference_id, state=state, next_poll_at=at(0)
        )

    def event(conference, kind, minute):
        Event.objects.create(
            kind=kind, account=account, conference=conference, occurred_at=at(minute)
        )

    by_changes = conference("conf-changes", "active")
    StatusChange.objects.create(
        conference=by_changes, from_state=None, to_state="created", changed_at=at(1)
    )
    StatusChange.objects.create(
        conference=by_changes, from_state="created", to_state="active", changed_at=at(5)
    )
    event(by_changes, "first_observed", 1)
    by_event = conference("conf-event", "completed")
    StatusChange.objects.create(
        conference=by_event, from_state=None, to_state="active", changed_at=at(2)
    )
    event(by_event, "state_changed", 7)
    event(by_event, "members_changed", 9)  # not a change of state
    never_observed = conference("conf-never-observed", None)
    StatusChange.objects.create(
        conference=never_observed, from_state=None, to_state=None, changed_at=at(3)
    )
    conference("conf-unchanged", "active")

    migrate(latest())

    assert MigrationExecutor(connection).migration_plan(latest()) == []  # at the latest
    since = dict(Conference.objects.values_list("conference_id", "state_since"))
    assert since == {
        "conf-changes": at(5),
        "conf-event": at(7),
        "conf-never-observed": None,
        "conf-unchanged": None,
    }

"""What the rules see in a conference's recent history: each held rule's condition as a
property of a history run, and since when it holds (a `Finding`), read from the runs
that `recent_runs` fetches for many conferences in one query. Pure functions of the
runs, apart from that query; conferences/alerting/rules.py turns findings into events.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from django.db import connection

from conferences.models import ConferenceState, HistoryEntry
from conferences.text import exact_duration_text

# Rules whose condition is a property of each history run.
HELD = {
    "not_started": lambda run: run.state == ConferenceState.CREATED,
    "alone": lambda run: run.state == ConferenceState.ACTIVE and run.active_members == 1,
    "all_held": lambda run: run.state == ConferenceState.ACTIVE and run.hold is True,
    "all_muted": lambda run: run.state == ConferenceState.ACTIVE and run.mute is True,
}
# How far back each conference's history is read (runs, newest first); a condition
# older than that counts as holding since the oldest run read.
HISTORY_RUNS = 50
DROP_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Finding:
    """What a rule sees now: whether its condition holds, since when, and the words for
    it (`condition`, `clears`) that its emails use."""

    holds: bool
    since: datetime | None = None
    episode: str = ""
    condition: str = ""
    clears: str = ""
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """One history run, as the rules read it."""

    state: str | None
    active_members: int | None
    hold: bool | None
    mute: bool | None
    first_seen_at: datetime
    last_seen_at: datetime


RECENT_RUNS_SQL = f"""
    SELECT run.conference_id, run.state, run.active_members, run.hold, run.mute,
           run.first_seen_at, run.last_seen_at
    FROM unnest(%s::bigint[]) AS wanted(id)
    CROSS JOIN LATERAL (
        SELECT * FROM {HistoryEntry._meta.db_table} AS history
        WHERE history.conference_id = wanted.id
        ORDER BY history.first_seen_at DESC, history.id DESC
        LIMIT %s
    ) AS run
    ORDER BY run.conference_id, run.first_seen_at DESC, run.id DESC
"""


def recent_runs(conference_pks):
    """Each conference's last HISTORY_RUNS history runs, newest first, in one query (a
    lateral join walking history_by_conference_idx per conference)."""
    if not conference_pks:
        return {}
    runs = {}
    connection.ensure_connection()
    # psycopg's own cursor with binary results: through Django's, each of the thousands
    # of timestamps is read as text and parsed in Python (most of a pass's time).
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(RECENT_RUNS_SQL, [sorted(conference_pks), HISTORY_RUNS], binary=True)
        for conference_pk, *values in cursor.fetchall():
            runs.setdefault(conference_pk, []).append(Run(*values))
    return runs


def find(rule, subscription, runs, now, expected):
    """Since when a held rule's condition holds: the start of the newest streak of runs
    where it does (the row says it holds now)."""
    holds = HELD[rule]
    since = None
    for run in runs:  # newest first: the current streak of runs where it holds
        if not holds(run):
            break
        since = run.first_seen_at
    if since is None:
        return Finding(holds=False)
    after = exact_duration_text(subscription.rule_after_seconds or 0)
    condition = {
        "not_started": f"still created {after} after it was first observed",
        "alone": f"exactly one active member for {after}",
        "all_held": f"the whole conference on hold for {after}",
        "all_muted": f"the whole conference muted for {after}",
    }[rule]
    clears = {
        "not_started": "the conference becomes active (or completes)",
        "alone": "a second member joins, or the conference ends",
        "all_held": "hold is turned off, or the conference ends",
        "all_muted": "mute is turned off, or the conference ends",
    }[rule]
    if rule == "not_started" and expected is not None and expected[0] > since:
        since = expected[0]
        condition = f"still created {after} after its expected start"
    return Finding(
        holds=True, since=since, episode=since.isoformat(), condition=condition, clears=clears
    )


def find_drop(percent, runs):
    """A fall of active members by at least `percent` % within a minute, while the
    conference stays active; it holds while the members stay at or below that level."""
    if percent <= 0:
        return Finding(holds=False)
    ordered = list(reversed(runs))  # oldest first
    drop = None
    for index, run in enumerate(ordered):
        members = run.active_members
        if run.state != ConferenceState.ACTIVE or members is None:
            drop = None
            continue
        if drop is not None and members > drop["threshold"]:
            drop = None
        if drop is not None:
            continue
        window_start = run.first_seen_at - DROP_WINDOW
        peak = None
        for earlier in reversed(ordered[:index]):  # back through the minute before
            if earlier.last_seen_at < window_start or earlier.state != ConferenceState.ACTIVE:
                break
            if earlier.active_members is not None:
                peak = max(peak or 0, earlier.active_members)
        if peak and members <= peak * (100 - percent) / 100:
            threshold = int(peak * (100 - percent) // 100)
            drop = {"since": run.first_seen_at, "peak": peak, "to": members}
            drop["threshold"] = threshold
    if drop is None:
        return Finding(holds=False)
    return Finding(
        holds=True,
        since=drop["since"],
        episode=drop["since"].isoformat(),
        condition=(
            f"active members fell from {drop['peak']} to {drop['to']} within a minute "
            f"(a drop of at least {percent}%)"
        ),
        clears=f"more than {drop['threshold']} members are active again, or the conference ends",
        detail={"peak": drop["peak"], "to": drop["to"], "threshold": drop["threshold"]},
    )

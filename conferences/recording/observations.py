"""The one place an observation becomes stored status, history runs and poll errors.

An observation is what confwatch learnt about one conference at one moment: a status
(full, or partial when some fields are unknown), or a polling error. Polling rounds,
`poll_once` and Catapult's callbacks all record through `record()`, which applies
a batch of observations in one short transaction under the conferences' row locks and
returns what each one changed, for alerts and the timeline.

The rules, whoever observed:
- An observation older than the newest one already applied changes nothing (a poll's
  also when it is older than the newest poll, failed or not; a callback's only then).
- A completed conference never goes back: a later `created` or `active` changes nothing.
- A round's observation is written only while that round still holds its claim on the
  conference (its claim token): a round that lost its claim cannot overwrite anything.
- History is stored on change: a run of identical (state, active members, hold, mute)
  with when it was first and last seen. A run is extended only by an observation that
  saw every value of the run (a value the run never knew, None, needs no seeing); one
  that saw fewer leaves the run as it is.
- A field the observation did not see (the API left it out, or sent something that
  could not be parsed) keeps its last known value; the fields it could not parse are
  named in the conference's poll message.
- A polling error never changes the stored status: it is recorded as a run of identical
  errors and counted in `consecutive_failures`.
- What changed is also stored as events (in the same transaction), which alerts and the
  timeline read: the first status ever seen, each changed value, and the end of a
  polling problem that was reported. A problem is reported (a `polling_problem` event)
  by `problems.report_lasting_problems` once it lasted CONFWATCH_PROBLEM_AFTER_SECONDS.
- Locks: every writer locks the conference rows it needs in one statement in ascending
  pk order (lock_conferences: ORDER BY id FOR UPDATE) or skips locked ones (SKIP LOCKED),
  takes account rows in pk order and after its conferences (or, holding an account row,
  takes conferences only with SKIP LOCKED, as a claim does), so writers cannot deadlock.
- Members (a page of the members list, or a callback's member) are applied by
  conferences/recording/members.py in the same transaction: each member is checked against what is
  stored of it, so a callback's member counts even when the conference's values it came
  with are older than the stored ones. A callback never changes the poll bookkeeping.
"""

import dataclasses
import functools
import gc
import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from operator import attrgetter, ne
from uuid import UUID

import psycopg
from django.db import connection, transaction

from conferences.catapult import answers
from conferences.models import (
    Conference,
    ConferenceMembersRead,
    ConferenceState,
    Event,
    HistoryEntry,
    PollError,
)
from conferences.recording import bulk, history, members
from conferences.recording.history import DETAIL_FIELDS, STATUS_FIELDS

logger = logging.getLogger(__name__)

# The answers.Conference attribute of a detail field, where its name differs.
API_NAMES = {"catapult_tag": "tag"}

# The conference columns recording reads (attnames); it may change all but the first two.
ROW_FIELDS = [
    "id",
    "account_id",
    "claim_token",
    "claimed_until",
    "latest_history_id",
    *STATUS_FIELDS,
    *DETAIL_FIELDS,
    "last_changed_at",
    "state_since",
    "last_observed_at",
    "run_seen_at",
    "last_polled_at",
    "poll_status",
    "poll_error",
    "consecutive_failures",
    "next_poll_at",
    "problem_since",
    "problem_reported_at",
]
WRITTEN_FIELDS = ROW_FIELDS[2:]

# The fields an observation of a conference sees, and the answers.Conference
# attributes they come from.
SEEN_NAMES = STATUS_FIELDS + DETAIL_FIELDS


@functools.lru_cache(maxsize=256)
def seen_reader(unknown):
    """(names, getter) of the fields a conference read saw, given the attributes it left
    unknown: answers come in few shapes, so each shape is worked out once. The getter
    returns the conference's id first (so that it always returns a tuple)."""
    names = tuple(name for name in SEEN_NAMES if API_NAMES.get(name, name) not in unknown)
    return names, attrgetter("id", *(API_NAMES.get(name, name) for name in names))


@dataclass(slots=True)
class Observation:
    """What was seen of one conference at `observed_at`: `seen` holds only the fields
    that were observed (status and detail fields), or `error` says why nothing was.
    Treated as immutable (dataclasses.replace makes a changed copy); not frozen, as a
    frozen dataclass costs ten times more to create and a round creates thousands."""

    conference_pk: int
    observed_at: datetime
    seen: dict = field(default_factory=dict)
    error: answers.CatapultError | None = None
    problems: tuple[str, ...] = ()
    # Set by a polling round: written only while the round holds the claim, which the
    # write releases (unless kept: an abandoned request may still be in flight).
    claim_token: UUID | None = None
    keep_claim: bool = False
    # "poll", or "callback" for what Catapult reported.
    source: str = "poll"
    # Members seen (answers.Member): a page of the members list, or the one member of a
    # conference-member callback (conferences/recording/members.py applies them).
    members: tuple = ()
    # A polling round's read of one page of the members list (its error, if it failed),
    # and the next page to read (None: the list is done).
    members_read: bool = False
    members_next_page_url: str | None = None
    # The state as the API wrote it, when it is not one Catapult documents (the state
    # seen is then "unknown"): the poll message shows it.
    state_raw: str | None = None

    @property
    def only_members(self):
        """Says nothing of the conference's own status: members, or a failed members read."""
        return not self.seen and (self.members_read or (bool(self.members) and not self.error))

    @classmethod
    def of_conference(cls, conference_pk, result, *, observed_at, claim_token=None):
        """A status read from the API (an answers.Conference), partial where unknown."""
        names, read = seen_reader(result.unknown)
        seen = dict(zip(names, read(result)[1:], strict=True))
        return cls(
            conference_pk=conference_pk,
            observed_at=observed_at,
            seen=seen,
            problems=tuple(result.problems),
            claim_token=claim_token,
            state_raw=getattr(result, "state_raw", None),
        )

    @classmethod
    def of_failure(cls, conference_pk, error, *, observed_at, claim_token=None):
        return cls(conference_pk, observed_at, error=error, claim_token=claim_token)

    @classmethod
    def of_members_page(cls, conference_pk, page, *, observed_at, claim_token=None):
        """A page of the members list (a answers.MembersPage) read by a polling round."""
        return cls(
            conference_pk=conference_pk,
            observed_at=observed_at,
            members=tuple(page.members),
            members_read=True,
            members_next_page_url=page.next_page_url,
            problems=tuple(page.problems),
            claim_token=claim_token,
        )

    @classmethod
    def of_members_failure(cls, conference_pk, error, *, observed_at, claim_token=None):
        return cls(
            conference_pk,
            observed_at,
            error=error,
            members_read=True,
            claim_token=claim_token,
        )


@dataclass(slots=True)
class Outcome:
    """What recording one observation did. `changes` maps each status field that changed
    to (before, after); `first` marks the first status ever observed."""

    observation: Observation
    applied: bool = True
    ignored_because: str = ""
    first: bool = False
    changes: dict = field(default_factory=dict)
    new_run: bool = False
    poll_status_before: str = ""
    poll_status_after: str = ""
    events: list = field(default_factory=list)

    @property
    def changed(self):
        return bool(self.changes)


# Decides when a conference is polled next, given its locked row (a bulk.Row, already
# updated with the observation) and the observation; None keeps the current schedule.
Reschedule = Callable[[bulk.Row, Observation], datetime | None]


def record(observations, *, reschedule: Reschedule | None = None):
    """Apply observations in one transaction; return one Outcome per observation, in the
    order given. Observations of one conference are applied oldest first."""
    outcomes = [Outcome(observation) for observation in observations]
    if not outcomes:
        return outcomes
    with collector_paused(), transaction.atomic():
        rows = lock_conferences({o.conference_pk for o in observations})
        stored = [rows.columns[name] for name in WRITTEN_FIELDS]  # as read
        error_runs = history.latest_error_runs(
            [rows[o.conference_pk] for o in observations if o.error and o.conference_pk in rows]
        )
        member_writes = members.load(observations)
        runs = history.RunWrites()
        # A round's observations share one claim token: spelt out once.
        tokens = {token: str(token) for token in {o.claim_token for o in observations} if token}
        touched, released, kept = set(), set(), set()
        events = []
        new_errors, extended_errors = [], {}
        for outcome in sorted(outcomes, key=lambda outcome: outcome.observation.observed_at):
            observation = outcome.observation
            row = rows.get(observation.conference_pk)
            reason = why_ignored(row, observation, tokens)
            if reason == OLDER and observation.members:
                # The conference's values are out of date; each member is checked on its own.
                observation = dataclasses.replace(observation, seen={})
            elif reason == OLDER and overtaken_by_a_callback(row, observation):
                observation = after_the_callback(row, observation)
            elif reason:
                outcome.applied, outcome.ignored_because = False, reason
                if reason in (OLDER, OUT_OF_ORDER) and observation.claim_token is not None:
                    released.add(row.pk)  # the round held it: others may poll it now
                    touched.add(row.pk)
                continue
            outcome.poll_status_before = row.poll_status
            if observation.only_members:
                if observation.error is None:
                    outcome.events = members.apply_members(row, observation, member_writes)
                else:
                    logger.info("members read of %s failed: %s", row.pk, observation.error)
                if observation.members_read:
                    members.schedule_after_read(row, observation, member_writes)
            elif observation.error is None:
                history.apply_status(row, observation, outcome, runs)
                members.schedule_after_status(row, outcome, member_writes)
                if observation.members:
                    outcome.events += members.apply_members(row, observation, member_writes)
            else:
                previous = error_runs.get(row.pk)
                error_run = history.apply_error(row, previous, observation)
                if error_run is not previous:
                    new_errors.append(error_run)
                    error_runs[row.pk] = error_run
                elif error_run.pk is not None:
                    extended_errors[error_run.pk] = error_run
            outcome.poll_status_after = row.poll_status
            # Claims are released once every observation of the round was applied: a
            # round may have read a conference and its members.
            if observation.claim_token is not None:
                (kept if observation.keep_claim else released).add(row.pk)
            events.extend(outcome.events)
            if reschedule is not None:
                next_poll_at = reschedule(row, observation)
                if next_poll_at is not None:
                    row.next_poll_at = next_poll_at
            touched.add(row.pk)

        for pk in released - kept:
            rows[pk].claim_token = rows[pk].claimed_until = None
        member_writes.save()
        runs.save()
        Event.objects.bulk_create(events)
        PollError.objects.bulk_create(new_errors)
        bulk.update_rows(PollError, list(extended_errors.values()), ["last_seen_at", "occurrences"])
        for pk, run in runs.started.items():
            rows[pk].latest_history_id = run.pk  # bulk_create filled in the new runs' keys
        # One UPDATE of the columns that changed in any row, compared column by column
        # (a row whose value did not change writes it again, under its lock).
        written = [row for pk, row in rows.items() if pk in touched]  # in pk order
        if len(written) < len(rows):
            was_touched = [pk in touched for pk in rows]
            stored = [tuple(compress(column, was_touched)) for column in stored]
        after = written_columns(written)
        changed = compress(WRITTEN_FIELDS, map(ne, after, stored))
        bulk.update_rows(Conference, written, list(changed))
    return outcomes


@contextmanager
def collector_paused():
    """No garbage collector pass inside: a write holds the conferences' row locks, and a
    batch's thousands of objects set off passes (gen-2 passes of 10-40 ms in a write of
    2,000 observations) that find nothing to free, as these objects hold no cycles.
    Passes resume after; nested use leaves the collector as the outermost found it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


WRITTEN_GETTERS = [attrgetter(name) for name in WRITTEN_FIELDS]


def written_columns(rows):
    """The values of each written field over the rows (one tuple per field, rows in the
    order given): comparing whole columns costs far less than comparing row by row."""
    return [tuple(map(getter, rows)) for getter in WRITTEN_GETTERS]


def lock_conferences(pks):
    """The conferences' current rows, locked until the transaction ends (in pk order, so
    that concurrent writers cannot deadlock), each with its latest run's values
    (run_<name>) and its members read (read_<name>, all None when it has none). The
    claim token comes as text: a round compares thousands of them, and UUID objects
    cost more to make and compare.

    The rows are locked first and read after, in a statement of their own: a statement
    that waits for a row lock returns the row as the writer before it left it, but the
    rows it joins as they were when it started (Postgres' READ COMMITTED), so a writer
    that waited took a conference the writer before had just observed first for one
    never observed (a second first_observed), and compared with the run before the
    latest (make bench-desk: a duplicated "created")."""
    pks = list(pks)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(LOCK_SQL, [pks], binary=True)
    quote = connection.ops.quote_name
    conference = [f"c.{quote(Conference._meta.get_field(name).column)}" for name in ROW_FIELDS]
    conference[ROW_FIELDS.index("claim_token")] += "::text"
    run = [f"h.{quote(name)}" for name in history.RUN_COLUMNS]
    read = [f"r.{quote(name)}" for name in members.READ_COLUMNS]
    sql = (
        f"SELECT {', '.join(conference + run + read)} "
        f"FROM {quote(Conference._meta.db_table)} AS c "
        f"LEFT JOIN {quote(HistoryEntry._meta.db_table)} AS h ON h.id = c.latest_history_id "
        f"LEFT JOIN {quote(ConferenceMembersRead._meta.db_table)} AS r "
        "ON r.conference_id = c.id "
        "WHERE c.id = ANY(%b::bigint[]) ORDER BY c.id"
    )
    names = [*ROW_FIELDS, *(f"run_{name}" for name in history.RUN_COLUMNS)]
    names += [f"read_{name}" for name in members.READ_COLUMNS]
    return bulk.fetch_rows(sql, [pks], names)


LOCK_SQL = (
    "SELECT id FROM conferences_conference WHERE id = ANY(%b::bigint[]) ORDER BY id FOR UPDATE"
)


def why_ignored(row, observation, tokens):
    """Why the observation changes nothing, or "". `tokens` spells each claim token of
    the batch as text, as the locked rows hold it."""
    if row is None:
        return "no longer tracked"
    token = observation.claim_token
    if token is not None and row.claim_token != tokens[token]:
        return "the round no longer holds its claim"
    if observation.only_members:
        return ""  # each member is checked against what is stored of it
    observed, polled = row.last_observed_at, row.last_polled_at
    if observed is not None and observation.observed_at < observed:
        return OLDER
    # A poll is also ordered after the newest poll, failed or not (the poll bookkeeping);
    # a callback only after the newest successful observation.
    if observation.source == "poll" and polled is not None and observation.observed_at < polled:
        return OLDER
    # A completed conference never goes back (a late `created` or `active` callback).
    if row.state == ConferenceState.COMPLETED and observation.seen.get("state") in GOING_BACK:
        return OUT_OF_ORDER
    return ""


OLDER = "older than what is stored"
OUT_OF_ORDER = "the conference has completed; it does not go back"
GOING_BACK = (ConferenceState.CREATED, ConferenceState.ACTIVE)


def overtaken_by_a_callback(row, observation):
    """Whether a poll's status read is older only than a callback applied while its
    request was on its way (it is newer than the last poll)."""
    if observation.source != "poll" or observation.error is not None or not observation.seen:
        return False
    return row.last_polled_at is None or observation.observed_at >= row.last_polled_at


# How far on each state is: a conference only moves on (created, active, completed).
STATE_ORDER = {ConferenceState.CREATED: 0, ConferenceState.ACTIVE: 1, ConferenceState.COMPLETED: 2}


def after_the_callback(row, observation):
    """A poll's read that a callback overtook, as it may still be applied: at the
    callback's time, with what no callback tells (a state further on than the stored one,
    which it still is at the callback's time, since a conference only moves on; hold,
    mute and the details), without its member count (the callback's is newer).

    Ignoring the read, as before, left the conference claimed until its claim lapsed and
    unpolled: under a busy hour's member callbacks (make bench-desk), conferences of the
    calling accounts went 20-57 s without a recorded poll."""
    seen = dict(observation.seen)
    seen.pop("active_members", None)
    state = seen.get("state")
    if row.state is not None and STATE_ORDER.get(state, -1) <= STATE_ORDER.get(row.state, 3):
        seen.pop("state", None)
    return dataclasses.replace(observation, observed_at=row.last_observed_at, seen=seen)

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
from datetime import datetime, timedelta
from itertools import compress
from operator import attrgetter, itemgetter, ne
from uuid import UUID

from django.db import connection, transaction

from conferences.catapult import answers
from conferences.models import (
    Conference,
    ConferenceMembersRead,
    ConferenceState,
    Event,
    EventKind,
    HistoryEntry,
    PollError,
    PollStatus,
)
from conferences.recording import bulk, members
from conferences.text import iso

logger = logging.getLogger(__name__)

# The values a history run is made of.
STATUS_FIELDS = ("state", "active_members", "hold", "mute")
# Descriptive fields kept on the conference row, not in history.
DETAIL_FIELDS = (
    "from_number",
    "created_time",
    "completed_time",
    "callback_url",
    "catapult_tag",
    "profile",
    "callback_http_method",
    "callback_timeout",
    "fallback_url",
)
# A conference's own times are kept to the second: its read gives whole seconds and its
# callbacks milliseconds (docs/catapult-api.md §5.3), and both must store the same value.
WHOLE_SECONDS = ("created_time", "completed_time")
# The answers.Conference attribute of a detail field, where its name differs.
API_NAMES = {"catapult_tag": "tag"}

# An open history run's last_seen_at is written at most this often (seconds); meanwhile
# the conference row's run_seen_at holds the exact time (Conference.run_last_seen).
RUN_REFRESH = 60.0

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


# The event kind of a change of each status field.
CHANGE_KINDS = {
    "state": EventKind.STATE_CHANGED,
    "active_members": EventKind.MEMBERS_CHANGED,
    "hold": EventKind.HOLD_CHANGED,
    "mute": EventKind.MUTE_CHANGED,
}


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
        error_runs = latest_error_runs(
            [rows[o.conference_pk] for o in observations if o.error and o.conference_pk in rows]
        )
        member_writes = members.load(observations)
        runs = RunWrites()
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
            elif reason:
                outcome.applied, outcome.ignored_because = False, reason
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
                apply_status(row, observation, outcome, runs)
                members.schedule_after_status(row, outcome, member_writes)
                if observation.members:
                    outcome.events += members.apply_members(row, observation, member_writes)
            else:
                previous = error_runs.get(row.pk)
                error_run = apply_error(row, previous, observation)
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


# A locked row also carries its latest history run's values (attributes run_<name>).
RUN_COLUMNS = ("id", *STATUS_FIELDS, "last_seen_at")
run_values = attrgetter(*(f"run_{name}" for name in STATUS_FIELDS))
STATUS_SET = frozenset(STATUS_FIELDS)
seen_status = itemgetter(*STATUS_FIELDS)
ERROR_RUN_FIELDS = ["id", "conference_id", "poll_status", "last_seen_at", "occurrences"]


def lock_conferences(pks):
    """The conferences' current rows, locked until the transaction ends (in pk order, so
    that concurrent writers cannot deadlock), each with its latest run's values
    (run_<name>) and its members read (read_<name>, all None when it has none). The
    claim token comes as text: a round compares thousands of them, and UUID objects
    cost more to make and compare."""
    quote = connection.ops.quote_name
    conference = [f"c.{quote(Conference._meta.get_field(name).column)}" for name in ROW_FIELDS]
    conference[ROW_FIELDS.index("claim_token")] += "::text"
    run = [f"h.{quote(name)}" for name in RUN_COLUMNS]
    read = [f"r.{quote(name)}" for name in members.READ_COLUMNS]
    sql = (
        f"SELECT {', '.join(conference + run + read)} "
        f"FROM {quote(Conference._meta.db_table)} AS c "
        f"LEFT JOIN {quote(HistoryEntry._meta.db_table)} AS h ON h.id = c.latest_history_id "
        f"LEFT JOIN {quote(ConferenceMembersRead._meta.db_table)} AS r "
        "ON r.conference_id = c.id "
        "WHERE c.id = ANY(%b::bigint[]) ORDER BY c.id FOR UPDATE OF c"
    )
    names = [*ROW_FIELDS, *(f"run_{name}" for name in RUN_COLUMNS)]
    names += [f"read_{name}" for name in members.READ_COLUMNS]
    return bulk.fetch_rows(sql, [list(pks)], names)


class RunWrites:
    """The history runs a batch writes: new runs, and stored runs whose last_seen_at
    moves. The row's run_* attributes follow its current run, new or stored."""

    def __init__(self):
        self.new = []
        self.started = {}  # conference pk -> its newest new run
        self.moved = {}  # stored run pk -> bulk.Row(id, last_seen_at)

    def start(self, row, at, after):
        run = HistoryEntry(conference_id=row.pk, first_seen_at=at, last_seen_at=at, **after)
        self.new.append(run)
        self.started[row.pk] = run
        row.run_id = None
        row.run_state, row.run_active_members, row.run_hold, row.run_mute = after.values()
        row.run_last_seen_at = at

    def settle(self, row, seen_at):
        """Bring the current run's last_seen_at up to seen_at (if later)."""
        if seen_at is None or seen_at <= row.run_last_seen_at:
            return
        row.run_last_seen_at = seen_at
        run = self.started.get(row.pk)
        if run is not None:
            run.last_seen_at = seen_at
        else:
            self.moved[row.run_id] = bulk.Row(id=row.run_id, last_seen_at=seen_at)

    def save(self):
        HistoryEntry.objects.bulk_create(self.new)
        bulk.update_rows(HistoryEntry, list(self.moved.values()), ["last_seen_at"])


def latest_error_runs(rows):
    """The newest PollError run of each conference that is failing now."""
    pks = [row.pk for row in rows if row.poll_status not in (PollStatus.OK, PollStatus.PENDING)]
    if not pks:
        return {}
    runs = (
        PollError.objects.filter(conference_id__in=pks)
        .order_by("conference_id", "-first_seen_at")
        .distinct("conference_id")
        .values(*ERROR_RUN_FIELDS)
    )
    return {run["conference_id"]: bulk.Row(**run) for run in runs}


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
RUN_REFRESH_AFTER = timedelta(seconds=RUN_REFRESH)


def apply_status(row, observation, outcome, runs):
    """Apply a status to the locked row and its history runs (RunWrites)."""
    seen = observation.seen
    at = observation.observed_at
    before = run_values(row)
    if STATUS_SET <= seen.keys():
        after, saw_run = seen_status(seen), True
    else:
        pairs = zip(STATUS_FIELDS, before, strict=True)
        after = tuple(seen.get(name, old) for name, old in pairs)
        saw_run = saw_whole_run(seen, before)
    first = row.run_id is None and row.pk not in runs.started
    if first or after != before:
        before = dict(zip(STATUS_FIELDS, before, strict=True))
        after = dict(zip(STATUS_FIELDS, after, strict=True))
        outcome.first = first
        outcome.changes = {
            name: (before[name], after[name])
            for name in STATUS_FIELDS
            if before[name] != after[name]
        }
        outcome.events = status_events(row, observation, before, after, outcome)
        if not first:
            # The run ends: its last_seen_at becomes the last observation that saw it.
            runs.settle(row, row.run_seen_at)
        runs.start(row, at, after)
        row.run_seen_at = at
        outcome.new_run = True
        row.last_changed_at = at
        if first or "state" in outcome.changes:
            row.state_since = at  # after status_events read the previous state's
        after = tuple(after.values())
    else:
        if row.problem_reported_at is not None and observation.source == "poll":
            outcome.events = status_events(row, observation, None, None, outcome)
        if saw_run:
            row.run_seen_at = max(row.run_seen_at or at, at)
            if row.run_seen_at - row.run_last_seen_at >= RUN_REFRESH_AFTER:
                runs.settle(row, row.run_seen_at)
    row.state, row.active_members, row.hold, row.mute = after
    for name in DETAIL_FIELDS:
        if name in seen:
            setattr(row, name, seen[name])
    for name in WHOLE_SECONDS:
        if name in seen and seen[name] is not None:
            setattr(row, name, seen[name].replace(microsecond=0))
    row.last_observed_at = at
    if observation.source == "poll":
        # A callback says nothing of whether polling works.
        row.last_polled_at = at
        row.problem_since = row.problem_reported_at = None
        row.poll_status = PollStatus.OK
        row.poll_error = poll_message_for(observation.problems, observation.state_raw)
        row.consecutive_failures = 0


def saw_whole_run(seen, values):
    """Whether an observation saw every value of the run again (a value the run never
    knew, None, needs no seeing): only such an observation extends the run."""
    pairs = zip(STATUS_FIELDS, values, strict=True)
    return all(name in seen or value is None for name, value in pairs)


def status_events(row, observation, before, after, outcome):
    """The events of applying a status to the row (before the row is updated): the first
    status, each changed value, and the end of a reported polling problem."""
    found = []
    if outcome.first:
        found.append(
            status_event(
                row, observation, EventKind.FIRST_OBSERVED, after=after["state"], detail=after
            )
        )
    else:
        for name, (old, new) in outcome.changes.items():
            detail = {"active_members": after["active_members"], "state": after["state"]}
            if name == "state":
                detail["previous_state_since"] = iso(row.state_since)
            found.append(
                status_event(
                    row, observation, CHANGE_KINDS[name], before=old, after=new, detail=detail
                )
            )
    if row.problem_reported_at is not None and observation.source == "poll":
        detail = {"poll_status": row.poll_status, "since": iso(row.problem_since)}
        found.append(
            status_event(
                row,
                observation,
                EventKind.POLLING_RECOVERED,
                before=row.poll_status,
                after="ok",
                detail=detail,
            )
        )
    return found


def status_event(row, observation, kind, **values):
    return Event(
        kind=kind,
        account_id=row.account_id,
        conference_id=row.pk,
        occurred_at=observation.observed_at,
        previous_observed_at=row.last_observed_at,
        source=observation.source,
        **values,
    )


# Most characters of an undocumented state quoted in a poll message.
MAX_STATE_QUOTED = 60


def poll_message_for(problems, state_raw=None):
    """The poll message of a status read: an undocumented state as the API wrote it
    (stored as "unknown"), and the fields it left unknown."""
    parts = []
    if state_raw is not None:
        parts.append(f"state not documented by Catapult: {str(state_raw)[:MAX_STATE_QUOTED]!r}")
    if problems:
        parts.append("Read with fields left unknown: " + "; ".join(problems))
    return "; ".join(parts)


def apply_error(row, error_run, observation):
    """Record a polling error on the locked row; return the error run to write."""
    error = observation.error
    status = getattr(error, "poll_status", PollStatus.API_ERROR)
    message = str(error)
    at = observation.observed_at
    if error_run is not None and row.poll_status == status and row.poll_error == message:
        error_run.last_seen_at = max(error_run.last_seen_at, at)
        error_run.occurrences += 1
    else:
        error_run = PollError(
            conference_id=row.pk,
            poll_status=status,
            message=message,
            first_seen_at=at,
            last_seen_at=at,
        )
    if row.problem_since is None:
        row.problem_since = at
    row.poll_status = status
    row.poll_error = message
    row.consecutive_failures += 1
    row.last_polled_at = at
    return error_run

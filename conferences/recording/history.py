"""A conference's history as recording writes it (observations.record applies each
observation through here): the status fields a history run is made of, the runs started
and extended (RunWrites), the events of a change, and the runs of identical polling
errors (PollError).

A run of identical (state, active members, hold, mute) is extended only by an
observation that saw every value of the run (a value the run never knew, None, needs no
seeing); one that saw fewer leaves the run as it is. A polling error never changes the
stored status: it is recorded as a run of identical errors and counted in
`consecutive_failures`.
"""

from datetime import timedelta
from operator import attrgetter, itemgetter

from conferences.models import Event, EventKind, HistoryEntry, PollError, PollStatus
from conferences.recording import bulk
from conferences.text import iso

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
# A conference's own times: its read gives whole seconds, its callbacks milliseconds
# (docs/catapult-api.md §5.3). The milliseconds are kept: a time to the second never
# replaces the same time stored to the millisecond, whichever was seen first.
EXACT_TIMES = ("created_time", "completed_time")

# An open history run's last_seen_at is written at most this often (seconds); meanwhile
# the conference row's run_seen_at holds the exact time (Conference.run_last_seen).
RUN_REFRESH = 60.0

# The event kind of a change of each status field.
CHANGE_KINDS = {
    "state": EventKind.STATE_CHANGED,
    "active_members": EventKind.MEMBERS_CHANGED,
    "hold": EventKind.HOLD_CHANGED,
    "mute": EventKind.MUTE_CHANGED,
}


# A locked row also carries its latest history run's values (attributes run_<name>).
RUN_COLUMNS = ("id", *STATUS_FIELDS, "last_seen_at")
run_values = attrgetter(*(f"run_{name}" for name in STATUS_FIELDS))
STATUS_SET = frozenset(STATUS_FIELDS)
seen_status = itemgetter(*STATUS_FIELDS)
ERROR_RUN_FIELDS = ["id", "conference_id", "poll_status", "last_seen_at", "occurrences"]


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
            setattr(row, name, most_exact(getattr(row, name), seen[name], name=name))
    row.last_observed_at = at
    if observation.source == "poll":
        # A callback says nothing of whether polling works.
        row.last_polled_at = at
        row.problem_since = row.problem_reported_at = None
        row.poll_status = PollStatus.OK
        row.poll_error = poll_message_for(observation.problems, observation.state_raw)
        row.consecutive_failures = 0


def most_exact(stored, seen, *, name):
    """The value of a detail field after an observation saw `seen`: the stored time when
    `seen` is the same time to the second only (EXACT_TIMES), else `seen`."""
    if name in EXACT_TIMES and stored is not None and seen is not None and not seen.microsecond:
        if stored.microsecond and stored.replace(microsecond=0) == seen:
            return stored
    return seen


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

"""The conference page's timeline: what happened to one conference, newest first.

Entries come from several sources, merged here and nowhere else. Each source (SOURCES)
gives its own entries newest first, older than a cursor; a page takes the newest
PAGE_SIZE of them all, and its "older" cursor (time, source, id of its last entry) leads
to the next page, down to the oldest entry, at the cost of one small indexed query per
source whatever the page.

- changes: the history runs, each one the change from the run before it (or the first
  observation), lasting until the next run started (the newest one: so far);
- problems: the PollError runs, each a run of identical polling errors, with how long it
  lasted and how many polls failed;
- events: recorded events of EVENT_KINDS: polling recovered, members joining, leaving,
  put on hold or muted (conferences/recording/members.py), and acknowledgements.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from conferences.models import EventKind, PollStatus
from conferences.recording import members
from conferences.text import duration_text, local_text, parse_time

PAGE_SIZE = 50
MEMBER_KINDS = [
    EventKind.MEMBER_JOINED,
    EventKind.MEMBER_LEFT,
    EventKind.MEMBER_HOLD_CHANGED,
    EventKind.MEMBER_MUTE_CHANGED,
]
EVENT_KINDS = [EventKind.POLLING_RECOVERED, EventKind.ACKNOWLEDGED, *MEMBER_KINDS]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUS_NAMES = {"state": "state", "active_members": "members", "hold": "hold", "mute": "mute"}


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the time, source (its index in SOURCES) and id of its last
    entry. Written in URLs as `microseconds-source-id`."""

    at: datetime
    rank: int
    id: int

    def token(self):
        return f"{(self.at - EPOCH) // timedelta(microseconds=1)}-{self.rank}-{self.id}"

    @classmethod
    def parse(cls, text):
        parts = text.split("-")
        if len(parts) != 3 or not all(part.isdigit() and len(part) < 20 for part in parts):
            raise BadCursor(f"Bad timeline position {text!r}.")
        micros, rank, pk = (int(part) for part in parts)
        if rank >= len(SOURCES):
            raise BadCursor(f"Bad timeline position {text!r}.")
        try:
            at = EPOCH + timedelta(microseconds=micros)
        except OverflowError as error:
            raise BadCursor(f"Bad timeline position {text!r}.") from error
        return cls(at, rank, pk)


@dataclass
class Entry:
    at: datetime
    rank: int
    id: int
    # "first", "change", "problem" or "recovered" (the page's CSS class).
    kind: str
    title: str
    # (what, before, after) of a change, as shown.
    changes: list = field(default_factory=list)
    detail: str = ""
    # How long what the entry started lasted, and whether it still does.
    duration: timedelta | None = None
    ongoing: bool = False

    @property
    def key(self):
        return (self.at, self.rank, self.id)

    @property
    def local_at(self):
        return timezone.localtime(self.at)

    @property
    def is_polling(self):
        return self.kind in ("problem", "recovered")

    @property
    def duration_shown(self):
        if self.duration is None:
            return ""
        text = duration_text(self.duration)
        return f"{text} so far" if self.ongoing else text


@dataclass
class Page:
    entries: list
    older: str | None
    first: bool


def timeline_page(conference, *, before=None, size=PAGE_SIZE, now=None):
    """The page of entries older than `before` (a Cursor; None: the newest)."""
    now = now or timezone.now()
    found = []
    for rank, source in enumerate(SOURCES):
        found += source(conference, rank=rank, before=before, limit=size + 1, now=now)
    found.sort(key=lambda entry: entry.key, reverse=True)
    entries = found[:size]
    older = None
    if len(found) > size:
        last = entries[-1]
        older = Cursor(last.at, last.rank, last.id).token()
    return Page(entries, older, first=before is None)


def older_than(before, rank, time_field):
    """The rows of source `rank` that come after the cursor in the timeline's order
    (time, source, id), newest first."""
    if before is None:
        return Q()
    earlier = Q(**{f"{time_field}__lt": before.at})
    same_time = Q(**{time_field: before.at})
    if rank < before.rank:
        return earlier | same_time
    if rank == before.rank:
        return earlier | (same_time & Q(id__lt=before.id))
    return earlier


RUN_COLUMNS = ("id", "first_seen_at", "last_seen_at", "state", "active_members", "hold", "mute")


def change_entries(conference, *, rank, before, limit, now):
    runs = list(
        conference.history.filter(older_than(before, rank, "first_seen_at"))
        .order_by("-first_seen_at", "-id")
        .values_list(*RUN_COLUMNS)[: limit + 1]
    )
    if not runs:
        return []
    newer = None
    if before is not None:
        pk, at = runs[0][0], runs[0][1]
        newer = (
            conference.history.filter(Q(first_seen_at__gt=at) | Q(first_seen_at=at, id__gt=pk))
            .order_by("first_seen_at", "id")
            .values_list("first_seen_at", flat=True)
            .first()
        )
    entries = []
    for index, run in enumerate(runs[:limit]):
        pk, first_seen, last_seen = run[:3]
        values = dict(zip(STATUS_NAMES, run[3:], strict=True))
        previous = runs[index + 1] if index + 1 < len(runs) else None
        ends = runs[index - 1][1] if index > 0 else newer
        entry = Entry(first_seen, rank, pk, "change", "Changed")
        if ends is not None:
            entry.duration = ends - first_seen
        elif values["state"] == "completed":
            entry.detail = "No longer polled."
        else:
            last_seen = conference.run_last_seen(pk, last_seen)
            entry.duration, entry.ongoing = last_seen - first_seen, True
            entry.detail = f"Last seen {local_text(last_seen)}."
        if previous is None:
            entry.kind, entry.title = "first", "First observed"
            entry.changes = [(STATUS_NAMES[n], "", shown(v)) for n, v in values.items()]
        else:
            before_values = dict(zip(STATUS_NAMES, previous[3:], strict=True))
            entry.changes = [
                (STATUS_NAMES[name], shown(before_values[name]), shown(value))
                for name, value in values.items()
                if before_values[name] != value
            ]
            changed = [what for what, _, _ in entry.changes]
            entry.title = (", ".join(changed) or "nothing").capitalize() + " changed"
        entries.append(entry)
    return entries


def problem_entries(conference, *, rank, before, limit, now):
    runs = conference.errors.filter(older_than(before, rank, "first_seen_at")).order_by(
        "-first_seen_at", "-id"
    )[:limit]
    failing = conference.poll_status not in (PollStatus.OK, PollStatus.PENDING)
    entries = []
    for run in runs:
        entry = Entry(
            run.first_seen_at,
            rank,
            run.pk,
            "problem",
            f"Polling problem: {run.get_poll_status_display()}",
            detail=run.message,
            duration=run.last_seen_at - run.first_seen_at,
            ongoing=failing and run.last_seen_at == conference.last_polled_at,
        )
        polls = "poll" if run.occurrences == 1 else "polls"
        entry.changes = [("failed", "", f"{run.occurrences} {polls}")]
        entries.append(entry)
    return entries


def event_entries(conference, *, rank, before, limit, now):
    events = conference.events.filter(
        older_than(before, rank, "occurred_at"), kind__in=EVENT_KINDS
    ).order_by("-occurred_at", "-id")[:limit]
    entries = []
    for event in events:
        entry = Entry(event.occurred_at, rank, event.pk, "event", event.get_kind_display())
        entry.changes = [("", shown(event.before), shown(event.after))]
        if event.kind == EventKind.POLLING_RECOVERED:
            entry.kind, entry.title = "recovered", "Polling recovered"
            since = parse_time(event.detail.get("since"))
            if since is not None:
                entry.detail = f"The problem lasted {duration_text(event.occurred_at - since)}."
        elif event.kind in MEMBER_KINDS:
            entry.kind, entry.title, entry.changes = "member", members.event_text(event), []
        elif event.kind == EventKind.ACKNOWLEDGED:
            entry.kind, entry.title = "acknowledged", f"Acknowledged by {event.detail.get('by')}"
            entry.changes = []
            entry.detail = event.detail.get("reason") or ""
        if event.source not in ("poll", "user") and event.kind not in MEMBER_KINDS:
            entry.detail = f"{entry.detail} Reported by {event.source}.".strip()
        entries.append(entry)
    return entries


SOURCES = [change_entries, problem_entries, event_entries]


def shown(value):
    """A status value as the page shows it."""
    if value is None:
        return "–"
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)

"""Conference members: how an observation of members (a page of the members list read by
a polling round, or one member from a `conference-member` callback) becomes stored
members and member events, and when each conference's members list is read next.

`observations.record` calls these helpers inside its transaction, under the conference's
row lock; nothing here writes on its own. The rules:
- A member is stored with its member id, call id (last path segment of `call`), state,
  hold, mute, and join and leave times as the API gave them. Departed members stay.
- A member observation older than what is stored of that member changes nothing.
- A value the observation did not see keeps its last known value; a change from or to
  an unknown value is no event. Join and leave times changing is no event either.
- Events: member_joined (a member first seen, or active again), member_left (a member
  seen completed that was not before), member_hold_changed, member_mute_changed. Each
  carries the previous observation of the member (`previous_observed_at`), so a change
  seen by polling is known to have happened in that interval.
- A callback's member without join or leave time gets the event's time for them.

Members reads (`ConferenceMembersRead`): a conference observed active gets a read due at
once, then every CONFWATCH_MEMBERS_INTERVAL while it stays active; a list that pages is
read one page per request, the next page due at once, up to CONFWATCH_MEMBERS_MAX_PAGES
pages: a longer list is read that far and no further (the read ends there, a warning is
logged, and the members beyond it stay unread); a conference observed completed gets one
last read.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from operator import attrgetter

from django.conf import settings
from django.db.models import Count, Q

from conferences.models import (
    ConferenceMembersRead,
    ConferenceState,
    Event,
    EventKind,
    Member,
)
from conferences.recording import bulk
from conferences.text import hold_mute_text, iso

MEMBER_VALUES = ("state", "hold", "mute", "call_id")
MEMBER_UPDATED_FIELDS = [
    *MEMBER_VALUES,
    "joined_at",
    "left_at",
    "last_seen_at",
    "last_changed_at",
]
READ_FIELDS = ["due_at", "next_page_url", "final", "read_at", "pages"]
# A members read's columns as the locked conference rows carry them (observations.py).
READ_COLUMNS = ("conference_id", *READ_FIELDS)
read_values = attrgetter(*(f"read_{name}" for name in READ_COLUMNS))
# Most members a conference page shows.
MAX_MEMBERS_SHOWN = 500
# Most rows a search by call id returns.
MAX_CALL_ROWS = 200

logger = logging.getLogger(__name__)


@dataclass
class MemberWrites:
    """What recording a batch of observations does to members and reads."""

    known: dict = field(default_factory=dict)  # (conference pk, member id) -> Member
    new: list = field(default_factory=list)
    updated: dict = field(default_factory=dict)  # Member pk -> Member
    reads: dict = field(default_factory=dict)  # conference pk -> ConferenceMembersRead
    new_reads: set = field(default_factory=set)
    changed_reads: set = field(default_factory=set)

    def read_of(self, row):
        """The conference's members read (None: it has none yet), made at first use from
        what came with its locked row (read_<name>)."""
        read = self.reads.get(row.pk)
        if read is None and row.read_conference_id is not None:
            read = bulk.Row(**dict(zip(READ_COLUMNS, read_values(row), strict=True)))
            self.reads[row.pk] = read
        return read

    def save(self):
        Member.objects.bulk_create(self.new)
        bulk.update_rows(Member, list(self.updated.values()), MEMBER_UPDATED_FIELDS)
        ConferenceMembersRead.objects.bulk_create(
            [self.reads[pk] for pk in self.new_reads], ignore_conflicts=True
        )
        changed = [self.reads[pk] for pk in self.changed_reads - self.new_reads]
        bulk.update_rows(ConferenceMembersRead, changed, READ_FIELDS)


def load(observations):
    """The stored members the observations are about, for `record` to work on (the
    members reads come with the locked conference rows: MemberWrites.read_of)."""
    writes = MemberWrites()
    with_members = {o.conference_pk for o in observations if o.members}
    if with_members:
        # All members of those conferences (a few dozen each at most): one indexed query.
        for member in Member.objects.filter(conference_id__in=with_members):
            writes.known[(member.conference_id, member.member_id)] = member
    return writes


def apply_members(row, observation, writes):
    """Apply the members of one observation to the locked conference row; return the
    member events."""
    at = observation.observed_at
    events = []
    read = writes.read_of(row)
    for seen in observation.members:
        key = (row.pk, seen.id)
        stored = writes.known.get(key)
        if stored is not None and stored.last_seen_at > at:
            continue  # older than what is stored of this member
        values = {name: getattr(seen, name) for name in MEMBER_VALUES if name not in seen.unknown}
        joined_at = seen.added_time if "added_time" not in seen.unknown else None
        left_at = seen.removed_time if "removed_time" not in seen.unknown else None
        if stored is None:
            previous_at = read.read_at if read is not None and observation.members_read else None
            member = Member(
                conference_id=row.pk,
                member_id=seen.id,
                first_seen_at=at,
                last_seen_at=at,
                last_changed_at=at,
                **{name: values.get(name) for name in MEMBER_VALUES},
                joined_at=joined_at,
                left_at=left_at,
            )
            fill_times_from_callback(member, observation)
            writes.new.append(member)
            writes.known[key] = member
            events.append(
                member_event(row, member, EventKind.MEMBER_JOINED, observation, previous_at)
            )
            if member.state == ConferenceState.COMPLETED:
                events.append(
                    member_event(row, member, EventKind.MEMBER_LEFT, observation, previous_at)
                )
            continue
        previous_at = stored.last_seen_at
        before = {name: getattr(stored, name) for name in MEMBER_VALUES}
        for name, value in values.items():
            setattr(stored, name, value)
        if joined_at is not None:
            stored.joined_at = joined_at
        if left_at is not None:
            stored.left_at = left_at
        fill_times_from_callback(stored, observation)
        changed = [name for name in MEMBER_VALUES if before[name] != getattr(stored, name)]
        if changed:
            stored.last_changed_at = at
        stored.last_seen_at = at
        was_present = before["state"] is not None and before["state"] != ConferenceState.COMPLETED
        if "state" in changed and stored.state == ConferenceState.COMPLETED:
            events.append(
                member_event(row, stored, EventKind.MEMBER_LEFT, observation, previous_at)
            )
        elif "state" in changed and stored.state == ConferenceState.ACTIVE and not was_present:
            events.append(
                member_event(row, stored, EventKind.MEMBER_JOINED, observation, previous_at)
            )
        for name, kind in (
            ("hold", EventKind.MEMBER_HOLD_CHANGED),
            ("mute", EventKind.MEMBER_MUTE_CHANGED),
        ):
            if name in changed and before[name] is not None and getattr(stored, name) is not None:
                events.append(
                    member_event(row, stored, kind, observation, previous_at, before=before[name])
                )
        if stored.pk is not None:
            writes.updated[stored.pk] = stored
    return events


def fill_times_from_callback(member, observation):
    """A callback's member carries no join or leave time: the event's time is the best
    there is (a later members read replaces it with the API's own)."""
    if observation.source != "callback":
        return
    if member.joined_at is None and member.state == ConferenceState.ACTIVE:
        member.joined_at = observation.observed_at
    if member.left_at is None and member.state == ConferenceState.COMPLETED:
        member.left_at = observation.observed_at


def member_event(row, member, kind, observation, previous_at, *, before=None):
    after = {
        EventKind.MEMBER_JOINED: "joined",
        EventKind.MEMBER_LEFT: "left",
        EventKind.MEMBER_HOLD_CHANGED: member.hold,
        EventKind.MEMBER_MUTE_CHANGED: member.mute,
    }[kind]
    if kind == EventKind.MEMBER_LEFT:
        before = "present"
    return Event(
        kind=kind,
        account_id=row.account_id,
        conference_id=row.pk,
        occurred_at=observation.observed_at,
        previous_observed_at=previous_at,
        before=before,
        after=after,
        detail=member_detail(member),
        source=observation.source,
    )


def member_detail(member):
    return {
        "member_id": member.member_id,
        "call_id": member.call_id,
        "state": member.state,
        "hold": member.hold,
        "mute": member.mute,
        "joined_at": iso(member.joined_at),
        "left_at": iso(member.left_at),
    }


# --------------------------------------------------------------------------- reads


def read_for(row, writes):
    """The conference's members read, new if it has none."""
    read = writes.read_of(row)
    if read is None:
        read = ConferenceMembersRead(conference_id=row.pk)
        writes.reads[row.pk] = read
        writes.new_reads.add(row.pk)
    return read


def schedule_after_status(row, outcome, writes):
    """After a status was applied: an active conference with no read planned gets one due
    at once; a conference that just completed gets one last read (unless all it was ever
    seen as is "created")."""
    at = outcome.observation.observed_at
    if row.state == ConferenceState.ACTIVE:
        read = writes.read_of(row)
        if read is None or (read.due_at is None and not read.final):
            read = read_for(row, writes)
            read.due_at = at
            writes.changed_reads.add(row.pk)
    elif row.state == ConferenceState.COMPLETED and "state" in outcome.changes:
        read = writes.read_of(row)
        # A conference seen only in "created" before had no members to read.
        if read is None and outcome.changes["state"][0] == ConferenceState.CREATED:
            return
        read = read_for(row, writes)
        if not read.final:
            read.final = True
            read.due_at = at
            read.next_page_url = ""
            writes.changed_reads.add(row.pk)


def schedule_after_read(row, observation, writes):
    """After a members page was read (or failed): the next page at once, else the next
    read after CONFWATCH_MEMBERS_INTERVAL while the conference is active; none after the
    final read."""
    at = observation.observed_at
    read = read_for(row, writes)
    writes.changed_reads.add(row.pk)
    interval = timedelta(seconds=settings.CONFWATCH_MEMBERS_INTERVAL)
    if observation.error is not None:
        read.next_page_url = ""
        read.due_at = None if read.final else at + interval
        return
    read.read_at = at
    read.pages = read.pages + 1 if read.next_page_url else 1
    if observation.members_next_page_url:
        if read.pages < settings.CONFWATCH_MEMBERS_MAX_PAGES:
            read.next_page_url = observation.members_next_page_url
            read.due_at = at
            return
        logger.warning(
            "members list of tracked conference %s is longer than %d pages; stopped after "
            "page %d (CONFWATCH_MEMBERS_MAX_PAGES): the members beyond it are not read",
            row.pk,
            settings.CONFWATCH_MEMBERS_MAX_PAGES,
            read.pages,
        )
    read.next_page_url = ""
    if read.final or row.state != ConferenceState.ACTIVE:
        read.due_at = None
    else:
        read.due_at = at + interval


# --------------------------------------------------------------------------- reading


def members_for_page(conference):
    """The conference's members for its page: present first (joined first), then the
    departed (left last first)."""
    members = list(conference.members.order_by("id")[:MAX_MEMBERS_SHOWN])
    present = sorted(
        (m for m in members if m.present), key=lambda m: (m.joined_at is None, m.joined_at)
    )
    departed = sorted(
        (m for m in members if not m.present),
        key=lambda m: (m.left_at is not None, m.left_at),
        reverse=True,
    )
    return present, departed


def page_context(conference, *, now):
    """What `templates/conferences/_members.html` and the status card need: the members,
    as of when (the last members read, else the newest member seen), and the hold and
    mute lines (conference-level and member-level told apart)."""
    present, departed = members_for_page(conference)
    counts = conference.members.exclude(state=ConferenceState.COMPLETED).aggregate(
        on_hold=Count("pk", filter=Q(hold=True)),
        muted=Count("pk", filter=Q(mute=True)),
    )
    read = ConferenceMembersRead.objects.filter(conference=conference).first()
    as_of = read.read_at if read is not None and read.read_at else None
    if as_of is None:
        as_of = max((m.last_seen_at for m in present + departed), default=None)
    known = as_of is not None
    return {
        "present": present,
        "departed": departed,
        "now": now,
        "members_as_of": as_of,
        "hold_text": hold_mute_text(
            "hold", conference=conference.hold, members=counts["on_hold"] if known else None
        ),
        "mute_text": hold_mute_text(
            "mute", conference=conference.mute, members=counts["muted"] if known else None
        ),
    }


def event_text(event):
    detail = event.detail or {}
    who = detail.get("call_id") or detail.get("member_id") or "a member"
    if event.kind == EventKind.MEMBER_JOINED:
        text = f"{who} joined"
    elif event.kind == EventKind.MEMBER_LEFT:
        text = f"{who} left"
    elif event.kind == EventKind.MEMBER_HOLD_CHANGED:
        text = f"{who} {'put on hold' if event.after else 'taken off hold'}"
    else:
        text = f"{who} {'muted' if event.after else 'unmuted'}"
    if event.source == "callback":
        text += " (reported by Catapult)"
    elif event.previous_observed_at is not None:
        text += f" (between {event.previous_observed_at:%H:%M:%S} and {event.occurred_at:%H:%M:%S})"
    return text


def calls_by_call_id(call_id):
    """Which tracked conferences a call was in, when, and for how long (None: unknown)."""
    members = (
        Member.objects.filter(call_id=call_id)
        .select_related("conference", "conference__account")
        .order_by("-joined_at", "-first_seen_at")[:MAX_CALL_ROWS]
    )
    return list(members)


def call_data(member):
    stayed = member.stayed
    return {
        "call_id": member.call_id,
        "member_id": member.member_id,
        "conference_id": member.conference.conference_id,
        "account": member.conference.account.name,
        "state": member.state,
        "hold": member.hold,
        "mute": member.mute,
        "joined_at": iso(member.joined_at),
        "left_at": iso(member.left_at),
        "duration_seconds": stayed.total_seconds() if stayed is not None else None,
    }

"""Claiming a round's work: each account's due conferences and members reads that fit its
request budget, claimed with a token and given a send window.

The request budget (requests per second per Catapult account) is the scarce resource.
Each account keeps one pointer, `budget_next_at`: the end of the last reserved stretch of
its budget. A round reserves, in one short transaction under the account's row lock, a
window of `n` send slots after that pointer for the `n` conferences it claims, and sends
each request in its slot (dispatch.py): never before it, never after the window closes
(what is left then reserves a new window, in one more transaction), and never closer to
the one before than budget.catch_up_gap, when requests that left late catch up with their
slots. Several workers therefore never share a slot, no second holds more requests than
the budget, and a round that starts late still spends its window instead of losing it.

A round holds what it claimed with a claim token until a deadline: requests that did
not get an answer by then are abandoned and recorded as such (never as a change); only
the round holding the token may write a result or release the claim, and a dead
worker's claims lapse shortly after its deadline.

Fair priority: active conferences first, but a share of every round's budget
(CONFWATCH_BACKGROUND_SHARE) is kept for created and never-observed conferences, oldest
due first, so each of them is polled within a bounded time (README, "Polling").
"""

import math
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conferences.catapult import answers
from conferences.catapult.client import CatapultClient
from conferences.models import Account, Conference, ConferenceState
from conferences.polling import budget
from conferences.recording import bulk

# A claim outlives its round's deadline by the request timeouts and this margin, so an
# abandoned request has ended before anyone else may poll the conference.
CLAIM_MARGIN = 2.0


class Claimed(NamedTuple):
    """A conference a round claimed: all the round needs of it."""

    pk: int
    conference_id: str


@dataclass(frozen=True)
class Claim:
    token: uuid.UUID
    until: datetime

    def of(self, pk):
        return bulk.Row(id=pk, claim_token=self.token, claimed_until=self.until)


CLAIM_FIELDS = ["claim_token", "claimed_until"]


@dataclass(eq=False)
class Job:
    conference: Claimed
    # "status" reads the conference; "members" reads one page of its members list
    # (page_url, or the first page): every job is one request, one slot of the budget.
    kind: str = "status"
    page_url: str | None = None
    sent_at: float | None = None
    result: answers.Conference | None = None
    error: answers.CatapultError | None = None
    # When the request left and when its answer came. An answer tells the conference as
    # it was at some moment between the two: it is recorded as observed when the
    # request left, so that a callback's change made while it was on its way (newer)
    # is never overwritten by it (make bench-desk: an answer read before a member joined,
    # stamped when it came back, put the count back to 0 for a poll interval).
    started_at: datetime | None = None
    finished_at: datetime | None = None
    abandoned: bool = False
    future: object = None


@dataclass(eq=False)
class Plan:
    """One account's share of a round: its claimed jobs and its reserved budget window
    (epoch seconds, [window_start, window_end) with one slot per job in it)."""

    account: Account
    spacing: float
    window_start: float
    window_end: float
    deadline: float
    jobs: list[Job] = field(default_factory=list)
    next_index: int = 0
    window_first: int = 0  # the index of the job whose slot opens the window
    last_sent_at: float | None = None
    client: CatapultClient | None = None
    concurrency: int = 1
    permits: threading.BoundedSemaphore | None = None
    # Set (from a fetching thread) when the account must rest: a 429 or rejected
    # credentials. The rest of its round is not sent.
    failure: answers.CatapultError | None = None
    paused: bool = False
    # Set when the account's share of the round stopped on an error of its own (its
    # settings, its client, a bug): what is left of it is not sent, and the account shows
    # PollStatus.ACCOUNT_ERROR (account_failed).
    error: str | None = None


def claim_lifetime():
    """How long a claim outlives its round's deadline: no request lasts longer than its
    total deadline (connect and whole body, CONFWATCH_HTTP_TOTAL_TIMEOUT)."""
    return settings.CONFWATCH_HTTP_TOTAL_TIMEOUT + CLAIM_MARGIN


def claimable(account, *, now, horizon, force, conference_ids=None, conference_pks=None):
    """The account's conferences this round may claim: due before the round's stretch
    of budget ends (so that one polled at t is polled again by t + the interval, not a
    round later), neither paused nor completed, and not held by another round."""
    due = (
        Conference.objects.filter(account=account, paused=False)
        .exclude(state=ConferenceState.COMPLETED)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    )
    if conference_ids is not None:
        due = due.filter(conference_id__in=conference_ids)
    if conference_pks is not None:
        due = due.filter(pk__in=conference_pks)
    if not force:
        due = due.filter(next_poll_at__lte=now + timedelta(seconds=horizon))
    return due


def choose(due, capacity, *, account_pk=None):
    """Up to `capacity` conferences: active ones first, oldest due first, but a share of
    the capacity (when they need it) goes to created and never-observed conferences."""
    lock = {"skip_locked": True, "of": ("self",)}
    order = ("next_poll_at", "pk")
    active_due = due.filter(state=ConferenceState.ACTIVE).order_by(*order)
    others_due = due.exclude(state=ConferenceState.ACTIVE).order_by(*order)
    active_due = active_due.select_for_update(**lock).values_list("pk", "conference_id")
    others_due = others_due.select_for_update(**lock).values_list("pk", "conference_id")
    if capacity is None:
        return [Claimed(*row) for row in active_due] + [Claimed(*row) for row in others_due]
    background = share_of_slots(
        ("background", account_pk), settings.CONFWATCH_BACKGROUND_SHARE, capacity
    )
    active = [Claimed(*row) for row in active_due[:capacity]]
    others = [Claimed(*row) for row in others_due[:capacity]]
    taken_others = min(len(others), max(background, capacity - len(active)))
    taken_active = min(len(active), capacity - taken_others)
    return active[:taken_active] + others[:taken_others]


# The fraction of a slot each reserved share of an account's rounds carried over from
# its earlier rounds in this process: a share of a round of a few slots (a quarter of 2)
# is then exact over any run of rounds, not only on average, so the wait bounds hold.
_carried_slots = {}


def share_of_slots(key, share, capacity):
    """The slots of `capacity` that `share` of it comes to in this round: the whole part
    of share x capacity plus what earlier rounds carried."""
    owed = share * capacity + _carried_slots.get(key, 0.0)
    slots = math.floor(owed)
    _carried_slots[key] = owed - slots
    return slots


# A round fills its account's budget this many round lengths ahead, a little past the
# next round's start: the next round, a little late (beat, the broker, the claims of the
# accounts before this one), then finds the budget's pointer still ahead and goes on
# from it. Filling only up to the next round's start left the gap to its late start
# unused, every round (make bench-desk, 1 s rounds: 16 of 18 usable requests/s).
ROUND_OVERLAP = 1.25


def claim_due_conferences(
    *, account_pk, token, horizon, deadline, force=False, conference_ids=None, conference_pks=None
):
    """Claim the account's due conferences that fit its budget in the next `horizon`
    seconds (before the deadline), most important first; reserve their send window."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_pk)
        now = timezone.now()
        if account.is_paused(now):
            return None
        spacing = budget.spacing_for(account)
        start = max(
            account.budget_next_at.timestamp() if account.budget_next_at else 0.0,
            now.timestamp() + min(budget.CLAIM_LEAD, spacing),
        )
        due = claimable(
            account,
            now=now,
            horizon=horizon,
            force=force,
            conference_ids=conference_ids,
            conference_pks=conference_pks,
        )
        capacity = None
        if not force:
            room = min(now.timestamp() + horizon * ROUND_OVERLAP, deadline) - start
            capacity = max(0, math.ceil(room / spacing))
            if capacity == 0:
                return None
        members_due = choose_members_reads(
            account,
            now=now,
            horizon=0 if force else horizon,
            capacity=capacity,
            conference_ids=conference_ids,
            conference_pks=conference_pks,
        )
        if capacity is None:
            claimed, members_taken = choose(due, None), members_due
        else:
            # Members reads get what the conference reads leave, and at least
            # CONFWATCH_MEMBERS_SHARE of the round when they are due: a budget short of
            # conference reads would otherwise never read a members list.
            share = settings.CONFWATCH_MEMBERS_SHARE
            kept = share_of_slots(("members", account.pk), share, capacity)
            kept = min(len(members_due), kept)
            claimed = choose(due, capacity - kept, account_pk=account.pk)
            members_taken = members_due[: max(kept, capacity - len(claimed))]
        jobs = [Job(conference) for conference in claimed] + members_taken
        if not jobs:
            return None
        end = budget.window_end(start, len(jobs), spacing)
        reserved_until = end + budget.grace_for(spacing)
        if force:
            # poll_once: a round as long as its budget needs, then the usual deadline.
            deadline = end + settings.CONFWATCH_ROUND_DEADLINE
        claim = Claim(token, budget.epoch(deadline + claim_lifetime()))
        pks = sorted({job.conference.pk for job in jobs})
        bulk.update_rows(Conference, [claim.of(pk) for pk in pks], CLAIM_FIELDS)
        account.budget_next_at = budget.epoch(reserved_until)
        account.save(update_fields=["budget_next_at"])
    return Plan(
        account=account,
        spacing=spacing,
        window_start=start,
        window_end=end,
        deadline=deadline,
        jobs=jobs,
    )


def choose_members_reads(
    account, *, now, horizon, capacity, conference_ids=None, conference_pks=None
):
    """Members reads due on the account (one page each, most overdue first), at most
    `capacity` of them (None: all), of conferences neither paused nor held by another
    round. Completed conferences are included: their final read."""
    if capacity is not None and capacity <= 0:
        return []
    due = Conference.objects.filter(
        account=account,
        paused=False,
        members_read__due_at__lte=now + timedelta(seconds=horizon),
    ).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
    if conference_ids is not None:
        due = due.filter(conference_id__in=conference_ids)
    if conference_pks is not None:
        due = due.filter(pk__in=conference_pks)
    due = due.order_by("members_read__due_at", "pk").select_for_update(
        skip_locked=True, of=("self",)
    )
    rows = due.values_list("pk", "conference_id", "members_read__next_page_url")
    if capacity is not None:
        rows = rows[:capacity]
    return [
        Job(Claimed(pk, conference_id), kind="members", page_url=page_url or None)
        for pk, conference_id, page_url in rows
    ]

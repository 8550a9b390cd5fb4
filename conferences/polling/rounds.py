"""Polling: claim the due conferences, fetch them within each account's request budget,
then record what was observed.

The request budget (requests per second per Catapult account) is the scarce resource.
Each account keeps one pointer, `budget_next_at`: the end of the last reserved stretch of
its budget. A round reserves, in one short transaction under the account's row lock, a
window of `n` send slots after that pointer for the `n` conferences it claims, and paces
its requests inside that window in memory: never before the window opens, never closer
together than the spacing, never after the window closes (what is left then reserves a
new window, in one more transaction). Several workers therefore never send two requests
of one account closer than its spacing, and a round that starts late still spends its
window instead of losing it.

A round holds what it claimed with a claim token until a deadline: requests that did
not get an answer by then are abandoned and recorded as such (never as a change); only
the round holding the token may write a result or release the claim, and a dead
worker's claims lapse shortly after its deadline.

Fair priority: active conferences first, but a share of every round's budget
(CONFWATCH_BACKGROUND_SHARE) is kept for created and never-observed conferences, oldest
due first, so each of them is polled within a bounded time (README, "Polling").

Blast radius: one account's failure (a budget that is not a number, an unreadable secret,
any error in its claim, its sending or the recording of its answers) stops only its own
share of the round; it is recorded on the account (PollStatus.ACCOUNT_ERROR, logged once
per episode) and the other accounts are polled on time. An answer the database refuses
(DataError, IntegrityError...) does not lose the round: the write is done again account
by account, then conference by conference for the failing account, and each answer that
cannot be stored is recorded on its conference as a poll error (PollStatus.UNSTORABLE).
"""

import dataclasses
import logging
import math
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from conferences.catapult import answers as catapult_answers
from conferences.catapult import client as catapult
from conferences.models import (
    Account,
    Conference,
    ConferenceState,
    PollStatus,
)
from conferences.ops import metrics
from conferences.polling import budget, dispatch
from conferences.recording import bulk, observations, problems

logger = logging.getLogger(__name__)

# Wait at least this long before polling a conference the API says does not exist.
NOT_FOUND_MIN_WAIT = 60.0


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
    result: catapult_answers.Conference | None = None
    error: catapult_answers.CatapultError | None = None
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
    last_sent_at: float | None = None
    client: catapult.CatapultClient | None = None
    concurrency: int = 1
    permits: threading.BoundedSemaphore | None = None
    # Set (from a fetching thread) when the account must rest: a 429 or rejected
    # credentials. The rest of its round is not sent.
    failure: catapult_answers.CatapultError | None = None
    paused: bool = False
    # Set when the account's share of the round stopped on an error of its own (its
    # settings, its client, a bug): what is left of it is not sent, and the account shows
    # PollStatus.ACCOUNT_ERROR (account_failed).
    error: str | None = None


@dataclass
class RoundSummary:
    polled: int = 0
    changed: int = 0
    skipped: int = 0
    abandoned: int = 0
    ignored: int = 0
    events: int = 0
    members_pages: int = 0
    outcomes: Counter = field(default_factory=Counter)

    def line(self):
        outcomes = ", ".join(f"{count} {name}" for name, count in sorted(self.outcomes.items()))
        line = (
            f"polled {self.polled} conferences ({outcomes or 'nothing due'}); "
            f"{self.changed} changed; {self.skipped} skipped"
        )
        if self.abandoned:
            line += f"; {self.abandoned} abandoned at the deadline"
        if self.ignored:
            line += f"; {self.ignored} results discarded"
        if self.members_pages:
            line += f"; {self.members_pages} members pages read"
        return line


class UnstorableAnswer(catapult_answers.CatapultError):
    """An answer the database refused to store (record_round): a poll error of its
    conference, with the usual backoff."""

    poll_status = PollStatus.UNSTORABLE
    label = "answer not storable"


def claim_lifetime():
    """How long a claim outlives its round's deadline: no request lasts longer than its
    total deadline (connect and whole body, CONFWATCH_HTTP_TOTAL_TIMEOUT)."""
    return settings.CONFWATCH_HTTP_TOTAL_TIMEOUT + CLAIM_MARGIN


@metrics.ROUND_SECONDS.time()
def poll_round(*, horizon=None, force=False, conference_ids=None, conference_pks=None):
    """Poll one round: every account's due conferences, within its budget.

    With force=True every tracked conference that is neither paused nor completed is
    polled whether due or not (still paced by each account's budget). conference_ids
    (Catapult ids, on any account) or conference_pks (tracked conferences) narrow it.

    No garbage collector pass runs during the round (observations.collector_paused): a
    round's objects hold no cycles (a round of 10,000 left 0 to 5 for the collector),
    and its passes walked them all, over and over: 30 ms of a round of 2,000, 250 ms of
    one of 10,000, growing faster than the round. The collector resumes once the round's
    objects are gone, so its next pass is short.
    """
    with observations.collector_paused():
        return claim_fetch_record(
            horizon=settings.CONFWATCH_ROUND_SECONDS if horizon is None else horizon,
            force=force,
            conference_ids=conference_ids,
            conference_pks=conference_pks,
        )


def claim_fetch_record(*, horizon, force, conference_ids, conference_pks):
    """The round itself: claim each account's share, send the requests, record the
    answers (see poll_round)."""
    token = uuid.uuid4()
    deadline = time.time() + settings.CONFWATCH_ROUND_DEADLINE
    plans = []
    accounts = Account.objects.order_by("pk")
    if conference_pks is not None:
        # A few chosen conferences (poll now, a callback's confirming poll): only their
        # accounts' rows are locked.
        accounts = accounts.filter(conferences__pk__in=conference_pks).distinct()
    for account in accounts:
        try:
            # Its budget and its client first: an account that cannot be polled claims
            # nothing (client_for keeps the client for fetch_plans).
            dispatch.client_for(account, pool_size=dispatch.concurrency_for(account))
            plan = claim_due_conferences(
                account_pk=account.pk,
                token=token,
                horizon=horizon,
                deadline=deadline,
                force=force,
                conference_ids=conference_ids,
                conference_pks=conference_pks,
            )
        except Exception as error:
            dispatch.account_failed(account, error, during="claiming its conferences")
            continue
        if plan is not None:
            plans.append(plan)
    if not plans:
        return RoundSummary()
    dispatch.fetch_plans(plans)
    return record_round(plans, token=token)


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
            room = min(now.timestamp() + horizon, deadline) - start
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


MAX_UNSTORABLE_REASON = 160


def next_wait(conference, error):
    """Seconds until the conference is polled again after an error: doubling from the
    poll interval, capped; longer for a conference the API does not know."""
    interval = settings.CONFWATCH_POLL_INTERVAL
    failures = max(conference.consecutive_failures, 1)
    if isinstance(error, catapult_answers.NotFound):
        interval = max(interval * 6, NOT_FOUND_MIN_WAIT)
    return min(interval * 2 ** min(failures - 1, 20), settings.CONFWATCH_MAX_BACKOFF)


def reschedule(conference, observation, *, interval):
    """When to poll a conference again, after recording an observation of it (`interval`:
    CONFWATCH_POLL_INTERVAL as a timedelta, read once per batch)."""
    at = observation.observed_at
    error = observation.error
    if observation.members_read:
        return None  # members reads have a schedule of their own (conferences/recording/members.py)
    if error is None:
        return at + interval
    if catapult_answers.rests_account(error):
        # The account rests; its conferences are due as soon as it is unpaused, and one
        # that was overdue stays as overdue as it was (never made to look freshly due).
        return min(conference.next_poll_at, at)
    return at + timedelta(seconds=next_wait(conference, error))


@dataclass
class Part:
    """One account's share of a round's write: its observations (recorded[start:end])
    and whether it answered (then its problem ends: problems.account_recovered)."""

    account: Account
    start: int
    end: int
    answered: bool


def record_round(plans, *, token):
    """Record every result of the round through the observation path, then release the
    claims: jobs never sent are due again at once; abandoned ones keep their claim until
    it lapses, since their request may still be in flight.

    The round is written in one transaction. When that fails (an answer the database
    refuses, a bug), it is written again account by account, and a failing account's
    conference by conference (record_in_parts): everything storable is stored, and each
    answer that is not is a poll error of its conference (PollStatus.UNSTORABLE)."""
    recorded, unsent, parts, abandoned = [], [], [], 0
    for plan in plans:
        try:
            observed, plan_unsent, plan_abandoned, answered = observe(plan, token=token)
        except Exception as error:
            dispatch.stop_plan(plan, error, during="recording its answers")
            # Its answers are lost: its conferences are due again at once (those of
            # abandoned requests keep their claim until it lapses).
            observed, plan_abandoned, answered = [], 0, False
            plan_unsent = [job.conference.pk for job in plan.jobs if not job.abandoned]
        answered = answered and plan.error is None
        parts.append(Part(plan.account, len(recorded), len(recorded) + len(observed), answered))
        recorded += observed
        unsent += plan_unsent
        abandoned += plan_abandoned
    now = timezone.now()
    interval = timedelta(seconds=settings.CONFWATCH_POLL_INTERVAL)
    rescheduling = partial(reschedule, interval=interval)
    try:
        with transaction.atomic():
            # Recording releases the claims of what was answered.
            outcomes = observations.record(recorded, reschedule=rescheduling)
            # The account answered again: its problem is over (unless it rests still).
            problems.account_recovered([p.account.pk for p in parts if p.answered], now=now)
    except Exception as error:
        if dispatch.connection_lost():
            raise
        logger.warning(
            "a polling round's write failed (%s); writing it again account by account",
            unstorable_reason(error),
        )
        outcomes = record_in_parts(recorded, parts, reschedule=rescheduling, now=now)
    release_unsent(unsent, token=token, now=now)
    metrics.round_recorded(plans, outcomes)
    return summarize(outcomes, unsent=len(unsent), abandoned=abandoned)


def observe(plan, *, token):
    """The observations of one plan's jobs, the conferences it never sent (their pks),
    how many requests it abandoned at the deadline, and whether the account answered."""
    Observation = observations.Observation
    recorded, unsent, abandoned, answered = [], [], 0, False
    for job in plan.jobs:
        pk = job.conference.pk
        members = job.kind == "members"
        of_failure = Observation.of_members_failure if members else Observation.of_failure
        if job.future is None:
            unsent.append(pk)
        elif job.abandoned:
            abandoned += 1
            error = catapult_answers.TransientError(
                "no answer before the round's deadline "
                f"({settings.CONFWATCH_ROUND_DEADLINE:g} s); request abandoned"
            )
            at = budget.epoch(plan.deadline)
            observation = of_failure(pk, error, observed_at=at, claim_token=token)
            recorded.append(dataclasses.replace(observation, keep_claim=True))
        elif job.result is not None:
            answered = True
            of_result = Observation.of_members_page if members else Observation.of_conference
            recorded.append(
                of_result(pk, job.result, observed_at=job.finished_at, claim_token=token)
            )
        else:
            recorded.append(
                of_failure(pk, job.error, observed_at=job.finished_at, claim_token=token)
            )
    return recorded, unsent, abandoned, answered


def record_in_parts(recorded, parts, *, reschedule, now):
    """Write the round account by account (a transaction each); a part that fails is
    written conference by conference (record_one_by_one). Returns the outcomes."""
    outcomes = []
    for part in parts:
        observed = recorded[part.start : part.end]
        try:
            with transaction.atomic():
                written = observations.record(observed, reschedule=reschedule)
                if part.answered:
                    problems.account_recovered([part.account.pk], now=now)
        except Exception:
            if dispatch.connection_lost():
                raise
            written = record_one_by_one(observed, reschedule=reschedule)
            if part.answered:
                try:
                    problems.account_recovered([part.account.pk], now=now)
                except Exception as error:
                    dispatch.account_failed(part.account, error, during="recording its answers")
        outcomes += written
    return outcomes


def record_one_by_one(observed, *, reschedule):
    """Write each conference's observations in a transaction of its own; those the
    database refuses become its poll error (record_unstorable)."""
    by_conference = {}
    for observation in observed:
        by_conference.setdefault(observation.conference_pk, []).append(observation)
    outcomes = []
    for group in by_conference.values():
        try:
            with transaction.atomic():
                outcomes += observations.record(group, reschedule=reschedule)
        except Exception as error:
            if dispatch.connection_lost():
                raise
            outcomes += record_unstorable(group, error, reschedule=reschedule)
    return outcomes


def record_unstorable(group, error, *, reschedule):
    """Record, instead of a conference's answers the database refused, a poll error
    "answer not storable: <reason>" (a PollError run, the claim released, the next poll
    after the usual backoff), so that the conference does not look healthy."""
    Observation = observations.Observation
    problem = UnstorableAnswer(unstorable_reason(error))
    failures = []
    for observation in group:
        of_failure = (
            Observation.of_members_failure if observation.members_read else Observation.of_failure
        )
        failure = of_failure(
            observation.conference_pk,
            problem,
            observed_at=observation.observed_at,
            claim_token=observation.claim_token,
        )
        failures.append(dataclasses.replace(failure, keep_claim=observation.keep_claim))
    if all(observation.members_read for observation in group):
        # A members page that cannot be stored: the conference shows it too.
        last = group[-1]
        failures.append(
            Observation.of_failure(
                last.conference_pk,
                problem,
                observed_at=last.observed_at,
                claim_token=last.claim_token,
            )
        )
    logger.info("conference %s: %s", group[0].conference_pk, problem)
    try:
        with transaction.atomic():
            return observations.record(failures, reschedule=reschedule)
    except Exception:
        if dispatch.connection_lost():
            raise
        logger.exception(
            "conference %s: its unstorable answer could not be recorded", group[0].conference_pk
        )
        return [
            observations.Outcome(o, applied=False, ignored_because="not storable") for o in group
        ]


def unstorable_reason(error):
    """A short reason a write failed, without values: the database's own message
    (e.g. "value too long for type character varying(30)"), or the error's kind."""
    cause = error.__cause__ if error.__cause__ is not None else error
    diag = getattr(cause, "diag", None)
    text = getattr(diag, "message_primary", None)
    if not text:
        text = dispatch.first_line(cause)
        if not isinstance(cause, psycopg.Error):
            text = f"{type(cause).__name__}: {text}"
    return text.replace("\x00", "")[:MAX_UNSTORABLE_REASON]


# Releases the claims of conferences a round never sent, locking them in pk order (the
# rule of observations.py): each is due again at once, or stays as overdue as it was.
RELEASE_SQL = """
UPDATE conferences_conference AS c
SET claim_token = NULL, claimed_until = NULL, next_poll_at = LEAST(c.next_poll_at, %(now)s)
FROM (
    SELECT id FROM conferences_conference
    WHERE id = ANY(%(pks)s) AND claim_token = %(token)s ORDER BY id FOR UPDATE
) AS locked
WHERE c.id = locked.id
"""


def release_unsent(pks, *, token, now):
    if not pks:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RELEASE_SQL, {"pks": pks, "token": token, "now": now})


def summarize(outcomes, *, unsent, abandoned):
    summary = RoundSummary(skipped=unsent, abandoned=abandoned)
    for outcome in outcomes:
        if not outcome.applied:
            summary.ignored += 1
            continue
        summary.events += len(outcome.events)
        if outcome.observation.members_read:
            summary.members_pages += 1
            continue
        summary.polled += 1
        summary.outcomes[outcome.poll_status_after] += 1
        summary.changed += outcome.new_run
    return summary

"""Polling: claim the due conferences, fetch them within each account's request budget,
then write the round in one short transaction.

The request budget (requests per second per Catapult account) is the scarce resource.
Each account keeps one pointer, `budget_next_at`: the earliest time its next request may
be sent. Claiming reserves evenly spaced send slots after that pointer (under a row lock,
so several workers never share a slot); a request that could not leave on time takes a
fresh slot instead of leaving late. The poller therefore never sends two requests of one
account closer than its spacing, whatever the number of workers.
"""

import logging
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from conferences import catapult
from conferences.models import (
    Account,
    Conference,
    ConferenceState,
    HistoryEntry,
    PollError,
    PollStatus,
    StatusChange,
)
from conferences.secrets import SecretUnreadable

logger = logging.getLogger(__name__)

# Spend at most this share of the budget: network jitter must not push two requests
# closer together than the API's limit.
BUDGET_SHARE = 0.95
# A request may leave this late after its slot (seconds, at most a tenth of the spacing);
# later than that it takes a new slot.
SEND_TOLERANCE = 0.05
# Wait at least this long before polling a conference the API says does not exist.
NOT_FOUND_MIN_WAIT = 60.0
# Most conferences one account can claim in one round, whatever its budget.
MAX_CLAIM_PER_ACCOUNT = 500


@dataclass
class Job:
    conference: Conference
    send_at: datetime
    result: catapult.Conference | None = None
    error: catapult.CatapultError | None = None
    skipped: bool = False
    finished_at: datetime | None = None


@dataclass
class Plan:
    account: Account
    spacing: float
    jobs: list[Job] = field(default_factory=list)
    # Set (from a fetching thread) when the account must rest: a 429 or rejected
    # credentials. The rest of its round is skipped.
    failure: catapult.CatapultError | None = None


@dataclass
class RoundSummary:
    polled: int = 0
    changed: int = 0
    skipped: int = 0
    outcomes: Counter = field(default_factory=Counter)

    def line(self):
        outcomes = ", ".join(f"{count} {name}" for name, count in sorted(self.outcomes.items()))
        return (
            f"polled {self.polled} conferences ({outcomes or 'nothing due'}); "
            f"{self.changed} changed; {self.skipped} skipped"
        )


def spacing_for(account):
    return 1.0 / (account.request_budget * BUDGET_SHARE)


def poll_round(*, now=None, horizon=None, force=False, conference_ids=None):
    """Poll one round: every account's due conferences, within its budget.

    With force=True every tracked conference that is neither paused nor completed is
    polled whether due or not (still paced by each account's budget).
    """
    now = now or timezone.now()
    horizon = settings.CONFWATCH_ROUND_SECONDS if horizon is None else horizon
    plans = []
    for account in Account.objects.order_by("pk"):
        plan = claim_due_conferences(
            account_pk=account.pk,
            now=now,
            horizon=horizon,
            force=force,
            conference_ids=conference_ids,
        )
        if plan and plan.jobs:
            plans.append(plan)
    if not plans:
        return RoundSummary()
    fetch_plans(plans)
    return record_round(plans)


def claim_due_conferences(*, account_pk, now, horizon, force=False, conference_ids=None):
    """Claim the account's due conferences that fit its budget in the next `horizon`
    seconds, most important first; reserve a send slot for each."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_pk)
        if account.is_paused(now):
            return None
        spacing = spacing_for(account)
        start = max(account.budget_next_at or now, now)
        due = Conference.objects.filter(account=account, paused=False).exclude(
            state=ConferenceState.COMPLETED
        )
        if conference_ids is not None:
            due = due.filter(conference_id__in=conference_ids)
        if force:
            capacity = MAX_CLAIM_PER_ACCOUNT
        else:
            due = due.filter(next_poll_at__lte=now)
            room = (now + timedelta(seconds=horizon) - start).total_seconds()
            capacity = min(max(0, math.ceil(room / spacing)), MAX_CLAIM_PER_ACCOUNT)
        if capacity == 0:
            return None
        priority = Case(
            When(state=ConferenceState.ACTIVE, then=Value(0)),
            When(state__isnull=True, then=Value(1)),
            When(state=ConferenceState.CREATED, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        )
        claimed = list(
            due.select_related("latest_history")
            .annotate(priority=priority)
            .order_by("priority", "next_poll_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))[:capacity]
        )
        if not claimed:
            return None
        # Nobody else claims them while this round runs; record_round sets the real time.
        Conference.objects.filter(pk__in=[c.pk for c in claimed]).update(
            next_poll_at=now + timedelta(seconds=settings.CONFWATCH_POLL_INTERVAL)
        )
        plan = Plan(account=account, spacing=spacing)
        for index, conference in enumerate(claimed):
            plan.jobs.append(Job(conference, start + timedelta(seconds=index * spacing)))
        account.budget_next_at = start + timedelta(seconds=len(claimed) * spacing)
        account.save(update_fields=["budget_next_at"])
    return plan


def take_new_slot(account, spacing):
    """Reserve the account's next free send slot; None while the account is paused."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account.pk)
        now = timezone.now()
        if account.is_paused(now):
            return None
        slot = max(account.budget_next_at or now, now)
        account.budget_next_at = slot + timedelta(seconds=spacing)
        account.save(update_fields=["budget_next_at"])
    return slot


# One client (one requests.Session and its connection pool) per account and process,
# kept across rounds; replaced when the account's URL, credentials or timeouts change.
_clients = {}


def client_for(account):
    key = (account.base_url, account.user_id, account.api_token_encrypted)
    key += (account.api_secret_encrypted, settings.CONFWATCH_HTTP_TIMEOUT)
    cached = _clients.get(account.pk)
    if cached is not None and cached[0] == key:
        return cached[1]
    token, secret = account.credentials()
    client = catapult.CatapultClient(
        base_url=account.base_url,
        user_id=account.user_id,
        api_token=token,
        api_secret=secret,
        pool_size=settings.CONFWATCH_POLL_CONCURRENCY,
        timeout=settings.CONFWATCH_HTTP_TIMEOUT,
    )
    if cached is not None:
        cached[1].close()
    _clients[account.pk] = (key, client)
    return client


def fetch_plans(plans):
    """Send every job at its slot, at most CONFWATCH_POLL_CONCURRENCY at once.

    HTTP runs in pool threads; the database is touched only from this thread.
    """
    clients = {}
    concurrency = settings.CONFWATCH_POLL_CONCURRENCY
    free = threading.Semaphore(concurrency)
    queue = sorted(
        ((job.send_at, index, plan, job) for plan in plans for index, job in enumerate(plan.jobs)),
        key=lambda item: (item[0], item[1]),
    )
    for plan in plans:
        try:
            clients[plan.account.pk] = client_for(plan.account)
        except (SecretUnreadable, ValueError) as error:
            logger.error("account %s cannot be polled: %s", plan.account.name, error)
            plan.failure = catapult.CredentialsRejected(str(error))
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _send_at, _index, plan, job in queue:
            if plan.failure is not None:
                job.skipped = True
                continue
            free.acquire()
            if not wait_for_slot(plan, job):
                free.release()
                job.skipped = True
                continue
            future = pool.submit(fetch_one, clients[plan.account.pk], plan, job)
            future.add_done_callback(lambda _future: free.release())


def wait_for_slot(plan, job):
    """Sleep until the job's slot; if it is already past, take a new one. False if the
    account got paused meanwhile."""
    while True:
        delay = (job.send_at - timezone.now()).total_seconds()
        if delay > 0:
            time.sleep(delay)
            continue
        if -delay <= min(SEND_TOLERANCE, plan.spacing / 10):
            return plan.failure is None
        slot = take_new_slot(plan.account, plan.spacing)
        if slot is None or plan.failure is not None:
            return False
        job.send_at = slot


def fetch_one(client, plan, job):
    try:
        job.result = client.get_conference(job.conference.conference_id)
    except catapult.CatapultError as error:
        job.error = error
        if isinstance(error, catapult.RateLimited | catapult.CredentialsRejected):
            plan.failure = error
    except Exception as error:  # a bug must not lose the round's other results
        logger.exception("polling %s failed unexpectedly", job.conference.conference_id)
        job.error = catapult.CatapultError(f"unexpected error: {type(error).__name__}")
    job.finished_at = timezone.now()


def next_wait(conference, error):
    """Seconds until the conference is polled again after an error: doubling from the
    poll interval, capped; longer for a conference the API does not know."""
    interval = settings.CONFWATCH_POLL_INTERVAL
    failures = conference.consecutive_failures
    if isinstance(error, catapult.NotFound):
        interval = max(interval * 6, NOT_FOUND_MIN_WAIT)
    return min(interval * 2 ** min(failures - 1, 20), settings.CONFWATCH_MAX_BACKOFF)


def record_round(plans):
    """Write every result of the round in one transaction with bulk statements."""
    now = timezone.now()
    summary = RoundSummary()
    interval = timedelta(seconds=settings.CONFWATCH_POLL_INTERVAL)
    conferences, new_history, seen_history, changes = [], [], [], []
    new_errors, repeated_errors, accounts = [], [], []
    errors_before = latest_error_runs(plans)

    for plan in plans:
        account = plan.account
        for job in plan.jobs:
            conference = job.conference
            conferences.append(conference)
            if job.skipped or (job.result is None and job.error is None):
                summary.skipped += 1
                conference.next_poll_at = now  # due again next round (or when unpaused)
                continue
            summary.polled += 1
            observed_at = job.finished_at or now
            conference.last_polled_at = observed_at
            if job.result is not None:
                summary.outcomes["ok"] += 1
                entry, change = observe(conference, job.result, observed_at=observed_at)
                if entry.pk is None:
                    summary.changed += 1
                    new_history.append(entry)
                else:
                    seen_history.append(entry)
                if change is not None:
                    changes.append(change)
                conference.next_poll_at = observed_at + interval
                continue
            error = job.error
            status = getattr(error, "poll_status", PollStatus.API_ERROR)
            summary.outcomes[status] += 1
            message = str(error)
            previous = errors_before.get(conference.pk)
            if (
                previous is not None
                and conference.poll_status == status
                and conference.poll_error == message
            ):
                previous.last_seen_at = observed_at
                previous.occurrences += 1
                repeated_errors.append(previous)
            else:
                new_errors.append(
                    PollError(
                        conference=conference,
                        poll_status=status,
                        message=message,
                        first_seen_at=observed_at,
                        last_seen_at=observed_at,
                    )
                )
            conference.poll_status = status
            conference.poll_error = message
            conference.consecutive_failures += 1
            conference.next_poll_at = observed_at + timedelta(seconds=next_wait(conference, error))
        if plan.failure is not None:
            pause_account(account, plan.failure, now=now)
            for job in plan.jobs:
                if job.skipped or job.error is plan.failure:
                    job.conference.next_poll_at = account.paused_until
            accounts.append(account)
        elif account.problem and any(job.result is not None for job in plan.jobs):
            account.problem, account.problem_message, account.problem_at = "", "", None
            accounts.append(account)

    with transaction.atomic():
        HistoryEntry.objects.bulk_create(new_history)
        HistoryEntry.objects.bulk_update(seen_history, ["last_seen_at"])
        StatusChange.objects.bulk_create(changes)
        PollError.objects.bulk_create(new_errors)
        PollError.objects.bulk_update(repeated_errors, ["last_seen_at", "occurrences"])
        for conference in conferences:
            # bulk_create filled in the new entries' keys; point the rows at them again.
            conference.latest_history = conference.latest_history
        Conference.objects.bulk_update(conferences, CONFERENCE_ROUND_FIELDS)
        if accounts:
            Account.objects.bulk_update(accounts, ACCOUNT_PROBLEM_FIELDS)
    return summary


CONFERENCE_ROUND_FIELDS = [
    "state",
    "active_members",
    "hold",
    "mute",
    "from_number",
    "created_time",
    "completed_time",
    "last_changed_at",
    "poll_status",
    "poll_error",
    "consecutive_failures",
    "last_polled_at",
    "next_poll_at",
    "latest_history",
]
ACCOUNT_PROBLEM_FIELDS = ["paused_until", "problem", "problem_message", "problem_at"]


def observe(conference, result, *, observed_at):
    """Apply one successful observation to the conference row (not saved).

    Returns the history entry to write (unsaved when the status changed, the latest one
    with a later last_seen_at otherwise) and the StatusChange, if the state changed.
    """
    values = (result.state, result.active_members, result.hold, result.mute)
    latest = conference.latest_history
    change = None
    if latest is not None and latest.values() == values:
        latest.last_seen_at = observed_at
        entry = latest
    else:
        entry = HistoryEntry(
            conference=conference,
            state=result.state,
            active_members=result.active_members,
            hold=result.hold,
            mute=result.mute,
            first_seen_at=observed_at,
            last_seen_at=observed_at,
        )
        conference.latest_history = entry
        conference.last_changed_at = observed_at
        previous_state = latest.state if latest is not None else None
        if latest is None or previous_state != result.state:
            change = StatusChange(
                conference=conference,
                from_state=previous_state,
                to_state=result.state,
                changed_at=observed_at,
            )
    conference.state = result.state
    conference.active_members = result.active_members
    conference.hold = result.hold
    conference.mute = result.mute
    conference.from_number = result.from_number
    conference.created_time = result.created_time
    conference.completed_time = result.completed_time
    conference.poll_status = PollStatus.OK
    conference.poll_error = ""
    conference.consecutive_failures = 0
    return entry, change


def pause_account(account, error, *, now):
    if isinstance(error, catapult.RateLimited):
        until = error.reset_at or now + timedelta(seconds=settings.CONFWATCH_POLL_INTERVAL)
        until = min(max(until, now), now + timedelta(seconds=settings.CONFWATCH_MAX_BACKOFF))
    else:
        until = now + timedelta(seconds=settings.CONFWATCH_CREDENTIALS_PAUSE)
    account.paused_until = until
    account.problem = error.poll_status
    account.problem_message = str(error)
    account.problem_at = now
    logger.warning("account %s paused until %s: %s", account.name, until.isoformat(), error)


def latest_error_runs(plans):
    """The newest PollError run of each conference in the round that failed before."""
    pks = [
        job.conference.pk
        for plan in plans
        for job in plan.jobs
        if job.error is not None and job.conference.poll_status not in ("ok", "pending")
    ]
    if not pks:
        return {}
    runs = (
        PollError.objects.filter(conference_id__in=pks)
        .order_by("conference_id", "-first_seen_at")
        .distinct("conference_id")
    )
    return {run.conference_id: run for run in runs}

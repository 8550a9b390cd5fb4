"""Sending a round's requests: one client and pool per account, each request sent in
its reserved slot outside any transaction; a failing account is stopped and paused."""

import heapq
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from conferences.catapult import answers
from conferences.catapult.client import CatapultClient
from conferences.models import (
    Account,
)
from conferences.ops import logs
from conferences.polling import budget
from conferences.recording import problems
from conferences.registry.crypto import SecretUnreadable

logger = logging.getLogger(__name__)

# Waits shorter than this (seconds) are not slept: at high budgets slots are closer.
MIN_SLEEP = 0.0005


# Auto concurrency: enough requests in flight to spend the budget at the latency seen
# lately (twice over, rounded up to a power of two so pools are rarely rebuilt), within
# these bounds. The latency starts at a guess and follows each answer.
MIN_CONCURRENCY, MAX_CONCURRENCY = 2, 64


FIRST_LATENCY_GUESS = 0.2


# Most threads one round runs, whatever the number of accounts.
MAX_ROUND_THREADS = 256


_latency = {}  # account pk -> recent request latency in seconds (moving average)


def concurrency_for(account):
    """Requests of this account in flight at once (its HTTP pool's size too)."""
    if settings.CONFWATCH_POLL_CONCURRENCY:
        return settings.CONFWATCH_POLL_CONCURRENCY
    latency = _latency.get(account.pk, FIRST_LATENCY_GUESS)
    wanted = max(MIN_CONCURRENCY, math.ceil(2 * budget.usable_budget(account) * latency))
    return min(MAX_CONCURRENCY, 2 ** math.ceil(math.log2(wanted)))


def note_latency(account_pk, seconds):
    previous = _latency.get(account_pk, seconds)
    _latency[account_pk] = 0.8 * previous + 0.2 * seconds


# One client (one requests.Session and its connection pool) per account and process,
# kept across rounds; replaced when the account's URL, credentials, timeouts or pool size
# change. A pool as large as the account's concurrency: never more connections to its API.
_clients = {}


def client_for(account, *, pool_size):
    key = (account.base_url, account.user_id, account.api_token_encrypted)
    key += (account.api_secret_encrypted, settings.CONFWATCH_HTTP_TIMEOUT, pool_size)
    key += (settings.CONFWATCH_HTTP_TOTAL_TIMEOUT, settings.CONFWATCH_HTTP_MAX_BYTES)
    cached = _clients.get(account.pk)
    if cached is not None and cached[0] == key:
        return cached[1]
    token, secret = account.credentials()
    client = CatapultClient(
        base_url=account.base_url,
        user_id=account.user_id,
        api_token=token,
        api_secret=secret,
        pool_size=pool_size,
        timeout=settings.CONFWATCH_HTTP_TIMEOUT,
        total_timeout=settings.CONFWATCH_HTTP_TOTAL_TIMEOUT,
        max_bytes=settings.CONFWATCH_HTTP_MAX_BYTES,
    )
    if cached is not None:
        cached[1].close()
    _clients[account.pk] = (key, client)
    return client


def fetch_plans(plans):
    """Send every job inside its account's window, at most the account's concurrency at
    once, and wait for the answers until each plan's deadline.

    HTTP runs in pool threads; the database is touched only from this thread.
    """
    for plan in plans:
        try:
            plan.concurrency = concurrency_for(plan.account)
            plan.permits = threading.BoundedSemaphore(plan.concurrency)
            plan.client = client_for(plan.account, pool_size=plan.concurrency)
        except Exception as error:
            stop_plan(plan, error, during="preparing its Catapult client")
    pool = take_pool()
    try:
        dispatch(plans, pool)
        for plan in plans:
            for job in plan.jobs:
                if job.future is None:
                    continue
                try:
                    job.future.result(timeout=max(0.0, plan.deadline - time.time()))
                except TimeoutError:
                    job.abandoned = True
            try:
                pause_if_failed(plan)
            except Exception as error:
                stop_plan(plan, error, during="pausing it")
    finally:
        give_back(pool)


class RequestPool(ThreadPoolExecutor):
    """The threads that send a round's requests. Kept from round to round: starting a
    thread makes the dispatcher wait for it, which costs more than the request."""

    def __init__(self):
        super().__init__(max_workers=MAX_ROUND_THREADS, thread_name_prefix="poll")
        self.lock = threading.Lock()
        self.running = 0

    def send(self, function, *args):
        with self.lock:
            self.running += 1
        return self.submit(self.run, function, *args)

    def run(self, function, *args):
        try:
            return function(*args)
        finally:
            with self.lock:
                self.running -= 1


_spare_pool = None


_spare_lock = threading.Lock()


def take_pool():
    global _spare_pool
    with _spare_lock:
        pool, _spare_pool = _spare_pool, None
    return pool or RequestPool()


def give_back(pool):
    """Keep the pool for the next round, unless one of its requests still runs (abandoned
    at the deadline, it ends by its own timeout; nobody waits for it) or a concurrent
    round kept its own already."""
    global _spare_pool
    with _spare_lock, pool.lock:
        if pool.running == 0 and _spare_pool is None:
            _spare_pool = pool
            return
    pool.shutdown(wait=False, cancel_futures=True)


# How long the dispatcher waits for a free request slot of one account before it looks
# at the other accounts again (seconds).
PERMIT_WAIT = 0.005


def dispatch(plans, pool):
    """Submit each plan's jobs in order, each at its slot of the plan's budget window. An error
    in one plan's turn stops that plan only (stop_plan)."""
    queue = [(plan.window_start, index) for index, plan in enumerate(plans)]
    heapq.heapify(queue)
    while queue:
        at, index = heapq.heappop(queue)
        plan = plans[index]
        try:
            later = dispatch_next(plan, at, pool)
        except Exception as error:
            stop_plan(plan, error, during="sending its requests")
            continue
        if later is not None:
            heapq.heappush(queue, (later, index))


def dispatch_next(plan, at, pool):
    """The plan's turn at `at`: send its next job when its window and a free request slot
    allow. Returns when its next turn is, or None when it has no more turns."""
    if plan.error is not None:
        return None
    if plan.failure is not None:
        pause_if_failed(plan)
        return None
    if plan.next_index >= len(plan.jobs):
        return None
    delay = at - time.time()
    if delay > MIN_SLEEP:
        time.sleep(delay)
    now = time.time()
    if now >= plan.deadline:
        return None
    earliest = next_send_time(plan)
    if earliest > now + MIN_SLEEP:
        return earliest
    if now > budget.last_send_time(plan):
        # This window is spent (the round ran late): reserve one for what is left.
        return plan.window_start if budget.reserve_window(plan, now=now) else None
    if not plan.permits.acquire(timeout=PERMIT_WAIT):
        return time.time()  # all its requests are in flight
    now = time.time()
    if now > budget.last_send_time(plan) or now >= plan.deadline:
        plan.permits.release()  # waited too long for a free thread; try again
        return now
    job = plan.jobs[plan.next_index]
    plan.next_index += 1
    plan.last_sent_at = job.sent_at = now
    job.future = pool.send(fetch_one, plan, job)
    job.future.add_done_callback(lambda _future, permits=plan.permits: permits.release())
    return next_send_time(plan)


def next_send_time(plan):
    """When the plan's next job may leave: at its slot in the window. One sent late (a
    busy machine wakes this thread late) does not push the later ones back: they catch
    up, never closer together than budget.catch_up_gap."""
    slot = plan.window_start + (plan.next_index - plan.window_first) * plan.spacing
    return max(slot, (plan.last_sent_at or 0.0) + budget.catch_up_gap(plan.spacing))


def fetch_one(plan, job):
    logs.bind(account=plan.account.name, conference=job.conference.conference_id)
    started = time.monotonic()
    job.started_at = timezone.now()
    try:
        if job.kind == "members":
            job.result = plan.client.list_members_page(
                job.conference.conference_id, page_url=job.page_url
            )
        else:
            job.result = plan.client.get_conference(job.conference.conference_id)
    except answers.CatapultError as error:
        job.error = error
        if answers.rests_account(error):
            plan.failure = error
    except Exception as error:  # a bug must not lose the round's other results
        logger.exception("polling %s failed unexpectedly", job.conference.conference_id)
        job.error = answers.CatapultError(f"unexpected error: {type(error).__name__}")
    job.finished_at = timezone.now()
    note_latency(plan.account.pk, time.monotonic() - started)


# Longest account problem message and unstorable reason stored (characters).
MAX_PROBLEM_MESSAGE = 300


def stop_plan(plan, error, *, during):
    """Stop the plan's share of the round on an error of its own: nothing more of it is
    sent, and the account shows why (account_failed)."""
    if plan.error is None:
        plan.error = account_failed(plan.account, error, during=during)


def account_failed(account, error, *, during):
    """Record that the account cannot be polled (PollStatus.ACCOUNT_ERROR) and why;
    return the message. Logged once per episode: when the problem starts or its message
    changes, not every round (problems.account_failed says which). A lost database
    connection is not the account's: it is raised again, for the round to fail."""
    if connection_lost():
        raise error
    message = problem_message(error, during=during)
    try:
        news = problems.account_failed(account.pk, message, now=timezone.now())
    except Exception:
        if connection_lost():
            raise
        logger.exception("account %s: its problem could not be recorded", account.name)
        news = True
    if news:
        expected = isinstance(error, budget.AccountUnpollable | SecretUnreadable)
        logger.error(
            "account %s cannot be polled: %s",
            account.name,
            message,
            exc_info=not expected,
            extra=logs.about(account=account.name),
        )
    return message


def problem_message(error, *, during):
    """What the account's page and log say of an error in its share of a round: the
    error's own words for what a human must fix, else the kind of error and where."""
    if isinstance(error, budget.AccountUnpollable | SecretUnreadable):
        text = str(error)
    else:
        text = f"{type(error).__name__} while {during}: {first_line(error)}"
    return text.replace("\x00", "")[:MAX_PROBLEM_MESSAGE]


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def connection_lost():
    """Whether the database connection is gone (then the round fails, for
    outages.run to report): any other database error belongs to what caused it."""
    raw = connection.connection
    return raw is None or raw.closed or raw.broken


def pause_if_failed(plan):
    """Rest the account at once when one of its requests said so (429, credentials)."""
    if plan.failure is None or plan.paused:
        return
    plan.paused = True
    pause_account(plan.account, plan.failure, now=timezone.now())


def pause_account(account, error, *, now):
    if isinstance(error, answers.RateLimited):
        until = error.reset_at or now + timedelta(seconds=settings.CONFWATCH_POLL_INTERVAL)
        until = min(max(until, now), now + timedelta(seconds=settings.CONFWATCH_MAX_BACKOFF))
    else:
        until = now + timedelta(seconds=settings.CONFWATCH_CREDENTIALS_PAUSE)
    with transaction.atomic():
        Account.objects.filter(pk=account.pk).update(
            paused_until=until, problem=error.poll_status, problem_message=str(error)
        )
        # The problem started with its first pause, not with the latest one.
        Account.objects.filter(pk=account.pk, problem_at__isnull=True).update(problem_at=now)
    account.paused_until = until
    logger.warning(
        "account %s paused until %s: %s",
        account.name,
        until.isoformat(),
        error,
        extra=logs.about(account=account.name),
    )

"""The request budget: how many requests an account may send per second, and the
shared Redis/Postgres windows of send slots that keep every process within it."""

import logging
import time
from datetime import UTC, datetime

import psycopg
from django.db import connection, transaction

from conferences.models import (
    BUDGET_SHARE,
    Account,
)

logger = logging.getLogger(__name__)

# A claim's first send slot starts at most this long (seconds) after the claim, so that
# the claim's own database work does not make the round late for its first slot.
CLAIM_LEAD = 0.025


# A request may leave at most this late (seconds, at most one spacing) after the last
# slot of its window; a window reserves this much more budget so that the next window
# still starts a full spacing after it.
SEND_GRACE = 0.005


# A window of budget lasts at least this long (seconds), however high the budget: a
# dispatcher that cannot send as fast as the slots come (thousands per second) would
# otherwise find each window over before it could use it, and reserve again and again.
MIN_WINDOW = 0.1


# Requests that fell behind their slots catch up at most this much closer together than
# the spacing: the gap stays above 1 / budget (BUDGET_SHARE leaves a tenth of it), so no
# second ever holds more requests than the budget, with 5% left for the network's
# jitter. Without catching up, every late send delayed all the later ones: under a busy
# hour's load (make bench-desk) accounts spent 16-17 of their 18 usable requests/s.
CATCH_UP = 0.95


def catch_up_gap(spacing):
    return spacing * CATCH_UP


class AccountUnpollable(Exception):
    """The account's own settings stop its share of a round (the message says which)."""


def usable_budget(account):
    """The account's request budget, once its stored settings are checked
    (Account.settings_problems: the budget's bounds and the base URL's rules, the ones
    every entry applies): a budget stored as nan, inf, 1e308 or 0, or a base URL that no
    entry accepts any more, raises AccountUnpollable before anything is claimed or sent."""
    problems = account.settings_problems()
    if problems:
        raise AccountUnpollable(" ".join(problems))
    return account.request_budget


def spacing_for(account):
    return 1.0 / (usable_budget(account) * BUDGET_SHARE)


def reserve_window(plan, *, now):
    """Reserve a new window for the plan's unsent jobs (as many as fit before its
    deadline). False when the account got paused or no slot fits any more.

    One statement, one round trip (the dispatcher calls it while the round's requests
    run): it locks the account's row, starts the window at the budget pointer (or now),
    fits what it can before the deadline and moves the pointer past the window."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            RESERVE_WINDOW_SQL,
            {
                "account": plan.account.pk,
                "now": now,
                "earliest": now + min(CLAIM_LEAD, plan.spacing),
                "unsent": len(plan.jobs) - plan.next_index,
                "deadline": plan.deadline,
                "spacing": plan.spacing,
                "min_window": MIN_WINDOW,
                "grace": grace_for(plan.spacing),
            },
        )
        reserved = cursor.fetchone()
    if reserved is None:
        return False
    start, count = float(reserved[0]), int(reserved[1])
    plan.window_start, plan.window_end = start, window_end(start, count, plan.spacing)
    plan.window_first = plan.next_index
    return True


# window_end and grace_for in SQL: times are epoch seconds (double precision).
RESERVE_WINDOW_SQL = """
WITH current AS (
    SELECT id, paused_until,
           GREATEST(COALESCE(EXTRACT(EPOCH FROM budget_next_at)::float8, 0), %(earliest)s)
               AS start
    FROM conferences_account WHERE id = %(account)s FOR UPDATE
), planned AS (
    SELECT id, paused_until, start,
           LEAST(%(unsent)s, FLOOR((%(deadline)s - start) / %(spacing)s))::bigint AS count
    FROM current
)
UPDATE conferences_account AS account
SET budget_next_at = to_timestamp(
    planned.start + GREATEST(planned.count * %(spacing)s, %(min_window)s) + %(grace)s
)
FROM planned
WHERE account.id = planned.id AND planned.count > 0
  AND (planned.paused_until IS NULL OR planned.paused_until <= to_timestamp(%(now)s))
RETURNING planned.start, planned.count
"""


def window_end(start, count, spacing):
    return start + max(count * spacing, MIN_WINDOW)


def grace_for(spacing):
    return min(SEND_GRACE, spacing)


def last_send_time(plan):
    """The latest a request of this window may leave: its last slot, plus the grace."""
    return plan.window_end - plan.spacing + grace_for(plan.spacing)


def reserve_one_request(account_pk):
    """Reserve one send slot of the account's budget for a request outside the rounds
    (testing its credentials, say); return when it may be sent (epoch seconds), or None
    while the account is paused. The caller sleeps until then."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=account_pk)
        now = time.time()
        if account.is_paused(epoch(now)):
            return None
        spacing = spacing_for(account)
        pointer = account.budget_next_at.timestamp() if account.budget_next_at else 0.0
        start = max(pointer, now)
        account.budget_next_at = epoch(start + spacing + grace_for(spacing))
        account.save(update_fields=["budget_next_at"])
    return start


def epoch(seconds):
    return datetime.fromtimestamp(seconds, tz=UTC)

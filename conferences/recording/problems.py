"""Problems that last: a conference or an account that keeps failing to be polled
becomes one event when it starts (once it lasted CONFWATCH_PROBLEM_AFTER_SECONDS) and one
when it ends, for the alerts to report."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from conferences import text
from conferences.models import (
    Account,
    Conference,
    Event,
    EventKind,
    PollStatus,
)
from conferences.ops import logs

logger = logging.getLogger(__name__)


def report_lasting_problems(*, now):
    """Record a polling_problem event for each conference and account whose polling has
    been failing for CONFWATCH_PROBLEM_AFTER_SECONDS and was not reported yet (once per
    episode: the episode ends with the next good poll). Returns the events."""
    since = now - timedelta(seconds=settings.CONFWATCH_PROBLEM_AFTER_SECONDS)
    events = []
    with transaction.atomic():
        conferences = (
            Conference.objects.filter(problem_since__lte=since, problem_reported_at__isnull=True)
            .order_by("pk")
            .select_for_update(skip_locked=True, of=("self",))[:MAX_REPORTED]
        )
        for row in conferences:
            events.append(
                problem_event(
                    row.account_id, row, row.poll_status, row.poll_error, row.problem_since, now
                )
            )
        Conference.objects.filter(pk__in=[e.conference_id for e in events]).update(
            problem_reported_at=now
        )
        accounts = (
            Account.objects.filter(problem_at__lte=since, problem_reported_at__isnull=True)
            .exclude(problem="")
            .order_by("pk")
            .select_for_update(skip_locked=True)[:MAX_REPORTED]
        )
        reported = []
        for account in accounts:
            reported.append(account.pk)
            events.append(
                problem_event(
                    account.pk,
                    None,
                    account.problem,
                    account.problem_message,
                    account.problem_at,
                    now,
                )
            )
        Account.objects.filter(pk__in=reported).update(problem_reported_at=now)
        Event.objects.bulk_create(events)
    return events


def account_failed(account_pk, message, *, now):
    """Record that the account cannot be polled (PollStatus.ACCOUNT_ERROR) and why, in
    one statement; the problem's start (problem_at) stays that of the episode. True when
    this starts the problem or changes its message (the caller logs it then, once)."""
    changed = (
        Account.objects.filter(pk=account_pk)
        .exclude(problem=PollStatus.ACCOUNT_ERROR, problem_message=message)
        .update(
            problem=PollStatus.ACCOUNT_ERROR,
            problem_message=message,
            problem_at=Coalesce("problem_at", Value(now)),
        )
    )
    return changed > 0


def account_recovered(account_pks, *, now):
    """Clear the problem of accounts that answered again (one log line each); a reported
    problem ends with a polling_recovered event. Returns the events."""
    events = []
    with transaction.atomic():
        accounts = (
            Account.objects.filter(pk__in=account_pks)
            .filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
            .exclude(problem="")
            .order_by("pk")
            .select_for_update()
        )
        for account in accounts:
            logger.warning(
                "account %s is polled again: its problem (%s) is over",
                account.name,
                account.get_problem_display(),
                extra=logs.about(account=account.name),
            )
            if account.problem_reported_at is not None:
                events.append(
                    Event(
                        kind=EventKind.POLLING_RECOVERED,
                        account_id=account.pk,
                        occurred_at=now,
                        before=account.problem,
                        after="ok",
                        detail={
                            "poll_status": account.problem,
                            "since": text.iso(account.problem_at),
                        },
                    )
                )
            account.problem, account.problem_message = "", ""
            account.problem_at = account.problem_reported_at = None
            account.save(
                update_fields=["problem", "problem_message", "problem_at", "problem_reported_at"]
            )
        Event.objects.bulk_create(events)
    return events


# Most problems reported in one pass; the next pass takes the rest.
MAX_REPORTED = 500


def problem_event(account_pk, conference, status, message, since, now):
    return Event(
        kind=EventKind.POLLING_PROBLEM,
        account_id=account_pk,
        conference=conference,
        occurred_at=now,
        before="ok",
        after=status,
        detail={"poll_status": status, "message": message, "since": text.iso(since)},
    )

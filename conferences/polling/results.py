"""Writing a round's results: every answer (or failure) through the observation path,
then the claims of what was never sent released, and the round's summary.

An answer the database refuses (DataError, IntegrityError...) does not lose the round:
the write is done again account by account, then conference by conference for the
failing account, and each answer that cannot be stored is recorded on its conference as
a poll error (PollStatus.UNSTORABLE).
"""

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from conferences.catapult import answers
from conferences.models import Account, PollStatus
from conferences.ops import metrics
from conferences.polling import budget, dispatch
from conferences.recording import observations, problems

logger = logging.getLogger(__name__)

# Wait at least this long before polling a conference the API says does not exist.
NOT_FOUND_MIN_WAIT = 60.0


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


class UnstorableAnswer(answers.CatapultError):
    """An answer the database refused to store (record_round): a poll error of its
    conference, with the usual backoff."""

    poll_status = PollStatus.UNSTORABLE
    label = "answer not storable"


MAX_UNSTORABLE_REASON = 160


def next_wait(conference, error):
    """Seconds until the conference is polled again after an error: doubling from the
    poll interval, capped; longer for a conference the API does not know."""
    interval = settings.CONFWATCH_POLL_INTERVAL
    failures = max(conference.consecutive_failures, 1)
    if isinstance(error, answers.NotFound):
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
    if answers.rests_account(error):
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
            error = answers.TransientError(
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
                of_result(pk, job.result, observed_at=job.started_at, claim_token=token)
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

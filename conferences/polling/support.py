"""What support staff ask for from the admin outside the regular rounds: poll chosen
conferences now, and test an account's credentials. Both spend the account's request
budget like every other request (claims.py reserves it).

Poll now runs in a worker (the admin queues `tasks.poll_now`); its outcome for each
conference goes to Django's admin log under the user who asked, where the admin shows
it on that user's next page load. Testing credentials is one request, made while the
admin waits: it waits at most a few seconds for its slot of the budget.
"""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from conferences.catapult import answers
from conferences.catapult.client import CatapultClient
from conferences.models import Conference, PollStatus
from conferences.polling import budget, results, rounds
from conferences.registry.crypto import SecretUnreadable
from conferences.text import local_text

# At most this many conferences per "poll now": a forced round spends the budget the
# regular rounds would have used.
MAX_POLL_NOW = 50
# Admin log messages that report a poll-now outcome start with this.
POLL_NOW_RESULT = "Poll now: "
# Longest wait (seconds) for a budget slot to test credentials in; later means busy.
CREDENTIALS_MAX_WAIT = 3.0
# Asked for when the account tracks nothing: a 404 proves the credentials were accepted.
PROBE_CONFERENCE_ID = "confwatch-credentials-check"


@dataclass
class PollNowResult:
    summary: results.RoundSummary | None = None
    outcomes: list = field(default_factory=list)  # (conference_id, message)


def poll_now(*, conference_pks, user_pk):
    """Poll the conferences now in one forced round (paced within each account's budget)
    and log each one's outcome for the user who asked."""
    conference_pks = list(conference_pks)[:MAX_POLL_NOW]
    started = timezone.now()
    pollable = Conference.objects.filter(pk__in=conference_pks, paused=False).exclude(
        state="completed"
    )
    pollable_pks = list(pollable.values_list("pk", flat=True))
    result = PollNowResult()
    if pollable_pks:
        result.summary = rounds.poll_round(force=True, conference_pks=pollable_pks)
    conferences = Conference.objects.filter(pk__in=conference_pks).select_related("account")
    entries = []
    content_type = ContentType.objects.get_for_model(Conference)
    for conference in conferences.order_by("conference_id"):
        message = poll_outcome(conference, since=started)
        result.outcomes.append((conference.conference_id, message))
        entries.append(
            LogEntry(
                user_id=user_pk,
                content_type=content_type,
                object_id=str(conference.pk),
                object_repr=str(conference)[:200],
                action_flag=CHANGE,
                change_message=f"{POLL_NOW_RESULT}{message}",
            )
        )
    LogEntry.objects.bulk_create(entries)
    return result


def poll_outcome(conference, *, since):
    """What a poll-now did for the conference, in a few words."""
    if conference.paused:
        return "not polled: tracking is paused."
    if conference.last_polled_at is None or conference.last_polled_at < since:
        if conference.is_completed:
            return "not polled: the conference is completed."
        account = conference.account
        if account.is_paused():
            when = local_text(account.paused_until, date=False)
            return f"not polled: account {account} rests until {when}."
        return "not polled: a round was polling it already."
    if conference.poll_status != PollStatus.OK:
        return f"{conference.get_poll_status_display()}: {conference.poll_error}"
    members = conference.active_members
    members = "–" if members is None else members
    return f"OK, {conference.state or 'state unknown'}, {members} active members."


def poll_now_results(*, user, since):
    """The poll-now outcomes logged for the user after `since`, oldest first."""
    return LogEntry.objects.filter(
        user=user,
        action_time__gt=since,
        content_type=ContentType.objects.get_for_model(Conference),
        change_message__startswith=POLL_NOW_RESULT,
    ).order_by("action_time", "pk")


@dataclass(frozen=True)
class CredentialsCheck:
    """accepted is True (the API took them), False (it refused them) or None (not known:
    not tested, or another error)."""

    accepted: bool | None
    message: str


@sensitive_variables("token", "secret")
def check_credentials(account, *, max_wait=CREDENTIALS_MAX_WAIT):
    """One request with the account's credentials, within its budget; never says them."""
    misconfigured = account.settings_problems()
    if misconfigured:  # no budget to pace it by, or no host to trust with the credentials
        return CredentialsCheck(None, "not tested: misconfigured: " + " ".join(misconfigured))
    try:
        token, secret = account.credentials()
    except SecretUnreadable as error:
        return CredentialsCheck(False, str(error))
    send_at = budget.reserve_one_request(account.pk)
    if send_at is None:
        account.refresh_from_db()
        until = local_text(account.paused_until, date=False)
        reason = account.get_problem_display() or "paused"
        return CredentialsCheck(
            None,
            f"not tested: the account rests until {until} ({reason}). Saving new "
            "credentials ends the rest.",
        )
    wait = send_at - time.time()
    if wait > max_wait:
        return CredentialsCheck(
            None, f"not tested: its budget is taken for the next {wait:.0f} s; try again."
        )
    if wait > 0:
        time.sleep(wait)
    conference_id = (
        account.conferences.order_by("pk").values_list("conference_id", flat=True).first()
        or PROBE_CONFERENCE_ID
    )
    try:
        with CatapultClient(
            base_url=account.base_url,
            user_id=account.user_id,
            api_token=token,
            api_secret=secret,
            pool_size=1,
            timeout=settings.CONFWATCH_HTTP_TIMEOUT,
        ) as client:
            client.get_conference(conference_id)
    except answers.NotFound:
        return CredentialsCheck(
            True, f"credentials accepted (the API knows no conference {conference_id})."
        )
    except answers.CredentialsRejected as error:
        return CredentialsCheck(False, scrub(str(error), token, secret))
    except answers.CatapultError as error:
        return CredentialsCheck(None, f"not confirmed: {scrub(str(error), token, secret)}")
    except ValueError as error:
        return CredentialsCheck(None, f"not tested: {scrub(str(error), token, secret)}")
    return CredentialsCheck(True, f"credentials accepted ({conference_id} answered).")


@sensitive_variables("token", "secret")
def scrub(text, token, secret):
    """The text without the credentials, should an error message ever quote them."""
    for value in (token, secret):
        if value:
            text = text.replace(value, "***")
    return text

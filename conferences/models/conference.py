"""The tracked conference, with its last observed status on the row, and what "stale"
means (the one definition the overview, the conference page, /health/ and the admin use).

Staleness depends on the clock, so it is computed when read, never stored: a conference
that is polled (neither paused nor completed) is stale when its last successful
observation (`last_observed_at`; its tracking time if never observed) is older than
twice the poll interval. A conference Catapult does not find is "not found", its own
problem, not stale.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Upper
from django.utils import timezone

from conferences.models.accounts import Account
from conferences.models.vocabulary import ConferenceState, PollStatus


def stale_after():
    """How long a polled conference may go without a successful observation."""
    return timedelta(seconds=2 * settings.CONFWATCH_POLL_INTERVAL)


def last_seen():
    """What staleness is measured from, as an expression: the last successful
    observation, or the tracking time of a conference never observed (as stale_q and
    stale_at read it)."""
    return Coalesce("last_observed_at", "tracked_at")


def polled_q():
    """Neither paused nor completed (never observed counts as polled)."""
    return Q(paused=False) & (Q(state__isnull=True) | ~Q(state=ConferenceState.COMPLETED))


def stale_q(now):
    """Conferences stale at `now` (see the module's docstring), as a Q."""
    cutoff = now - stale_after()
    return (
        polled_q()
        & ~Q(poll_status=PollStatus.NOT_FOUND)
        & (Q(last_observed_at__lt=cutoff) | Q(last_observed_at__isnull=True, tracked_at__lt=cutoff))
    )


class ConferenceQuerySet(models.QuerySet):
    def stale(self, now=None):
        return self.filter(stale_q(now or timezone.now()))


class Conference(models.Model):
    """A Catapult conference id confwatch tracks, with its last observed status."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="conferences")
    conference_id = models.CharField(max_length=100)
    label = models.CharField(max_length=200, blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    paused = models.BooleanField(default=False, help_text="Paused conferences are not polled.")

    # Last observed status. None means never observed or not sent by the API.
    state = models.CharField(max_length=30, null=True, blank=True)
    active_members = models.IntegerField(null=True, blank=True)
    hold = models.BooleanField(null=True, blank=True)
    mute = models.BooleanField(null=True, blank=True)
    from_number = models.CharField(max_length=50, null=True, blank=True)
    created_time = models.DateTimeField(null=True, blank=True)
    completed_time = models.DateTimeField(null=True, blank=True)
    # The conference's own settings at Catapult, as last observed (Catapult's `tag` is
    # one free text set by the customer's app, unlike confwatch's `tags`).
    callback_url = models.TextField(null=True, blank=True)
    catapult_tag = models.TextField(null=True, blank=True)
    # What a support engineer asks when callbacks stop (docs/catapult-api.md §1.2): the
    # DTMF profile, the callback method and timeout (ms), and where failed events go.
    profile = models.CharField(max_length=100, null=True, blank=True)
    callback_http_method = models.CharField(max_length=100, null=True, blank=True)
    callback_timeout = models.IntegerField(null=True, blank=True)
    fallback_url = models.TextField(null=True, blank=True)
    last_changed_at = models.DateTimeField(null=True, blank=True)
    # Since when the conference is in its current state: set by recording when the state
    # is first observed or changes, in the same write (the pages' "active for ...").
    state_since = models.DateTimeField(null=True, blank=True)

    # Poll bookkeeping.
    poll_status = models.CharField(
        max_length=30, choices=PollStatus.choices, default=PollStatus.PENDING
    )
    poll_error = models.TextField(blank=True)
    consecutive_failures = models.IntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # When the newest applied observation was made; an older one changes nothing.
    last_observed_at = models.DateTimeField(null=True, blank=True)
    # Since when polling has been failing (None while it works), and when that episode
    # was reported as a polling_problem event (it is, once it lasted long enough).
    problem_since = models.DateTimeField(null=True, blank=True)
    problem_reported_at = models.DateTimeField(null=True, blank=True)
    # Since when the conference flaps (too many changes in a short time): alerts then
    # say so once, and once more when it settles, instead of one email per change.
    flapping_since = models.DateTimeField(null=True, blank=True)
    # The newest full observation that confirmed the open history run (latest_history).
    # That run's own last_seen_at is brought up to it at most every RUN_REFRESH seconds
    # and when the run ends, so that a quiet conference costs no history write per poll;
    # read an open run's end with `run_last_seen`.
    run_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_poll_at = models.DateTimeField(default=timezone.now)
    # A polling round holds the conference while it polls it: only the round with this
    # token may write its result or release it; a dead round's claim lapses at
    # claimed_until (after its deadline and the request timeouts).
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    latest_history = models.ForeignKey(
        "HistoryEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tracked_at = models.DateTimeField(auto_now_add=True)

    objects = ConferenceQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "conference_id"], name="conference_unique_per_account"
            )
        ]
        # No index holds a column every poll writes (next_poll_at, the observation
        # times, the claim): each poll's UPDATE then stays a HOT update, which writes no
        # index entry, in pages kept partly free for it (fillfactor, migration 0007).
        # Claiming due conferences scans the account's rows through its foreign key index.
        indexes = [
            # Lookups by Catapult id (API, commands, search).
            models.Index(fields=["conference_id"], name="conference_catapult_id_idx"),
            # The admin's list, newest change first (its order and the changelist's own
            # tie-break): 100 rows read from it, not 10,000 sorted (9 ms, make
            # bench-scale). A change writes a history row anyway; a poll that changes
            # nothing writes the same last_changed_at and stays a HOT update.
            models.Index(
                models.F("last_changed_at").desc(nulls_last=True),
                models.F("conference_id"),
                models.F("id").desc(),
                name="conference_last_change_idx",
            ),
            # The searches (overview, admin): id, label or from number contains a word
            # (icontains: UPPER(column) LIKE UPPER('%word%')), or a tag is it. Trigram
            # indexes answer a word of 3 characters or more without reading every row;
            # the columns change rarely, so a poll's update stays HOT.
            *[
                GinIndex(
                    OpClass(Upper(name), name="gin_trgm_ops"), name=f"conference_{short}_trgm_idx"
                )
                for name, short in (
                    ("conference_id", "id"),
                    ("label", "label"),
                    ("from_number", "from"),
                )
            ],
            GinIndex(fields=["tags"], name="conference_tags_idx"),
        ]

    def __str__(self):
        return self.label or self.conference_id

    def run_last_seen(self, run_pk, last_seen_at):
        """When the history run `run_pk` (stored last_seen_at) was last seen: for the
        open run, the conference row's newer run_seen_at where it has one."""
        if run_pk == self.latest_history_id and self.run_seen_at is not None:
            return max(self.run_seen_at, last_seen_at)
        return last_seen_at

    @property
    def is_completed(self):
        return self.state == ConferenceState.COMPLETED

    @property
    def duration_seconds(self):
        """How long a completed conference lasted (completedTime - createdTime), in whole
        seconds; None until it completed, or when either time is unknown."""
        if not self.is_completed or self.created_time is None or self.completed_time is None:
            return None
        return max(int((self.completed_time - self.created_time).total_seconds()), 0)

    @property
    def is_polled(self):
        return not self.paused and not self.is_completed

    def stale_at(self, now):
        """Whether the conference is stale at `now` (stale_q, for one loaded row)."""
        if not self.is_polled or self.poll_status == PollStatus.NOT_FOUND:
            return False
        return (self.last_observed_at or self.tracked_at) < now - stale_after()

    @property
    def is_stale(self):
        return self.stale_at(timezone.now())

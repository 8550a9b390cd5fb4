"""Conference members and the members reads that found them."""

from django.db import models

from conferences.models.conference import Conference
from conferences.models.vocabulary import ConferenceState


def held_present_q():
    """Present members (not departed) on hold or muted: those the overview counts beside
    the conference's own hold and mute."""
    return (models.Q(hold=True) | models.Q(mute=True)) & ~models.Q(state=ConferenceState.COMPLETED)


class ConferenceMembersRead(models.Model):
    """When a conference's members list is read next, and where that read resumes (the
    `Link: rel="next"` page of a list read page by page, one request per round slot)."""

    conference = models.OneToOneField(
        Conference, on_delete=models.CASCADE, primary_key=True, related_name="members_read"
    )
    # None: no read planned (never active, or the final read after completion is done).
    due_at = models.DateTimeField(null=True, blank=True)
    next_page_url = models.TextField(blank=True)
    # The conference completed: this read is its last one.
    final = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    pages = models.IntegerField(default=0)

    class Meta:
        indexes = [
            # claims.choose_members_reads: the reads due, most overdue first.
            models.Index(
                fields=["due_at"],
                name="members_read_due_idx",
                condition=models.Q(due_at__isnull=False),
            )
        ]

    def __str__(self):
        return f"members read of {self.conference_id}"


class Member(models.Model):
    """A conference member as last observed; departed members stay (state completed).
    Times are as the API gave them (addedTime, removedTime)."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=100)
    call_id = models.CharField(max_length=200, null=True, blank=True)
    state = models.CharField(max_length=30, null=True, blank=True)
    hold = models.BooleanField(null=True, blank=True)
    mute = models.BooleanField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conference", "member_id"], name="member_unique_per_conference"
            )
        ]
        indexes = [
            # Search by call id across conferences (members.calls_by_call_id).
            models.Index(fields=["call_id"], name="member_by_call_idx"),
            # The overview's live version sums up the present members on hold or muted
            # (selectors.overview.members_digest) on every refresh: an index-only scan of
            # these few rows, where a scan of every member ever seen grew with the table
            # (200,000 members: 30-40 ms a refresh).
            models.Index(
                fields=["conference"],
                include=["id", "hold", "mute"],
                condition=held_present_q(),
                name="member_held_present_idx",
            ),
        ]

    def __str__(self):
        return self.member_id

    @property
    def present(self):
        return self.state != ConferenceState.COMPLETED

    @property
    def stayed(self):
        """How long a departed member stayed; None when unknown (a time is missing, or
        the API's mixed offsets put the leave before the join: never negative)."""
        if self.joined_at is None or self.left_at is None or self.left_at < self.joined_at:
            return None
        return self.left_at - self.joined_at

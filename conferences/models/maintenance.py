"""Maintenance windows: planned work during which alerts about what a window covers are
recorded but not sent (conferences/alerting/maintenance.py holds the logic)."""

from django.db import models

from conferences.models.accounts import Account
from conferences.models.conference import Conference


class MaintenanceWindow(models.Model):
    """A window over an account's conferences, a tag's or chosen ones, from `starts_at`
    until `ends_at` (once, or every week at the same local times in `time_zone`), until
    someone ends it (`ended_at`)."""

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="maintenance_windows"
    )
    tag = models.CharField(max_length=50, blank=True)
    conferences = models.ManyToManyField(Conference, blank=True, related_name="maintenance_windows")
    # The first (or only) occurrence. A weekly window repeats its local times in time_zone.
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    weekly = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=60)
    reason = models.CharField(max_length=300, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    # No index: a handful of rows, read whole by each fan-out pass and page.

    def __str__(self):
        return f"maintenance {self.pk} of {self.describe_scope()}"

    def describe_scope(self):
        if self.account_id is not None:
            return f"account {self.account}"
        if self.tag:
            return f"tag {self.tag}"
        if self.pk is None:
            return "chosen conferences"
        ids = sorted(c.conference_id for c in self.conferences.all())
        return "conferences " + ", ".join(ids) if ids else "no conferences"

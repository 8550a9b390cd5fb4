"""Maintenance windows: planned work must not page anyone.

A window covers an account's conferences, a tag's or chosen ones, once (from, until) or
every week at the same local times in its time zone (a weekly window crossing midnight
or a DST change covers the local times it names: on the night clocks go forward it is an
hour shorter). It holds until it ends or someone ends it (`end_window`).

During a window the fan-out (fanout.py) records the alerts about what it covers, as
always, but adds them to one pending "maintenance" delivery per subscription, due when
the window ends (or, when that falls in the subscription's quiet hours, when they end).
That summary lists what happened, conference by conference, and what is still wrong
(emails.quiet_context says it, as for quiet hours). Polling and history go on unchanged.

`create_window` and `end_window` serve the `maintenance` command, the admin and the
Maintenance page; each raises ValidationError with a message a user can act on.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conferences.alerting import emails, schedules, subscriptions
from conferences.models import (
    Account,
    Delivery,
    DeliveryStatus,
    MaintenanceWindow,
)
from conferences.text import local_text

LOCAL_FORMAT = "%Y-%m-%d %H:%M"
WEEK = timedelta(days=7)
MAX_REASON = 300


# --------------------------------------------------------------------------- input


def parse_local(text, zone, *, what):
    """ "YYYY-MM-DD HH:MM" in the zone, as an aware datetime. A local time the zone skips
    (the hour clocks go forward) is refused; one it passes twice is the first."""
    try:
        naive = datetime.strptime(str(text or "").strip(), LOCAL_FORMAT)
    except ValueError:
        raise ValidationError(
            f'{what} {str(text)[:40]!r} is not a time; write it as "YYYY-MM-DD HH:MM".'
        ) from None
    local = naive.replace(tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValidationError(
            f"{what} {naive:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks "
            "skip it (a daylight saving change); choose another time."
        )
    return local


def clean_zone(name):
    return schedules.parse_zone(str(name or "").strip() or settings.TIME_ZONE)


def clean_times(starts, until, *, weekly, time_zone):
    """(zone, from, until) of local "YYYY-MM-DD HH:MM" texts in the zone (the site's
    when blank)."""
    zone = clean_zone(time_zone)
    starts_at = parse_local(starts, zone, what="From")
    ends_at = parse_local(until, zone, what="Until")
    if ends_at <= starts_at:
        raise ValidationError(
            f"Until ({until}) must be after from ({starts}): the window would be empty."
        )
    if weekly and ends_at - starts_at >= WEEK:
        raise ValidationError("A weekly window must be shorter than a week.")
    return zone, starts_at, ends_at


def clean_reason(text):
    reason = " ".join(str(text or "").split())
    if len(reason) > MAX_REASON:
        raise ValidationError(f"The reason is longer than {MAX_REASON} characters.")
    return reason


def create_window(
    *,
    account_name=None,
    tag="",
    conference_ids=(),
    starts,
    until,
    weekly=False,
    time_zone="",
    reason="",
    by="",
):
    """A new window over exactly one of: an account (by name), a tag, conferences (by
    Catapult id). `starts` and `until` are local "YYYY-MM-DD HH:MM" in `time_zone` (the
    site's when blank)."""
    tag = str(tag or "").strip()
    conference_ids = [str(cid).strip() for cid in conference_ids if str(cid).strip()]
    chosen = [bool(account_name), bool(tag), bool(conference_ids)]
    if sum(chosen) != 1:
        raise ValidationError("Name exactly one of: an account, a tag, or one or more conferences.")
    zone, starts_at, ends_at = clean_times(starts, until, weekly=weekly, time_zone=time_zone)
    reason = clean_reason(reason)
    account = None
    if account_name:
        account = Account.objects.filter(name=account_name).first()
        if account is None:
            raise ValidationError(f"No account named {account_name!r}.")
    conferences = subscriptions.find_conferences(conference_ids) if conference_ids else []
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            account=account,
            tag=tag[:50],
            starts_at=starts_at,
            ends_at=ends_at,
            weekly=weekly,
            time_zone=zone.key,
            reason=reason,
            created_by=str(by or "")[:150],
        )
        window.conferences.set(conferences)
    return window


def reschedule_summaries(window, *, now=None):
    """After the window was edited: its pending summaries are due when its current (or
    next) occurrence ends, or now when it has none."""
    now = now or timezone.now()
    found = current_or_next(window, now)
    move_summaries(window, found.ends_at if found is not None else now)


def move_summaries(window, ends_at, **filters):
    """Make the window's pending summaries (those matching `filters`) due when it ends at
    `ends_at` (after their quiet hours). A summary a sender has claimed meanwhile is left
    to it: the update is conditional on its claim."""
    pending = Delivery.objects.filter(
        maintenance=window,
        kind=Delivery.Kind.MAINTENANCE,
        status=DeliveryStatus.PENDING,
        claim_token__isnull=True,
        **filters,
    ).select_related("subscription")
    for delivery in pending:
        Delivery.objects.filter(pk=delivery.pk, claim_token__isnull=True).update(
            send_after=summary_time(delivery.subscription, ends_at)
        )


def end_window(window, *, now=None):
    """End the window now (a weekly one for good): its pending summaries become due.
    False when it had ended already."""
    now = now or timezone.now()
    with transaction.atomic():
        ended = MaintenanceWindow.objects.filter(pk=window.pk, ended_at__isnull=True).update(
            ended_at=now
        )
        if not ended:
            return False
        window.ended_at = now
        move_summaries(window, now, send_after__gt=now)
    return True


# --------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Occurrence:
    window: MaintenanceWindow
    starts_at: datetime
    ends_at: datetime

    def current(self, now):
        return self.starts_at <= now < self.ends_at


def zone_of(window):
    return clean_zone(window.time_zone)


def occurrence(window, week):
    """The window's occurrence `week` weeks after its first: the same local times in its
    zone (a local time the zone skips that day is read with the offset before the
    change, so it moves an hour later). Cut short where the window was ended."""
    if week == 0:
        start, end = window.starts_at, window.ends_at
    else:
        zone = zone_of(window)
        first_start = window.starts_at.astimezone(zone).replace(tzinfo=None)
        first_end = window.ends_at.astimezone(zone).replace(tzinfo=None)
        start = (first_start + week * WEEK).replace(tzinfo=zone)
        end = (first_end + week * WEEK).replace(tzinfo=zone)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if window.ended_at is not None:
        end = min(end, window.ended_at)
    return Occurrence(window=window, starts_at=start, ends_at=end)


def current_or_next(window, now):
    """The occurrence in force at `now`, else the next one; None when there is none."""
    if not window.weekly:
        found = occurrence(window, 0)
        return found if found.ends_at > now and found.ends_at > found.starts_at else None
    zone = zone_of(window)
    elapsed = now.astimezone(zone).replace(tzinfo=None) - window.starts_at.astimezone(zone).replace(
        tzinfo=None
    )
    first = max(elapsed // WEEK - 1, 0)
    for week in range(first, first + 3):
        found = occurrence(window, week)
        if found.ends_at <= found.starts_at:
            return None  # ended before it began
        if found.ends_at > now:
            return found
    return None


def in_force(window, now):
    """The occurrence of the window in force at `now`, or None."""
    found = current_or_next(window, now)
    return found if found is not None and found.current(now) else None


def open_windows(now):
    """Windows not ended that have a current or coming occurrence, with it, soonest
    first."""
    found = []
    windows = (
        MaintenanceWindow.objects.filter(ended_at__isnull=True)
        .filter(Q(weekly=True) | Q(ends_at__gt=now))
        .select_related("account")
        .prefetch_related("conferences")
    )
    for window in windows:
        upcoming = current_or_next(window, now)
        if upcoming is not None:
            found.append(upcoming)
    return sorted(found, key=lambda o: (o.starts_at, o.window.pk))


# --------------------------------------------------------------------------- coverage


def covers(window, conference, *, account_pk):
    """Does the window cover the conference (None for an account's own event)?"""
    if window.account_id is not None:
        return window.account_id == account_pk
    if conference is None:
        return False
    if window.tag:
        return window.tag in conference.tags
    return any(c.pk == conference.pk for c in window.conferences.all())


class Covering:
    """The windows in force at `now`, loaded once: which covers a conference or event."""

    def __init__(self, *, now):
        self.now = now
        self.occurrences = [o for o in open_windows(now) if o.current(now)]

    def of(self, conference, *, account_pk):
        """The occurrence covering the conference that ends last, or None."""
        found = [o for o in self.occurrences if covers(o.window, conference, account_pk=account_pk)]
        return max(found, key=lambda o: o.ends_at) if found else None

    def of_event(self, event):
        return self.of(event.conference, account_pk=event.account_id)

    def key(self):
        """What changes when a window begins or ends (the pages' live versions)."""
        return tuple((found.window.pk, found.ends_at.isoformat()) for found in self.occurrences)

    def mark(self, conferences):
        """Set `in_maintenance` on each conference: "in maintenance until ..." or ""."""
        for conference in conferences:
            found = self.of(conference, account_pk=conference.account_id)
            conference.in_maintenance = until_text(found.ends_at) if found is not None else ""


def until_text(ends_at):
    """What the pages say of a conference in a window, in the viewer's time zone."""
    return f"in maintenance until {local_text(ends_at, seconds=False)}"


# --------------------------------------------------------------------------- the summary


def summary_time(subscription, ends_at):
    """When a summary of a window ending at `ends_at` goes: then, or at the end of the
    subscription's quiet hours when it ends within them."""
    if subscription is None:
        return ends_at
    zone = emails.zone_for(subscription)
    start, end = subscription.quiet_start, subscription.quiet_end
    if schedules.in_window(start, end, ends_at, zone):
        return schedules.window_end(start, end, ends_at, zone)
    return ends_at


def summary_for(outbox, subscription, found):
    """The subscription's pending summary of this window (a new one due at its end)."""
    key = (subscription.pk, "maintenance", found.window.pk)
    delivery = outbox.pending.get(key) or (
        Delivery.objects.filter(
            subscription=subscription,
            maintenance=found.window,
            kind=Delivery.Kind.MAINTENANCE,
            status=DeliveryStatus.PENDING,
            claim_token__isnull=True,
            send_after__gte=found.ends_at,  # this occurrence's, not a week-old retry
        )
        .order_by("pk")
        .first()
    )
    if delivery is None:
        outbox.created += 1
        delivery = Delivery.objects.create(
            kind=Delivery.Kind.MAINTENANCE,
            subscription=subscription,
            email=subscription.email,
            maintenance=found.window,
            send_after=summary_time(subscription, found.ends_at),
        )
    outbox.pending[key] = delivery
    return delivery


def hold(outbox, subscription, events):
    """In the fan-out: add the events (of one conference or account) to the
    subscription's summary of the window that covers them; False (nothing done) when no
    window does."""
    found = outbox.covering.of_event(events[0])
    if found is None:
        return False
    outbox.add_to(summary_for(outbox, subscription, found), events)
    return True


def summary_context(delivery, events, zone):
    """What happened during the window, by conference, and what is still wrong."""
    context = emails.quiet_context(delivery, events, zone)
    window = delivery.maintenance
    about = f" ({window.reason})" if window is not None and window.reason else ""
    troubled = sum(1 for group in context["groups"] if group.outcome.startswith("Still"))
    subject = (
        f"{emails.SUBJECT_PREFIX} Maintenance summary{about}: "
        f"{emails.plural(len(events), 'alert')} about "
        f"{emails.plural(len(context['groups']), 'conference')}"
    )
    if troubled:
        subject += f", {troubled} still wrong"
    scope = window.describe_scope() if window is not None else "a maintenance window"
    context.update(subject=subject, scope=scope)
    return context

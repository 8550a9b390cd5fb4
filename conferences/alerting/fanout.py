"""Alerts, step one: recorded events become deliveries (the outbox).

`run_pass` runs both steps once: this fan-out, then the sender (sender.py).

- `fan_out` claims unhandled events (FOR UPDATE SKIP LOCKED) and, in the same
  transaction that marks them handled, adds them to deliveries: one per matching
  subscription. Changes of one conference for one recipient that come within
  CONFWATCH_ALERT_COALESCE_SECONDS of the previous email join one pending delivery
  instead of making their own. A conference that flaps is reported once, and once when
  it settles. A recipient past the hourly cap gets one digest instead.
- Alerts for one target within CONFWATCH_ALERT_GROUP_SECONDS of its last message are due
  together and go out as one message (grouping.py). During a maintenance window, alerts
  about what it covers join the window's summary instead (maintenance.py).

Fan-out locks conference rows in primary key order, as recording does, so the two never
wait on each other in a cycle.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from conferences.alerting import (
    acknowledgements,
    emails,
    grouping,
    maintenance,
    rules,
    schedules,
    sender,
    subscriptions,
)
from conferences.models import (
    Conference,
    Delivery,
    DeliveryStatus,
    Event,
    EventKind,
    Subscription,
)
from conferences.recording import problems

logger = logging.getLogger(__name__)

# Most events one fan-out pass takes; the next pass (a few seconds later) takes the rest.
FAN_OUT_BATCH = 1000
# One fan-out at a time (a transaction-level advisory lock, rules.EVALUATION_LOCK's
# neighbour): a second pass waits for the first to commit, then joins the pending emails
# it made. Running beside it, it would skip them (locked) and make a second email about
# the same conference. The lock is the transaction's first, so a pass waiting for it
# holds no row lock anyone could wait for.
FAN_OUT_LOCK = 7_120_013
# What counts as a change for flapping.
FLAP_KINDS = (EventKind.STATE_CHANGED, EventKind.HOLD_CHANGED, EventKind.MUTE_CHANGED)


def run_pass(*, now=None, rules_too=True):
    """One synchronous pass: fan out what is new, then send what is due. The rules are
    evaluated first unless `rules_too` is False (beat's send_alerts: its own task
    evaluates them every CONFWATCH_RULE_SECONDS)."""
    summary = fan_out(now=now, rules_too=rules_too)
    sent = sender.send_pending(now=now)
    summary.sent, summary.failed, summary.retrying = sent.sent, sent.failed, sent.retrying
    return summary


# --------------------------------------------------------------------------- fan-out


def fan_out(*, now=None, rules_too=True):
    now = now or timezone.now()
    problems.report_lasting_problems(now=now)
    if rules_too:
        rules.evaluate(now=now)
    summary = sender.PassSummary()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FAN_OUT_LOCK])
        events = list(
            Event.objects.filter(handled_at__isnull=True)
            .select_related("conference", "account")
            .order_by("id")
            .select_for_update(skip_locked=True, of=("self",))[:FAN_OUT_BATCH]
        )
        summary.events = len(events)
        chosen = list(subscriptions.with_scope(Subscription.objects.all()))
        wanted_by = {event.pk: [s for s in chosen if wants(s, event)] for event in events}
        # The conferences whose flapping may be checked (and their row written).
        lock_conference_rows(
            e.conference_id for e in events if e.kind in FLAP_KINDS and wanted_by[e.pk]
        )
        outbox = Outbox(now=now)
        outbox.load(
            {(s.pk, e.conference_id) for e in events for s in wanted_by[e.pk]},
            emails={s.email for wanted in wanted_by.values() for s in wanted},
        )
        silencer = acknowledgements.Silencer(events, now=now)
        for event in events:
            # First, as a state change ends an acknowledgement whoever wants it.
            if silencer.silences(event):
                continue
            wanted = wanted_by[event.pk]
            if not wanted:
                continue
            if outbox.held_for_maintenance(wanted, [event]):
                continue
            if event.kind in FLAP_KINDS and absorbed_by_flapping(event, wanted, outbox, now):
                continue
            for subscription in wanted:
                outbox.add(subscription, event)
        Event.objects.filter(pk__in=[e.pk for e in events]).update(handled_at=now)
        report_settled(chosen, outbox, now)
        outbox.write_links()
        summary.deliveries = outbox.created
    return summary


def lock_conference_rows(pks):
    """Lock these conference rows in primary key order, the one order every writer of
    conference rows uses (observations.lock_conferences locks a round's rows so): in any
    other order, two transactions could each wait for a row the other holds."""
    pks = sorted({pk for pk in pks if pk is not None})
    if pks:
        list(
            Conference.objects.filter(pk__in=pks)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )


def wants(subscription, event):
    """Does the subscription ask for this event?"""
    if event.kind not in subscription.event_kinds():
        return False
    if event.kind in rules.EVENT_KINDS:
        # A rule fires and resolves for the subscription that chose it, only.
        return event.detail.get("subscription") == subscription.pk
    if not subscriptions.covers(subscription, event.conference, account_pk=event.account_id):
        return False
    if event.kind == EventKind.MEMBERS_CHANGED:
        return crosses_threshold(subscription, event.before, event.after)
    return True


def crosses_threshold(subscription, before, after):
    """Members changes alert on every change, unless the subscription set a threshold:
    then only when the count drops to `members_at_most` or rises above `members_above`."""
    at_most, above = subscription.members_at_most, subscription.members_above
    if at_most is None and above is None:
        return True
    if before is None or after is None:
        return False
    dropped = at_most is not None and before > at_most >= after
    rose = above is not None and before <= above < after
    return dropped or rose


class Outbox:
    """Adds events to deliveries within the fan-out transaction."""

    def __init__(self, *, now):
        self.now = now
        self.created = 0
        self.pending = {}  # (subscription pk, conference pk, kind) -> Delivery
        self.messages = grouping.MessageCount(now=now)
        self.covering = maintenance.Covering(now=now)
        self.last_sent = {}  # (subscription pk, conference pk) -> sent within coalescing
        self.last_message = {}  # subscription pk -> grouped message sent within the window
        self.links = set()  # (delivery pk, event pk), written by write_links

    def load(self, pairs, *, emails):
        """What the pass needs of these (subscription pk, conference pk) pairs, read in a
        few queries rather than a few per event: their pending change emails (locked, so
        that no sender takes one before the events added to it are committed; one a
        sender is claiming is left, and a new one made), their last sends within the
        coalescing and group windows, and the recipients' (emails) messages this hour."""
        if not pairs:
            return
        self.messages.load(emails)
        subscription_pks = {pk for pk, _ in pairs}
        conference_pks = {pk for _, pk in pairs}
        joinable = (
            Delivery.objects.filter(
                of_conferences(conference_pks),
                subscription_id__in=subscription_pks,
                kind=Delivery.Kind.CHANGE,
                status=DeliveryStatus.PENDING,
                claim_token__isnull=True,
            )
            .order_by("-pk")  # the oldest last: it is the one joined
            .select_for_update(no_key=True, skip_locked=True)
        )
        for delivery in joinable:
            key = (delivery.subscription_id, delivery.conference_id)
            if key in pairs:
                self.pending[key] = delivery
        self.last_sent = last_conference_sends(subscription_pks, conference_pks, self.now)
        self.last_message = grouping.last_messages(subscription_pks, self.now)

    def held_for_maintenance(self, subscriptions, events):
        """During a maintenance window over the events' conference (or account), they
        join each subscription's summary of it instead (maintenance.py)."""
        return all(maintenance.hold(self, subscription, events) for subscription in subscriptions)

    def add(self, subscription, event):
        """Add the event to the subscription's pending email about its conference, or
        to a new one (or, past the hourly cap, to the recipient's digest; in its quiet
        hours, to the summary sent when they end, or nowhere if it drops them)."""
        if in_quiet_hours(subscription, self.now):
            if not subscription.quiet_drop:
                self.add_to(self.quiet_summary_for(subscription), [event])
            return
        key = (subscription.pk, event.conference_id)
        delivery = self.pending.get(key)
        send_after = None
        if delivery is None:
            send_after = max(
                first_send_time(self.last_sent.get(key), self.now),
                grouping.next_message_time(self.last_message.get(subscription.pk), self.now),
            )
        if delivery is None and not self.messages.has_room(subscription.email, send_after):
            delivery = self.digest_for(subscription)
        elif delivery is None:
            delivery = self.new_delivery(
                subscription, event.conference_id, Delivery.Kind.CHANGE, send_after=send_after
            )
            self.messages.take(subscription.email, send_after)
            self.pending[key] = delivery
        else:
            self.pending[key] = delivery
        self.add_to(delivery, [event])

    def new_delivery(self, subscription, conference_pk, kind, *, send_after):
        self.created += 1
        return Delivery.objects.create(
            kind=kind,
            subscription=subscription,
            email=subscription.email,
            conference_id=conference_pk,
            send_after=send_after,
        )

    def add_to(self, delivery, events):
        self.links.update((delivery.pk, event.pk) for event in events)

    def write_links(self):
        """Link every delivery to its events, in one INSERT of many rows (ignoring a link
        that exists) at the end of the pass, not two queries for each."""
        through = Delivery.events.through
        links = [through(delivery_id=d, event_id=e) for d, e in sorted(self.links)]
        through.objects.bulk_create(links, ignore_conflicts=True, batch_size=2000)
        self.links.clear()

    def digest_for(self, subscription):
        """The recipient's pending digest, sent when the hour of the cap is over."""
        key = (subscription.email, "digest")
        delivery = self.pending.get(key)
        if delivery is None:
            delivery = (
                Delivery.objects.filter(
                    email=subscription.email,
                    kind=Delivery.Kind.DIGEST,
                    status=DeliveryStatus.PENDING,
                    claim_token__isnull=True,
                )
                .order_by("pk")
                .first()
            )
        if delivery is None:
            oldest = (
                Delivery.objects.filter(
                    email=subscription.email, sent_at__gte=self.now - timedelta(hours=1)
                )
                .order_by("sent_at")
                .values_list("sent_at", flat=True)
                .first()
            )
            send_after = (oldest or self.now) + timedelta(hours=1)
            delivery = self.new_delivery(
                subscription, None, Delivery.Kind.DIGEST, send_after=send_after
            )
        self.pending[key] = delivery
        return delivery

    def add_report(self, subscription, conference_pk, kind, events):
        """A flapping or settled email now; in quiet hours, its events join the summary
        (or are dropped); in a maintenance window, they join its summary."""
        if self.held_for_maintenance([subscription], events):
            return
        if in_quiet_hours(subscription, self.now):
            if not subscription.quiet_drop:
                self.add_to(self.quiet_summary_for(subscription), events)
            return
        delivery = self.new_delivery(subscription, conference_pk, kind, send_after=self.now)
        self.add_to(delivery, events)

    def quiet_summary_for(self, subscription):
        """The subscription's pending quiet hours summary, sent when they end."""
        key = (subscription.pk, "quiet")
        delivery = self.pending.get(key) or (
            Delivery.objects.filter(
                subscription=subscription,
                kind=Delivery.Kind.QUIET,
                status=DeliveryStatus.PENDING,
                claim_token__isnull=True,
            )
            .order_by("pk")
            .first()
        )
        if delivery is None:
            zone = emails.zone_for(subscription)
            ends = schedules.window_end(
                subscription.quiet_start, subscription.quiet_end, self.now, zone
            )
            delivery = self.new_delivery(subscription, None, Delivery.Kind.QUIET, send_after=ends)
        self.pending[key] = delivery
        return delivery


def in_quiet_hours(subscription, now):
    return schedules.in_window(
        subscription.quiet_start, subscription.quiet_end, now, emails.zone_for(subscription)
    )


def of_conferences(conference_pks):
    """Deliveries about these conferences; None among them stands for an account's
    events, which have no conference (`__in` alone would drop it)."""
    about = Q(conference_id__in=[pk for pk in conference_pks if pk is not None])
    if None in conference_pks:
        about |= Q(conference_id__isnull=True)
    return about


def last_conference_sends(subscription_pks, conference_pks, now):
    """(subscription pk, conference pk) -> its last email sent within the coalescing
    window; older ones do not delay the next."""
    window = settings.CONFWATCH_ALERT_COALESCE_SECONDS
    if window <= 0:
        return {}
    rows = (
        Delivery.objects.filter(
            of_conferences(conference_pks),
            subscription_id__in=subscription_pks,
            sent_at__gt=now - timedelta(seconds=window),
        )
        .values_list("subscription_id", "conference_id")
        .annotate(last=Max("sent_at"))
    )
    return {(subscription_pk, conference_pk): last for subscription_pk, conference_pk, last in rows}


def first_send_time(last_sent, now):
    """At once for a quiet conference; otherwise when the coalescing window after the
    previous email to this subscription about this conference (`last_sent`) closes."""
    if last_sent is None:
        return now
    return max(now, last_sent + timedelta(seconds=settings.CONFWATCH_ALERT_COALESCE_SECONDS))


def absorbed_by_flapping(event, wanted, outbox, now):
    """True when the event's conference flaps: the first time, one flapping email goes
    to each subscriber; while it flaps, changes wait for the settled email. Its row is
    locked already (lock_conference_rows)."""
    conference = Conference.objects.get(pk=event.conference_id)
    if conference.flapping_since is not None:
        return True
    window_start = event.occurred_at - timedelta(seconds=settings.CONFWATCH_FLAP_WINDOW_SECONDS)
    recent = list(
        Event.objects.filter(
            conference=conference, kind__in=FLAP_KINDS, occurred_at__gte=window_start
        ).order_by("occurred_at", "pk")
    )
    if len(recent) <= settings.CONFWATCH_FLAP_CHANGES:
        return False
    conference.flapping_since = event.occurred_at
    conference.save(update_fields=["flapping_since"])
    for subscription in wanted:
        outbox.add_report(subscription, conference.pk, Delivery.Kind.FLAPPING, recent)
    logger.info("conference %s is flapping: %d changes", conference.conference_id, len(recent))
    return True


def report_settled(subscriptions, outbox, now):
    """Conferences that flapped and then had no change for a whole flapping window have
    settled: one email each to their subscribers, summing up what happened."""
    quiet_since = now - timedelta(seconds=settings.CONFWATCH_FLAP_WINDOW_SECONDS)
    flapping = (
        Conference.objects.filter(flapping_since__isnull=False)
        .order_by("pk")
        .select_for_update(skip_locked=True)
    )
    settled = 0
    for conference in flapping:
        events = list(
            Event.objects.filter(
                conference=conference,
                kind__in=FLAP_KINDS,
                occurred_at__gte=conference.flapping_since,
            ).order_by("occurred_at", "pk")
        )
        if events and events[-1].occurred_at > quiet_since:
            continue
        for subscription in subscriptions:
            if any(wants(subscription, event) for event in events):
                outbox.add_report(subscription, conference.pk, Delivery.Kind.SETTLED, events)
                settled += 1
        conference.flapping_since = None
        conference.save(update_fields=["flapping_since"])
    return settled

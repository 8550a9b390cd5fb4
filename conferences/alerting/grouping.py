"""Grouped alerts: what reaches one target at once goes out as one message.

- The fan-out (fanout.py) makes a change delivery due at once for a target that got no
  message in the last CONFWATCH_ALERT_GROUP_SECONDS, otherwise when that window closes
  (`next_message_time`), on top of the per-conference coalescing window: so every alert
  for a target within the window is due at the same moment. The hourly cap counts
  messages, not deliveries (`MessageCount`).
- The sender (sender.py) sends the change deliveries of one target it claimed together
  (`batches`) as one message listing every conference (`build_message`), under the
  first delivery's Message-ID, and records the result on each: every delivery keeps its
  conference, its log line and its acknowledge link, and the claims and leases work as
  for one delivery (each is renewed, and only the renewed are sent).
- One account's polling problem (credentials rejected, API unreachable, rate limited,
  the account not pollable) is told once, about the account, with the count and the
  first ACCOUNT_NAMED conferences, when the account itself reported it (the account
  is paused: all its polled conferences are affected) or when ACCOUNT_MIN or more of its
  conferences report it in one message; its recovery likewise.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max, Prefetch, prefetch_related_objects

from conferences.alerting import acknowledgements, emails
from conferences.models import (
    Conference,
    Delivery,
    DeliveryStatus,
    Event,
    EventKind,
    PollStatus,
    polled_q,
)
from conferences.text import local_text

# Delivery kinds one message may hold several of.
GROUPED = (Delivery.Kind.CHANGE,)
# Polling problems of one account that are told about the account, not per conference.
ACCOUNT_WIDE = (
    PollStatus.CREDENTIALS_REJECTED,
    PollStatus.UNREACHABLE,
    PollStatus.RATE_LIMITED,
    PollStatus.ACCOUNT_ERROR,
)
# From this many conferences of one account with the same problem, one account section.
ACCOUNT_MIN = 3
# How many of them the account section names.
ACCOUNT_NAMED = 5


def group_window():
    return timedelta(seconds=settings.CONFWATCH_ALERT_GROUP_SECONDS)


def grouping_on():
    return group_window() > timedelta(0)


# --------------------------------------------------------------------------- fan-out


def last_messages(subscription_pks, now):
    """Subscription pk -> when its last grouped message was sent, within the group window
    (an older one does not delay the next)."""
    if not grouping_on():
        return {}
    rows = (
        Delivery.objects.filter(
            subscription_id__in=subscription_pks,
            kind__in=GROUPED,
            sent_at__gt=now - group_window(),
        )
        .values_list("subscription_id")
        .annotate(last=Max("sent_at"))
    )
    return dict(rows)


def next_message_time(last_sent, now):
    """When the target's next message may go: at once, or when the group window after
    its last message (`last_sent`, from last_messages) closes."""
    if not grouping_on() or last_sent is None:
        return now
    return max(now, last_sent + group_window())


class MessageCount:
    """The hourly cap in messages: deliveries sent together (one sent_at) or due together
    (one send_after) to one recipient are one message."""

    def __init__(self, *, now):
        self.now = now
        self.room = {}  # email -> messages it may still get this hour
        self.due = {}  # email -> send times of its pending messages

    def load(self, emails):
        """Read the recipients' last hour in two queries, whatever their number (a busy
        hour's pass has hundreds: make bench-desk); one already read is kept."""
        emails = set(emails) - self.room.keys()
        if not emails:
            return
        hour_ago = self.now - timedelta(hours=1)
        recent = Delivery.objects.filter(email__in=emails).exclude(kind=Delivery.Kind.DIGEST)
        sent = dict(
            recent.filter(sent_at__gte=hour_ago)
            .values_list("email")
            .annotate(messages=Count("sent_at", distinct=True))
            .order_by()
        )
        grouped = {email: [] for email in emails}
        other_pending = dict.fromkeys(emails, 0)
        pending = recent.filter(status=DeliveryStatus.PENDING, created_at__gte=hour_ago)
        for email, kind, send_after in pending.values_list("email", "kind", "send_after"):
            if kind in GROUPED:
                grouped[email].append(send_after)
            else:
                other_pending[email] += 1
        for email in emails:
            self.due[email] = set(grouped[email])
            messages = len(self.due[email]) if grouping_on() else len(grouped[email])
            self.room[email] = (
                settings.CONFWATCH_ALERT_HOURLY_CAP
                - sent.get(email, 0)
                - messages
                - other_pending[email]
            )

    def has_room(self, email, send_after):
        """Whether a new delivery due at send_after may go: it joins a message due then,
        or the recipient may get another message this hour."""
        self.load([email])
        return self.joins(email, send_after) or self.room[email] > 0

    def joins(self, email, send_after):
        return grouping_on() and send_after in self.due[email]

    def take(self, email, send_after):
        if not self.joins(email, send_after):
            self.due[email].add(send_after)
            self.room[email] -= 1


# --------------------------------------------------------------------------- sender


def batches(claimed):
    """The claimed deliveries as lists sent as one message each: the grouped kinds of
    one subscription together (in the order claimed), every other delivery alone; each
    alone when CONFWATCH_ALERT_GROUP_SECONDS is 0 (grouping off)."""
    together, found = {}, []
    for delivery in claimed:
        if grouping_on() and delivery.kind in GROUPED and delivery.subscription_id is not None:
            key = delivery.subscription_id
            if key not in together:
                together[key] = []
                found.append(together[key])
            together[key].append(delivery)
        else:
            found.append([delivery])
    return found


@dataclass(frozen=True)
class Section:
    """One conference in a grouped message."""

    name: str
    url: str
    acknowledge_url: str
    events: tuple


@dataclass(frozen=True)
class AccountSection:
    """One account's problem (or recovery) across its conferences."""

    headline: str
    lines: tuple


def build_message(deliveries):
    """The one email for deliveries sent together (emails.build_message for one)."""
    context = group_context(deliveries)
    if context is None:
        return emails.build_message(deliveries[0])
    return emails.message_for(deliveries[0], context)


def group_context(deliveries, *, channel=False):
    """The framed context (emails.framed) of deliveries sent together as one message, for
    an email or (channel=True) a channel; None where one delivery says it alone."""
    first = deliveries[0]
    if first.kind not in GROUPED or (len(deliveries) == 1 and first.conference_id is not None):
        return None
    zone = emails.zone_for(first.subscription)
    # Every delivery's events in one query, not one each (a busy hour's pass sends
    # hundreds of grouped deliveries: make bench-desk).
    ordered = Event.objects.select_related("conference", "account").order_by("occurred_at", "id")
    prefetch_related_objects(deliveries, Prefetch("events", queryset=ordered))
    by_delivery = [(delivery, list(delivery.events.all())) for delivery in deliveries]
    accounts, told = account_sections(by_delivery, zone)
    sections = []
    for delivery, events in by_delivery:
        left = [event for event in events if event.pk not in told]
        if not left:
            continue
        conference = delivery.conference or emails.first_conference(left)
        sections.append(
            Section(
                name=emails.source_name(conference, left),
                url=emails.conference_url(conference),
                acknowledge_url=acknowledgements.acknowledge_url(delivery),
                events=tuple(emails.event_view(event, zone) for event in left),
            )
        )
    count = sum(len(events) for _, events in by_delivery)
    conferences = {d.conference_id or f"account-{e[0].account_id}" for d, e in by_delivery if e}
    context = {
        "kind": "group",
        "subject": group_subject(accounts, sections, count, len(conferences)),
        # Only an account's problem: its headline says it all.
        "intro": f"{emails.plural(count, 'alert')} about "
        f"{emails.plural(len(conferences), 'conference')}"
        if sections
        else "",
        "accounts": accounts,
        "sections": sections,
        "acknowledge_url": "",
        "alert_events": [event for _, events in by_delivery for event in events],
    }
    return emails.framed(first, context, zone=zone, channel=channel)


def account_sections(by_delivery, zone):
    """The account-wide problems and recoveries among the events, as sections, and the
    pks of the events they tell."""
    runs = {}  # (account, kind, status) -> [(conference or None, event)]
    for _, events in by_delivery:
        for event in events:
            if event.kind not in (EventKind.POLLING_PROBLEM, EventKind.POLLING_RECOVERED):
                continue
            detail = event.detail if isinstance(event.detail, dict) else {}
            status = detail.get("poll_status") or (
                event.after if event.kind == EventKind.POLLING_PROBLEM else event.before
            )
            if status not in ACCOUNT_WIDE:
                continue
            runs.setdefault((event.account_id, event.kind, status), []).append(event)
    sections, told = [], set()
    for (account_pk, kind, status), events in runs.items():
        conferences = []
        for event in events:
            if event.conference is not None and event.conference not in conferences:
                conferences.append(event.conference)
        own = any(event.conference is None for event in events)
        if own:
            # The account's own problem stops every conference it polls.
            polled = Conference.objects.filter(polled_q(), account_id=account_pk)
            conferences += [c for c in polled.order_by("pk") if c not in conferences]
        elif len(conferences) < ACCOUNT_MIN:
            continue
        told.update(event.pk for event in events)
        account = events[0].account.name
        label = emails.poll_label(status)
        counted = emails.plural(len(conferences), "conference")
        if kind == EventKind.POLLING_PROBLEM:
            headline = f"account {account}: {label} for {counted}"
        else:
            headline = f"account {account}: polling recovered ({label} is over) for {counted}"
        named = [emails.source_name(c, []) for c in conferences[:ACCOUNT_NAMED]]
        if len(conferences) > ACCOUNT_NAMED:
            named.append(f"and {len(conferences) - ACCOUNT_NAMED} more")
        lines = [
            "Conferences: " + ", ".join(named),
            f"Observed at {local_text(events[0].occurred_at, zone=zone, named=True)}",
        ]
        message = next(
            (
                e.detail.get("message")
                for e in events
                if isinstance(e.detail, dict) and e.detail.get("message")
            ),
            "",
        )
        if message and kind == EventKind.POLLING_PROBLEM:
            lines.append(f"Message: {message}")
        sections.append(AccountSection(headline=headline, lines=tuple(lines)))
    return sections, told


def group_subject(accounts, sections, count, conferences):
    prefix = emails.SUBJECT_PREFIX
    if accounts and not sections:
        if len(accounts) == 1:
            return f"{prefix} {accounts[0].headline}"
        return f"{prefix} {accounts[0].headline} (+{len(accounts) - 1} more)"
    if len(sections) == 1 and not accounts:
        return f"{prefix} {sections[0].name}: {emails.plural(count, 'alert')}"
    return (
        f"{prefix} {emails.plural(count, 'alert')} about {emails.plural(conferences, 'conference')}"
    )

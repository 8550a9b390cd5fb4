"""Alert emails: one delivery (a row of the outbox) becomes one message, ready to send.

`build_message(delivery)` only builds: it sends nothing and makes no request. What each
email says (its subject, the words for each change, the times in the recipient's zone)
is decided here; templates/emails/alert.txt and alert.html only lay it out, the HTML one
escaped by the template engine.

What each kind of delivery says:
- change: one or more changes of one conference (or one account's polling problem),
  each with its before and after values, when it was observed and what else is known.
- flapping: the conference changes too often; the changes so far, and that further
  changes are held until it settles.
- settled: it stopped flapping; its status now and what happened in between.
- digest: the alerts held back by the hourly cap, grouped by conference.
- quiet, maintenance: what was held during quiet hours or a maintenance window, by
  conference, and what is still wrong.
- test: the "send test message" action: that alerts reach this recipient.
Several change deliveries to one email target due together go out as one message
(grouping.py, through `framed` and `message_for`).
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from conferences.alerting import acknowledgements
from conferences.alerting.unsubscribe import unsubscribe_url
from conferences.models import Delivery, EventKind, PollStatus, RuleState
from conferences.text import between_text, duration_text, local_text, parse_time

SUBJECT_PREFIX = "[confwatch]"
# Longest subject; a longer one is cut with an ellipsis.
SUBJECT_MAX = 150
# Longest conference label in a subject (the body has it whole).
SUBJECT_LABEL_MAX = 60
# How many changes a coalesced email's subject names; the rest are counted.
SUBJECT_CHANGES = 2
UNKNOWN = "unknown"

# What the body calls a changed value, by event kind.
VALUE_NAMES = {
    EventKind.STATE_CHANGED: "State",
    EventKind.MEMBERS_CHANGED: "Active members",
    EventKind.HOLD_CHANGED: "Hold",
    EventKind.MUTE_CHANGED: "Mute",
    EventKind.POLLING_PROBLEM: "Polling",
    EventKind.POLLING_RECOVERED: "Polling",
    EventKind.RULE_FIRED: "Rule",
    EventKind.RULE_RESOLVED: "Resolved",
}


@dataclass(frozen=True)
class EventView:
    """One event as the email tells it. `before` is None when there is no before."""

    what: str
    before: str | None
    after: str
    observed_at: str
    # "between 19:23:21 and 19:23:31 CET" for a change seen by polling, else "".
    between: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Group:
    """The events of one conference (or one account) in a digest."""

    name: str
    url: str
    events: tuple[EventView, ...]


def build_message(delivery):
    """The email for a delivery: plain text with an HTML alternative, its Message-ID
    the delivery's (the same on every try), with a one-click unsubscribe link while the
    subscription exists."""
    return message_for(delivery, alert_context(delivery))


def message_for(delivery, context):
    """The email of a framed context (framed), to the delivery's recipient under the
    delivery's Message-ID. Grouping (grouping.py) sends several deliveries as one
    message through it."""
    headers = {"Message-ID": delivery.message_id, "Auto-Submitted": "auto-generated"}
    if context["unsubscribe_url"]:
        headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=context["subject"],
        body=alert_text(context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.email],
        headers=headers,
    )
    html = printable(render_to_string("emails/alert.html", context))
    message.attach_alternative(html, "text/html")
    return message


def alert_context(delivery, *, channel=False):
    """What a delivery says, for its email or (channel=True) its channel message: the
    subject, its heading (the subject without the prefix), the events in words, the
    links."""
    events = list(
        delivery.events.select_related("conference", "account").order_by("occurred_at", "id")
    )
    zone = zone_for(delivery.subscription)
    context = BUILDERS[delivery.kind](delivery, events, zone)
    context.update(
        kind=delivery.kind,
        acknowledge_url=acknowledgements.acknowledge_url(delivery),
        alert_events=events,
    )
    return framed(delivery, context, zone=zone, channel=channel)


def framed(delivery, context, *, zone, channel=False):
    """A built context (its kind, subject and body values) with what every message
    carries: the clean subject and heading, the zone, the subscription and its
    unsubscribe link. A channel message has no unsubscribe link: whoever reads the
    channel could follow it."""
    subscription = delivery.subscription
    subject = clean_subject(context["subject"])
    context.update(
        subject=subject,
        heading=subject.removeprefix(SUBJECT_PREFIX).strip(),
        zone=zone.key,
        subscription=subscription,
        unsubscribe_url=unsubscribe_url(subscription) if subscription and not channel else "",
        channel=channel,
    )
    return context


def alert_text(context):
    """The plain text of an alert (an email's body, a channel message's)."""
    return tidy_text(printable(render_to_string("emails/alert.txt", context)))


# What each kind of delivery says: its subject and the template context.


def change_context(delivery, events, zone):
    conference = delivery.conference or first_conference(events)
    name = source_name(conference, events)
    changes = [short_change(event) for event in events] or ["no details left"]
    subject = ", ".join(changes[:SUBJECT_CHANGES])
    if len(changes) > SUBJECT_CHANGES:
        subject += f" (+{len(changes) - SUBJECT_CHANGES} more)"
    return {
        "subject": f"{SUBJECT_PREFIX} {subject_name(conference, events)}: {subject}",
        "name": name,
        "conference_url": conference_url(conference),
        "events": [event_view(event, zone) for event in events],
    }


def flapping_context(delivery, events, zone):
    conference = delivery.conference or first_conference(events)
    window = timedelta(seconds=settings.CONFWATCH_FLAP_WINDOW_SECONDS)
    if len(events) > 1:
        window = max(window, events[-1].occurred_at - events[0].occurred_at)
    changes = plural(len(events), "change")
    return {
        "subject": f"{SUBJECT_PREFIX} {subject_name(conference, events)} is flapping: "
        f"{changes} in {duration_text(window)}",
        "name": source_name(conference, events),
        "conference_url": conference_url(conference),
        "changes": changes,
        "window": duration_text(window),
        "events": [event_view(event, zone) for event in events],
    }


def settled_context(delivery, events, zone):
    conference = delivery.conference or first_conference(events)
    state = shown(conference.state) if conference else UNKNOWN
    members = members_phrase(conference.active_members) if conference else members_phrase(None)
    counts = {}
    for event in events:
        label = event.get_kind_display()
        counts[label] = counts.get(label, 0) + 1
    return {
        "subject": f"{SUBJECT_PREFIX} {subject_name(conference, events)} has settled: "
        f"{state}, {members}",
        "name": source_name(conference, events),
        "conference_url": conference_url(conference),
        "state": state,
        "members": members,
        "changes": plural(len(events), "change"),
        "counts": [f"{label}: {count}" for label, count in counts.items()],
        "first_at": local_text(events[0].occurred_at, zone=zone, named=True) if events else "",
        "last_at": local_text(events[-1].occurred_at, zone=zone, named=True) if events else "",
        "events": [event_view(event, zone) for event in events],
    }


def digest_context(delivery, events, zone):
    groups = {}
    for event in events:
        key = (
            ("conference", event.conference_id)
            if event.conference_id
            else ("account", event.account_id)
        )
        groups.setdefault(key, []).append(event)
    alerts = plural(len(events), "alert")
    return {
        "subject": f"{SUBJECT_PREFIX} Digest: {alerts} held back by the hourly cap",
        "alerts": alerts,
        "groups": [
            Group(
                name=source_name(group[0].conference, group),
                url=conference_url(group[0].conference),
                events=tuple(event_view(event, zone) for event in group),
            )
            for group in groups.values()
        ],
    }


@dataclass(frozen=True)
class QuietGroup:
    """One conference in a quiet hours summary: how it is now, and what happened."""

    name: str
    url: str
    outcome: str
    events: tuple[EventView, ...]


TROUBLE_KINDS = (EventKind.RULE_FIRED, EventKind.POLLING_PROBLEM)


def quiet_context(delivery, events, zone):
    """Everything held in the quiet hours, by conference: a conference still in trouble
    (a fired rule not resolved, failing polls) says so; one that had trouble and no
    longer has is "recovered during quiet hours"."""
    groups = {}
    for event in events:
        key = event.conference_id or f"account-{event.account_id}"
        groups.setdefault(key, []).append(event)
    open_rules = {}
    if delivery.subscription_id is not None:
        states = RuleState.objects.filter(
            subscription_id=delivery.subscription_id,
            fired_at__isnull=False,
            resolved_at__isnull=True,
        )
        for state in states:
            open_rules.setdefault(state.conference_id, []).append(state.rule)
    quiet_groups, troubled = [], 0
    for group in groups.values():
        conference = group[0].conference
        trouble = []
        if conference is not None:
            trouble = [rule.replace("_", " ") for rule in sorted(open_rules.get(conference.pk, []))]
            if conference.poll_status not in (PollStatus.OK, PollStatus.PENDING):
                trouble.append(f"polling problem ({poll_label(conference.poll_status)})")
        if trouble:
            troubled += 1
            now = f"{shown(conference.state)}, {members_phrase(conference.active_members)}"
            outcome = f"Still in trouble: {', '.join(trouble)}. Now {now}."
        elif any(event.kind in TROUBLE_KINDS for event in group):
            outcome = "Recovered during quiet hours."
        elif conference is not None:
            now = f"{shown(conference.state)}, {members_phrase(conference.active_members)}"
            outcome = f"Now {now}."
        else:
            outcome = ""
        quiet_groups.append(
            QuietGroup(
                name=source_name(conference, group),
                url=conference_url(conference),
                outcome=outcome,
                events=tuple(event_view(event, zone) for event in group),
            )
        )
    conferences = plural(len(quiet_groups), "conference")
    subject = f"{SUBJECT_PREFIX} Quiet hours summary: {plural(len(events), 'alert')} about "
    subject += f"{conferences}"
    if troubled:
        subject += f", {troubled} still in trouble"
    return {"subject": subject, "alerts": plural(len(events), "alert"), "groups": quiet_groups}


def test_context(delivery, events, zone):
    subscription = delivery.subscription
    return {
        "subject": f"{SUBJECT_PREFIX} Test message: alerts reach "
        f"{subscription.email if subscription else delivery.email}",
        "kinds": ", ".join(subscription.kinds) if subscription else "",
        "scope": subscription.describe_scope() if subscription else "",
    }


def maintenance_context(delivery, events, zone):
    # maintenance.py builds its summary on quiet_context: imported here, not above.
    from conferences.alerting import maintenance

    return maintenance.summary_context(delivery, events, zone)


BUILDERS = {
    Delivery.Kind.CHANGE: change_context,
    Delivery.Kind.FLAPPING: flapping_context,
    Delivery.Kind.SETTLED: settled_context,
    Delivery.Kind.DIGEST: digest_context,
    Delivery.Kind.QUIET: quiet_context,
    Delivery.Kind.TEST: test_context,
    Delivery.Kind.MAINTENANCE: maintenance_context,
}


# One event in words.


def short_change(event):
    """The change as a subject names it: `created -> active`, `hold on`."""
    kind, before, after = event.kind, event.before, event.after
    if kind == EventKind.STATE_CHANGED:
        return f"{shown(before)} -> {shown(after)}"
    if kind == EventKind.MEMBERS_CHANGED:
        return f"members {shown(before)} -> {shown(after)}"
    if kind == EventKind.HOLD_CHANGED:
        return f"hold {shown(after)}"
    if kind == EventKind.MUTE_CHANGED:
        return f"mute {shown(after)}"
    if kind == EventKind.FIRST_OBSERVED:
        return f"first observed: {shown(after)}"
    if kind == EventKind.POLLING_PROBLEM:
        return f"polling problem: {poll_label(event.detail.get('poll_status', after))}"
    if kind == EventKind.POLLING_RECOVERED:
        return "polling recovered"
    if kind == EventKind.RULE_FIRED:
        return f"{rule_label(event)}: {event.detail.get('text', '')}"
    if kind == EventKind.RULE_RESOLVED:
        if event.detail.get("rule") == "schedule":
            return str(event.detail.get("text", "resolved"))
        return f"resolved: {rule_label(event)}"
    return event.get_kind_display()


def rule_label(event):
    rule = event.detail.get("rule", "") if isinstance(event.detail, dict) else ""
    return rule.replace("_", " ") or "rule"


def event_view(event, zone):
    detail = event.detail if isinstance(event.detail, dict) else {}
    kind = event.kind
    facts = []
    if kind == EventKind.FIRST_OBSERVED:
        what, before = "First observed", None
        after = (
            f"{shown(detail.get('state', event.after))}, "
            f"{members_phrase(detail.get('active_members'))}, "
            f"hold {shown(detail.get('hold'))}, mute {shown(detail.get('mute'))}"
        )
    elif kind in (EventKind.POLLING_PROBLEM, EventKind.POLLING_RECOVERED):
        what, before, after = "Polling", poll_label(event.before), poll_label(event.after)
    elif kind in (EventKind.RULE_FIRED, EventKind.RULE_RESOLVED):
        what = f"{VALUE_NAMES[kind]} {rule_label(event)}"
        before, after = None, str(detail.get("text", ""))
        facts.extend(rule_facts(event, detail, zone))
    else:
        what = VALUE_NAMES.get(kind, event.get_kind_display())
        before, after = shown(event.before), shown(event.after)

    if kind == EventKind.STATE_CHANGED:
        since = parse_time(detail.get("previous_state_since"))
        if since is not None:
            lasted = duration_text(event.occurred_at - since)
            facts.append(f"The previous state ({before}) lasted {lasted}.")
    if kind in (EventKind.STATE_CHANGED, EventKind.HOLD_CHANGED, EventKind.MUTE_CHANGED):
        facts.append(f"Active members: {shown(detail.get('active_members'))}.")
    if kind == EventKind.POLLING_PROBLEM:
        if detail.get("message"):
            facts.append(f"Message: {detail['message']}")
        since = parse_time(detail.get("since"))
        if since is not None:
            facts.append(f"Failing since {local_text(since, zone=zone, named=True)}.")
    if kind == EventKind.POLLING_RECOVERED:
        since = parse_time(detail.get("since"))
        if since is not None:
            lasted = duration_text(event.occurred_at - since)
            at = local_text(since, zone=zone, named=True)
            facts.append(f"The problem lasted {lasted}, since {at}.")

    between = ""
    if event.previous_observed_at is not None and event.source == "poll":
        between = between_text(event.previous_observed_at, event.occurred_at, zone=zone)
    return EventView(
        what=what,
        before=before,
        after=after,
        observed_at=local_text(event.occurred_at, zone=zone, named=True),
        between=between,
        facts=tuple(facts),
    )


def rule_facts(event, detail, zone):
    """Since when the rule's condition held and what clears it (or what cleared it)."""
    facts = []
    since = parse_time(detail.get("since"))
    if event.kind == EventKind.RULE_FIRED:
        facts.append(f"The rule {rule_label(event)} fired.")
        if since is not None:
            held = duration_text(event.occurred_at - since)
            at = local_text(since, zone=zone, named=True)
            facts.append(f"The condition has held since {at} ({held}).")
        if detail.get("clears"):
            facts.append(f"It clears when {detail['clears']}.")
    else:
        fired = parse_time(detail.get("fired_at"))
        if since is not None:
            held = duration_text(event.occurred_at - since)
            at = local_text(since, zone=zone, named=True)
            facts.append(f"The condition held from {at} for {held}.")
        if fired is None and detail.get("rule") == "schedule":
            facts.append("It started before the late alert went out.")
    facts.append(
        f"Now: {shown(detail.get('state'))}, {members_phrase(detail.get('active_members'))}."
    )
    return facts


# Names, values, times.


def first_conference(events):
    return next((event.conference for event in events if event.conference is not None), None)


def source_name(conference, events):
    """`Board call (conf-abc123)`, `conf-abc123` without a label, or `account acme`."""
    if conference is not None:
        if conference.label:
            return f"{conference.label} ({conference.conference_id})"
        return conference.conference_id
    if events:
        return f"account {events[0].account.name}"
    return "confwatch"


def subject_name(conference, events):
    if conference is not None and len(conference.label) > SUBJECT_LABEL_MAX:
        return f"{conference.label[: SUBJECT_LABEL_MAX - 1]}… ({conference.conference_id})"
    return source_name(conference, events)


def conference_url(conference):
    if conference is None:
        return ""
    return settings.CONFWATCH_BASE_URL + reverse("conferences:detail", args=[conference.pk])


def printable(text):
    """The text without invisible characters: Unicode's format characters (category Cf:
    the bidirectional overrides and isolates such as U+202E, which make a line read
    backwards, the zero-width space and joiners, the byte order mark) and control
    characters other than white space. Text from the API (a state, a member's number)
    and labels pass through it before they reach a subject or a body."""
    return "".join(
        char for char in text if char.isspace() or unicodedata.category(char) not in ("Cf", "Cc")
    )


def clean_subject(subject):
    """One visible line (a label may hold a newline), at most SUBJECT_MAX characters."""
    subject = " ".join(printable(subject).split())
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1].rstrip() + "…"
    return subject


def shown(value):
    if value is None:
        return UNKNOWN
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)


def members_phrase(count):
    if count is None:
        return "members unknown"
    return plural(count, "member")


def plural(count, word):
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def poll_label(value):
    if value is None:
        return UNKNOWN
    try:
        return PollStatus(value).label
    except ValueError:
        return str(value)


def zone_for(subscription):
    """The subscription's time zone; the site's when it has none (or a bad one)."""
    name = (subscription.time_zone if subscription is not None else "") or settings.TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def tidy_text(text):
    """The rendered text body without trailing spaces and runs of blank lines."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"

"""Rules: alerts about what should be happening and is not.

A subscription chooses rules among its kinds, with their parameters:
- not_started: the conference is still `created` `rule_after_seconds` after it was first
  observed (or after its expected start, when the subscription has a schedule);
- alone: exactly one active member for `rule_after_seconds`;
- all_held / all_muted: the conference's hold (mute) on for `rule_after_seconds`;
- members_drop: active members fall by at least `drop_percent` % within a minute while
  the conference stays active (held for `rule_after_seconds`, 0 if unset);
- schedule: expected active on `expect_schedule` ("Mon,Wed 09:00 Europe/Berlin"); it
  fires when the conference is not active `grace_seconds` after the expected start, and
  says "started late by M minutes" when it does start.

`evaluate(now=...)` runs every CONFWATCH_RULE_SECONDS (beat's evaluate_rules, which
queues an alert pass when it recorded events), and at the start of a fan-out run by
hand (`manage.py send_alerts`, fanout.run_pass). From each
conference's recent history it works out since when each rule's condition holds. When
it has held for its duration, one `rule_fired` event is recorded for that subscription;
when it clears, one `rule_resolved` event (if the subscription asked for it; always for a
late start). The events then go through the fan-out like any other: the same outbox,
coalescing, caps, acknowledgements and quiet hours.

What fired is stored (RuleState) in the transaction that records the event, so a rule
fires once per run of its condition, never again while it holds, and a restart does not
fire it twice. One evaluator runs at a time (a transaction-level advisory lock; another
pass meanwhile skips evaluation).
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q

from conferences.alerting import schedules, subscriptions
from conferences.alerting.findings import (
    HELD,
    Finding,
    find,
    find_drop,
    recent_runs,
)
from conferences.models import (
    Conference,
    ConferenceState,
    Event,
    EventKind,
    RuleState,
    Subscription,
)
from conferences.ops import metrics
from conferences.text import exact_duration_text

RULES = subscriptions.RULES
EVENT_KINDS = (EventKind.RULE_FIRED, EventKind.RULE_RESOLVED)
# Most conferences one evaluation looks at; past it, conferences with the lowest ids.
MAX_CONFERENCES = 5000
# How long after its last change a conference's history is still read for a drop.
DROP_LOOKBACK = timedelta(hours=2)
# How long after an expected start a conference can still be found late (or its late
# start reported); past it, the schedule waits for the next expected start.
LATE_WINDOW = timedelta(hours=12)
EVALUATION_LOCK = 7_120_012


def rule_names(subscription):
    return [name for name in subscription.kinds if name in RULES]


@metrics.RULE_SECONDS.time()
def evaluate(*, now):
    """Record rule_fired and rule_resolved events for what changed; return them."""
    events = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [EVALUATION_LOCK])
            if not cursor.fetchone()[0]:
                return events
        chosen = list(
            subscriptions.with_scope(Subscription.objects.filter(kinds__overlap=list(RULES)))
        )
        if not chosen:
            return events
        states = {
            (state.subscription_id, state.conference_id, state.rule): state
            for state in RuleState.objects.filter(subscription__in=chosen)
        }
        open_conferences = {key[1] for key, state in states.items() if is_open(state)}
        conferences = list(
            Conference.objects.filter(paused=False, state__isnull=False)
            .filter(~Q(state=ConferenceState.COMPLETED) | Q(pk__in=open_conferences))
            .order_by("pk")[:MAX_CONFERENCES]
        )
        expected_starts = {s.pk: expected_start(s, now) for s in chosen}
        checks = [
            (subscription, conference, rule, states.get((subscription.pk, conference.pk, rule)))
            for subscription, conference, rule in candidates(
                chosen, conferences, states, expected_starts
            )
            if subscriptions.covers(subscription, conference, account_pk=conference.account_id)
        ]
        # History is read only where a rule's answer depends on it (one query).
        runs = recent_runs(
            {
                conference.pk
                for subscription, conference, rule, state in checks
                if needs_history(rule, subscription, conference, state, expected_starts, now)
            }
        )
        drops = {}  # (conference pk, percent): the same finding for every subscription
        for subscription, conference, rule, state in checks:
            history = runs.get(conference.pk, [])
            if rule == "schedule":
                expected = expected_starts[subscription.pk]
                events.extend(
                    step_schedule(subscription, conference, history, state, expected, now)
                )
            elif is_open(state):
                if not still_holds(rule, conference, state):
                    events.extend(
                        resolve(rule, subscription, conference, state, now, clear_text(rule))
                    )
            elif rule == "members_drop":
                key = (conference.pk, subscription.drop_percent)
                if key not in drops:
                    drops[key] = find_drop(subscription.drop_percent or 0, history)
                events.extend(step(rule, subscription, conference, drops[key], state, now))
            elif HELD[rule](conference):
                finding = find(rule, subscription, history, now, expected_starts[subscription.pk])
                events.extend(step(rule, subscription, conference, finding, state, now))
        Event.objects.bulk_create(events)
    return events


def candidates(chosen, conferences, states, expected_starts):
    """The (subscription, conference, rule) triples whose evaluation can record or change
    anything, in subscription, conference (by pk), rule order: a rule fired and not
    resolved; a held rule whose condition holds on the conference's row; a members drop
    on an active conference; a schedule with an expected start. Every other triple comes
    to nothing in evaluate's branches. At a busy hour's size (100 subscriptions, 2,000
    conferences, every pass) building them all took most of a worker (make bench-desk)."""
    worth = {rule: [c for c in conferences if held(c)] for rule, held in HELD.items()}
    worth["members_drop"] = [c for c in conferences if c.state == ConferenceState.ACTIVE]
    worth["schedule"] = conferences
    by_pk = {conference.pk: conference for conference in conferences}
    opened = {}  # (subscription pk, rule): its conferences with the rule open
    for (subscription_pk, conference_pk, rule), state in states.items():
        if is_open(state) and conference_pk in by_pk:
            opened.setdefault((subscription_pk, rule), []).append(by_pk[conference_pk])
    triples = []
    for position, subscription in enumerate(chosen):
        for order, rule in enumerate(rule_names(subscription)):
            if rule == "schedule" and expected_starts[subscription.pk] is None:
                continue  # step_schedule has nothing to do without an expected start
            seen = set()
            for conference in worth[rule] + opened.get((subscription.pk, rule), []):
                if conference.pk not in seen:
                    seen.add(conference.pk)
                    triples.append((position, conference.pk, order, subscription, conference, rule))
    triples.sort(key=lambda triple: triple[:3])
    return [(subscription, conference, rule) for *_, subscription, conference, rule in triples]


def is_open(state):
    """Fired and not resolved yet."""
    return state is not None and state.fired_at is not None and state.resolved_at is None


def expected_start(subscription, now):
    """(the latest expected start, the Schedule) of the subscription's schedule, or
    None when it has none (or one stored before it was checked)."""
    if not subscription.expect_schedule:
        return None
    try:
        schedule = schedules.parse_schedule(subscription.expect_schedule)
    except ValidationError:
        return None
    start = schedule.latest_start(now)
    return (start, schedule) if start is not None else None


def needs_history(rule, subscription, conference, state, expected_starts, now):
    """Does the rule's answer for the conference depend on its history? Not while the
    status on its row (the newest run) already settles it."""
    if rule in HELD:
        return not is_open(state) and HELD[rule](conference)
    if rule == "members_drop":
        # A drop began at or before the conference's last change: when that is longer
        # ago than the rule's duration and two hours, earlier passes fired it already.
        changed = conference.last_changed_at
        after = timedelta(seconds=subscription.rule_after_seconds or 0)
        recent = changed is None or changed >= now - after - DROP_LOOKBACK
        return not is_open(state) and conference.state == ConferenceState.ACTIVE and recent
    expected = expected_starts[subscription.pk]
    if rule == "schedule" and expected is not None:
        start = expected[0]
        if is_open(state):
            return True
        if state is not None and state.episode == start.isoformat():
            return False
        return conference.state == ConferenceState.ACTIVE and now - start <= LATE_WINDOW
    return False


def still_holds(rule, conference, state):
    """A fired rule's condition, from the conference's current status."""
    if rule == "members_drop":
        members = conference.active_members
        threshold = state.detail.get("threshold", -1)
        return (
            conference.state == ConferenceState.ACTIVE
            and members is not None
            and (members <= threshold)
        )
    return HELD[rule](conference)


# --------------------------------------------------------------------------- steps


def step(rule, subscription, conference, finding, state, now):
    """Fire once when the condition held for its duration (the rule is not open)."""
    if not finding.holds or (state is not None and state.episode == finding.episode):
        return []
    if now - finding.since < timedelta(seconds=subscription.rule_after_seconds or 0):
        return []
    return [fire(rule, subscription, conference, finding, state, now)]


def step_schedule(subscription, conference, runs, state, expected_start, now):
    """Late: not active `grace` after the latest expected start. Fires once per expected
    start; reports the late start (once) when the conference becomes active."""
    if expected_start is None:
        return []
    expected, schedule = expected_start
    episode = expected.isoformat()
    grace = timedelta(seconds=subscription.grace_seconds or 0)
    opened = is_open(state)
    if opened and state.episode != episode:
        # The next expected start came: the old lateness is closed without an email.
        state.resolved_at = now
        state.save(update_fields=["resolved_at"])
        opened = False
    if not opened and now - expected > LATE_WINDOW:
        # Long past: a conference tracked days later (for the next call, say) is not late.
        return []
    started = started_at(runs, expected)
    completed = conference.state == ConferenceState.COMPLETED
    condition = (
        f"expected active at {expected.astimezone(schedule.zone):%H:%M} {schedule.zone.key} "
        f"({schedule.describe()}), grace {exact_duration_text(grace)}, "
        "and not active"
    )
    if started is None and not completed and now >= expected + grace:
        if opened or (state is not None and state.episode == episode):
            return []
        finding = Finding(
            holds=True,
            since=expected + grace,
            episode=episode,
            condition=condition,
            clears="the conference becomes active",
            detail={"expected_at": expected.isoformat()},
        )
        return [fire("schedule", subscription, conference, finding, state, now)]
    if opened:
        if started is not None:
            late_by = started - expected
            return resolve(
                "schedule",
                subscription,
                conference,
                state,
                now,
                f"started late by {minutes_text(late_by)}",
                always=True,
                detail={"late_by_seconds": int(late_by.total_seconds())},
            )
        if completed:
            return resolve(
                "schedule", subscription, conference, state, now, "completed without starting"
            )
        return []
    if started is not None and started > expected + grace:
        if state is not None and state.episode == episode:
            return []  # reported already
        # Late, but it started before any evaluation saw it late: report the late start.
        late_by = started - expected
        finding = Finding(holds=False, since=expected + grace, episode=episode)
        state = save_state("schedule", subscription, conference, finding, state, now)
        state.fired_at, state.resolved_at = None, now
        state.save(update_fields=["fired_at", "resolved_at"])
        return [
            rule_event(
                EventKind.RULE_RESOLVED,
                "schedule",
                subscription,
                conference,
                now,
                since=expected + grace,
                text=f"started late by {minutes_text(late_by)}",
                detail={"late_by_seconds": int(late_by.total_seconds())},
            )
        ]
    return []


def started_at(runs, expected):
    """When the conference became active at or after the expected start (the start of
    the first active run seen since), or None."""
    active = [
        run for run in runs if run.state == ConferenceState.ACTIVE and run.last_seen_at >= expected
    ]
    if not active:
        return None
    return max(expected, min(run.first_seen_at for run in active))


def fire(rule, subscription, conference, finding, state, now):
    save_state(rule, subscription, conference, finding, state, now)
    return rule_event(
        EventKind.RULE_FIRED,
        rule,
        subscription,
        conference,
        now,
        since=finding.since,
        text=finding.condition,
        detail={"clears": finding.clears, **finding.detail},
    )


def save_state(rule, subscription, conference, finding, state, now):
    if state is None:
        state = RuleState(subscription=subscription, conference=conference, rule=rule)
    state.episode = finding.episode
    state.since = finding.since
    state.fired_at = now
    state.resolved_at = None
    state.detail = {"condition": finding.condition, **finding.detail}
    state.save()
    return state


def resolve(rule, subscription, conference, state, now, text, *, always=False, detail=None):
    state.resolved_at = now
    state.save(update_fields=["resolved_at"])
    if not (always or subscription.notify_resolved):
        return []
    values = {"fired_at": state.fired_at.isoformat(), **(detail or {})}
    return [
        rule_event(
            EventKind.RULE_RESOLVED,
            rule,
            subscription,
            conference,
            now,
            since=state.since,
            text=text,
            detail=values,
        )
    ]


def rule_event(kind, rule, subscription, conference, now, *, since, text, detail):
    return Event(
        kind=kind,
        account_id=conference.account_id,
        conference=conference,
        occurred_at=now,
        before=None,
        after=rule,
        source="rule",
        detail={
            "rule": rule,
            "subscription": subscription.pk,
            "since": since.isoformat(),
            "text": text,
            "state": conference.state,
            "active_members": conference.active_members,
            **detail,
        },
    )


def clear_text(rule):
    return {
        "not_started": "the conference is no longer waiting to start",
        "alone": "no longer exactly one active member",
        "all_held": "hold is off (or the conference ended)",
        "all_muted": "mute is off (or the conference ended)",
        "members_drop": "the members came back (or the conference ended)",
    }.get(rule, "the condition cleared")


def minutes_text(delta):
    minutes = round(delta.total_seconds() / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"

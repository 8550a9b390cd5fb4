"""Subscriptions: who gets which alerts, by email or on a channel (channels.py). The one
place they are made and removed, for the Alerts page, the `subscribe` command and the
unsubscribe link alike.

Everything is checked before anything is written: a bad email, kind, time zone, threshold
or conference id raises one ValidationError (keyed by argument name, so a form can show
each message next to its field) and stores nothing.
"""

import functools
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import Prefetch

from conferences.alerting import channels, schedules
from conferences.models import Conference, Subscription
from conferences.text import exact_duration_text

Scope = Subscription.Scope

# Names zoneinfo lists that are no one's time zone.
NOT_TIME_ZONES = {"Factory", "localtime", "posixrules"}


@functools.cache
def zone_names():
    """The zoneinfo names a subscription may use, sorted (scanning them takes ~0.1 s)."""
    return tuple(sorted(zoneinfo.available_timezones() - NOT_TIME_ZONES))


def clean_email(value):
    value = (value or "").strip()
    validate_email(value)
    return value


def clean_kinds(kinds):
    """The kinds as a list in Subscription.KINDS order, without repeats. Accepts a list or
    a comma-separated string. Raises ValidationError naming each unknown kind."""
    if isinstance(kinds, str):
        kinds = kinds.split(",")
    names = {str(kind).strip().lower() for kind in kinds if str(kind).strip()}
    unknown = sorted(names - set(Subscription.KINDS))
    if unknown:
        raise ValidationError(
            f"Unknown kind {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(Subscription.KINDS)}."
        )
    if not names:
        raise ValidationError(f"Choose at least one kind: {', '.join(Subscription.KINDS)}.")
    return [name for name in Subscription.KINDS if name in names]


def clean_time_zone(name):
    """A zoneinfo name such as Europe/Berlin, or blank for the site's time zone."""
    name = (name or "").strip()
    if name and name not in zone_names():
        raise ValidationError(
            f"{name[:60]!r} is not a time zone; use a name such as Europe/Berlin or "
            "America/New_York (or leave it blank for the site's)."
        )
    return name


def clean_threshold(value):
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{value!r} is not a number of members (0 or more).")
    return value


def clean_duration(value, *, what="duration"):
    """Seconds, from a number of seconds or text such as 90s, 10m, 2h; blank is None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationError(f"{value!r} is not a {what}.")
    if isinstance(value, int):
        if value < 0:
            raise ValidationError(f"A {what} cannot be negative.")
        return value
    return schedules.parse_duration(value, what=what)


def clean_drop(value):
    if value is None or value == "":
        return None
    try:
        value = int(str(value).strip().rstrip("%"))
    except ValueError:
        raise ValidationError(f"{str(value)[:20]!r} is not a percentage (1 to 100).") from None
    if not 1 <= value <= 100:
        raise ValidationError(f"A drop of {value}% makes no sense; give 1 to 100.")
    return value


def clean_schedule(text):
    text = " ".join(str(text or "").split())
    if not text:
        return ""
    return schedules.parse_schedule(text).describe()


RULES = ("not_started", "alone", "all_held", "all_muted", "members_drop", "schedule")
NEEDS_AFTER = ("not_started", "alone", "all_held", "all_muted")


def rule_errors(kinds, fields):
    """What is missing or out of place among the rules' parameters, by argument name."""
    errors = {}
    rules = [kind for kind in kinds if kind in RULES]
    needing = [kind for kind in rules if kind in NEEDS_AFTER]
    if needing and fields["rule_after_seconds"] is None:
        errors["rule_after"] = [
            f"The rule {', '.join(needing)} needs a duration (after), e.g. 90s or 10m."
        ]
    if fields["rule_after_seconds"] is not None and not (needing or "members_drop" in rules):
        errors["rule_after"] = [
            "A duration (after) applies to the rules not_started, alone, all_held, "
            "all_muted and members_drop: add one of them."
        ]
    if "members_drop" in rules and fields["drop_percent"] is None:
        errors["drop_percent"] = ["The rule members_drop needs the drop in percent, e.g. 50."]
    if fields["drop_percent"] is not None and "members_drop" not in rules:
        errors["drop_percent"] = ["A drop applies to the members_drop rule: add it."]
    if "schedule" in rules and not fields["expect_schedule"]:
        errors["expect"] = [
            'The rule schedule needs the expected start, e.g. "Mon,Wed 09:00 Europe/Berlin".'
        ]
    if fields["expect_schedule"] and not ({"schedule", "not_started"} & set(rules)):
        errors["expect"] = ["An expected start applies to the schedule rule: add it."]
    if fields["grace_seconds"] is not None and "schedule" not in rules:
        errors["grace"] = ["A grace period applies to the schedule rule: add it."]
    return errors


def find_conferences(conference_ids, *, account=None):
    """The tracked conferences with these Catapult ids (within the account, if given).
    Raises ValidationError naming each id that is not tracked or is ambiguous."""
    conference_ids = list(dict.fromkeys(conference_ids))
    matches = Conference.objects.select_related("account").filter(conference_id__in=conference_ids)
    if account is not None:
        matches = matches.filter(account=account)
    by_id = {}
    for conference in matches:
        by_id.setdefault(conference.conference_id, []).append(conference)
    errors = []
    where = f" on account {account.name}" if account is not None else ""
    for conference_id in conference_ids:
        found = by_id.get(conference_id, [])
        if not found:
            errors.append(f"{conference_id[:100]} is not tracked{where}.")
        elif len(found) > 1:
            names = ", ".join(sorted(c.account.name for c in found))
            errors.append(
                f"{conference_id} is tracked on several accounts ({names}); name the account."
            )
    if errors:
        raise ValidationError(errors)
    return [by_id[conference_id][0] for conference_id in conference_ids]


def subscribe(
    *,
    email,
    user=None,
    account=None,
    tag="",
    conference_ids=(),
    kinds=("state",),
    time_zone="",
    members_at_most=None,
    members_above=None,
    rule_after=None,
    drop_percent=None,
    expect="",
    grace=None,
    notify_resolved=True,
    quiet_hours="",
    quiet_drop=False,
    secret="",
):
    """Subscribe email to alerts of the given kinds, and return (subscription, created).

    email is an address or a channel URL (an Apprise URL, or webhook:// and webhooks://
    with its signing secret: `secret`, or one made and set on the new subscription as
    `new_secret`, to be shown once). A channel is stored encrypted, under its label.

    The scope is the first of: the conferences with these Catapult ids (looked up within
    the account, if given), the conferences with this tag (on any account: a tag with an
    account is refused), the account's conferences, every conference.
    An identical subscription (same email, scope, account, tag, conferences, kinds,
    thresholds and time zone) is not made twice: it is returned with created=False.
    Thresholds (members_at_most, members_above) need the "members" kind.
    Rules (conferences/alerting/rules.py) are kinds too, with their parameters: rule_after (a
    duration: 90s, 10m, 2h) for not_started, alone, all_held, all_muted (and optionally
    members_drop), drop_percent for members_drop, expect ("Mon,Wed 09:00 Europe/Berlin")
    and grace for schedule; notify_resolved sends one email when a rule clears.
    quiet_hours ("22:00-07:00", in the time zone) hold alerts for one summary at their
    end, or drop them with quiet_drop.
    Raises ValidationError, keyed by argument name, writing nothing.
    """
    errors = {}

    def check(name, clean, value):
        try:
            return clean(value)
        except ValidationError as error:
            errors[name] = error.messages
            return None

    channel = None
    if channels.is_channel(email):
        channel = check("email", lambda url: channels.clean_channel(url, secret=secret), email)
        email = channel.label if channel else None
    else:
        email = check("email", clean_email, email)
        if secret:
            errors["secret"] = ["A secret applies to webhook:// and webhooks:// targets only."]
    kinds = check("kinds", clean_kinds, kinds)
    time_zone = check("time_zone", clean_time_zone, time_zone)
    members_at_most = check("members_at_most", clean_threshold, members_at_most)
    members_above = check("members_above", clean_threshold, members_above)
    rule_after_seconds = check("rule_after", clean_duration, rule_after)
    drop_percent = check("drop_percent", clean_drop, drop_percent)
    expect_schedule = check("expect", clean_schedule, expect)
    grace_seconds = check("grace", lambda v: clean_duration(v, what="grace period"), grace)
    quiet = check("quiet_hours", schedules.parse_quiet_hours, quiet_hours) or (None, None)
    if kinds:
        found = rule_errors(
            kinds,
            {
                "rule_after_seconds": rule_after_seconds,
                "drop_percent": drop_percent,
                "expect_schedule": expect_schedule,
                "grace_seconds": grace_seconds,
            },
        )
        for name, messages in found.items():
            errors.setdefault(name, messages)  # a value that could not be read says so
    if quiet_drop and quiet[0] is None:
        errors["quiet_hours"] = ["Dropping alerts in quiet hours needs the quiet hours."]
    tag = (tag or "").strip().lower()
    if len(tag) > 50:
        errors["tag"] = [f"Tag {tag[:20]!r}... is longer than 50 characters."]
    conference_ids = [str(cid).strip() for cid in conference_ids if str(cid).strip()]
    conferences = []
    if conference_ids:
        conferences = check(
            "conference_ids", lambda ids: find_conferences(ids, account=account), conference_ids
        )
    if tag and account is not None and not conference_ids:
        # Alerts match a tag on every account (alerts.wants), so say so rather than
        # store an account that would narrow nothing.
        errors["tag"] = [
            "A tag covers conferences on every account; give the tag or the account, not both."
        ]
    thresholds = members_at_most is not None or members_above is not None
    if thresholds and kinds and "members" not in kinds:
        errors["kinds"] = ["Member thresholds apply to members alerts only: add members."]
    if errors:
        raise ValidationError(errors)

    if conference_ids:
        # The account only served to look the ids up: the conferences are the scope.
        scope = Scope.CONFERENCES
        account, tag = None, ""
    elif tag:
        scope = Scope.TAG
    elif account is not None:
        scope = Scope.ACCOUNT
    else:
        scope = Scope.ALL

    fields = {
        "email": email,
        "channel_encrypted": channel.channel_encrypted if channel else "",
        "webhook_secret_encrypted": channel.webhook_secret_encrypted if channel else "",
        "scope": scope,
        "account": account,
        "tag": tag,
        "kinds": kinds,
        "time_zone": time_zone,
        "members_at_most": members_at_most,
        "members_above": members_above,
        "rule_after_seconds": rule_after_seconds,
        "drop_percent": drop_percent,
        "expect_schedule": expect_schedule or "",
        "grace_seconds": grace_seconds,
        "notify_resolved": bool(notify_resolved),
        "quiet_start": quiet[0],
        "quiet_end": quiet[1],
        "quiet_drop": bool(quiet_drop),
    }
    conference_pks = {conference.pk for conference in conferences}
    with transaction.atomic():
        # One subscriber at a time, so a double-submitted form cannot make two.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [email.lower()])
        existing = find_duplicate(fields, conference_pks)
        if existing is not None:
            return existing, False
        subscription = Subscription.objects.create(user=user, **fields)
        subscription.conferences.set(conferences)
    subscription.new_secret = channel.new_secret if channel else ""
    return subscription, True


def find_duplicate(fields, conference_pks):
    candidates = Subscription.objects.filter(
        email__iexact=fields["email"],
        scope=fields["scope"],
        account=fields["account"],
        tag=fields["tag"],
        time_zone=fields["time_zone"],
        members_at_most=fields["members_at_most"],
        members_above=fields["members_above"],
        rule_after_seconds=fields["rule_after_seconds"],
        drop_percent=fields["drop_percent"],
        expect_schedule=fields["expect_schedule"],
        grace_seconds=fields["grace_seconds"],
        notify_resolved=fields["notify_resolved"],
        quiet_start=fields["quiet_start"],
        quiet_end=fields["quiet_end"],
        quiet_drop=fields["quiet_drop"],
    ).prefetch_related("conferences")
    for candidate in candidates:
        same_kinds = set(candidate.kinds) == set(fields["kinds"])
        same_conferences = {c.pk for c in candidate.conferences.all()} == conference_pks
        if same_kinds and same_conferences:
            return candidate
    return None


def with_scope(subscriptions):
    """The subscriptions (a queryset) with what `covers` reads prefetched: their chosen
    conferences' ids, not the conferences' wide rows. Every alert pass and rule run reads
    every subscription; in a busy hour, loading the chosen conferences whole took a
    tenth of the worker's time."""
    return subscriptions.prefetch_related(
        Prefetch("conferences", queryset=Conference.objects.only("pk"))
    )


def covers(subscription, conference, *, account_pk):
    """Is the conference (None for an account's own event) within the subscription's
    scope? The subscription's conferences should be prefetched (`with_scope`)."""
    scope = subscription.scope
    if scope == Scope.ACCOUNT and subscription.account_id != account_pk:
        return False
    if conference is None and scope in (Scope.TAG, Scope.CONFERENCES):
        return False
    if scope == Scope.TAG and subscription.tag not in conference.tags:
        return False
    if scope == Scope.CONFERENCES and conference not in subscription.conferences.all():
        return False
    return True


def unsubscribe(subscription):
    """Delete the subscription (its past deliveries stay, without it)."""
    subscription.delete()


def describe(subscription):
    """One line saying what the subscription sends, for the command and the pages."""
    zone = subscription.time_zone or "the site's time zone"
    text = (
        f"{subscription.email}: {', '.join(subscription.kinds)} alerts about "
        f"{scope_text(subscription)}"
    )
    thresholds = threshold_text(subscription)
    if thresholds:
        text += f", members alerts only {thresholds}"
    rules = rule_text(subscription)
    if rules:
        text += f"; rules: {rules}"
    quiet = schedules.format_quiet_hours(subscription.quiet_start, subscription.quiet_end)
    if quiet:
        text += f"; quiet hours {quiet} ({'dropped' if subscription.quiet_drop else 'summarised'})"
    return f"{text}, times in {zone}"


def rule_text(subscription):
    """The subscription's rules and their parameters: `alone after 10m, members drop by
    50%`."""
    parts = []
    after = subscription.rule_after_seconds
    for rule in [kind for kind in subscription.kinds if kind in RULES]:
        text = rule.replace("_", " ")
        if rule in NEEDS_AFTER and after is not None:
            text += f" after {exact_duration_text(after)}"
        if rule == "members_drop":
            text += f" by {subscription.drop_percent}%"
            if after:
                text += f" for {exact_duration_text(after)}"
        if rule == "schedule":
            text += f" {subscription.expect_schedule}"
            if subscription.grace_seconds:
                text += f" (grace {exact_duration_text(subscription.grace_seconds)})"
        parts.append(text)
    if parts and not subscription.notify_resolved:
        parts.append("no resolved emails")
    return ", ".join(parts)


def scope_text(subscription):
    if subscription.scope == Scope.CONFERENCES:
        ids = ", ".join(sorted(c.conference_id for c in subscription.conferences.all()))
        return f"conferences {ids}"
    if subscription.scope == Scope.TAG:
        return f"conferences tagged {subscription.tag}"
    if subscription.scope == Scope.ACCOUNT:
        return f"account {subscription.account}'s conferences"
    return "every conference"


def threshold_text(subscription):
    parts = []
    if subscription.members_at_most is not None:
        parts.append(f"at {subscription.members_at_most} or fewer")
    if subscription.members_above is not None:
        parts.append(f"above {subscription.members_above}")
    return " or ".join(parts)

"""Durations, weekly schedules and daily windows as subscriptions spell them.

Pure functions of text and time, no database: `parse_duration("90s")`,
`parse_schedule("Mon,Wed 09:00 Europe/Berlin")`, `parse_quiet_hours("22:00-07:00")`,
and the times they name (the latest expected start, whether a moment is in quiet hours,
when they end). Every parser raises ValidationError with a message a user can act on.
"""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError

DURATION = re.compile(r"^\s*(\d{1,7})\s*(s|m|h|d)\s*$", re.IGNORECASE)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The longest duration a rule or an expiry may name.
MAX_DURATION_SECONDS = 31 * 86400

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_duration(text, *, what="duration", longest_days=MAX_DURATION_SECONDS // 86400):
    """`90s`, `10m`, `2h`, `1d` as a number of seconds, at most `longest_days` days."""
    match = DURATION.match(str(text or ""))
    if match is None:
        raise ValidationError(
            f"{str(text)[:30]!r} is not a valid {what}; write a number and a unit: "
            "90s, 10m, 2h or 1d."
        )
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2).lower()]
    if seconds > longest_days * 86400:
        raise ValidationError(f"{text.strip()} is too long: at most {longest_days}d.")
    return seconds


@dataclass(frozen=True)
class Schedule:
    """Expected active on these weekdays (0 = Monday) at this time in this zone."""

    days: frozenset
    at: time
    zone: ZoneInfo

    def describe(self):
        days = ",".join(DAY_NAMES[day].title() for day in sorted(self.days))
        return f"{days} {self.at:%H:%M} {self.zone.key}"

    def latest_start(self, now):
        """The latest expected start at or before `now` (None if there is none in the
        past week, which cannot happen with at least one day)."""
        local = now.astimezone(self.zone)
        for back in range(8):
            day = local.date() - timedelta(days=back)
            if day.weekday() not in self.days:
                continue
            start = datetime.combine(day, self.at, tzinfo=self.zone)
            if start <= now:
                return start
        return None


def parse_schedule(text):
    """`Mon,Wed 09:00 Europe/Berlin` (also `Mon-Fri`, full day names) as a Schedule."""
    parts = str(text or "").split()
    if len(parts) != 3:
        raise ValidationError(
            f"{str(text)[:60]!r} is not a schedule; write days, a time and a time zone, "
            'e.g. "Mon,Wed 09:00 Europe/Berlin".'
        )
    days_text, clock, zone_name = parts
    days = set()
    for item in days_text.lower().split(","):
        first, _, last = item.partition("-")
        start, end = day_number(first), day_number(last or first)
        if start is None or end is None:
            raise ValidationError(
                f"{item[:20]!r} is not a day; use Mon, Tue, Wed, Thu, Fri, Sat, Sun "
                "(or a range such as Mon-Fri)."
            )
        day = start
        while True:
            days.add(day)
            if day == end:
                break
            day = (day + 1) % 7
    match = CLOCK.match(clock)
    if match is None:
        raise ValidationError(f"{clock[:20]!r} is not a time of day; write it as 09:00.")
    return Schedule(
        days=frozenset(days),
        at=time(int(match.group(1)), int(match.group(2))),
        zone=parse_zone(zone_name),
    )


def day_number(name):
    name = name.strip().lower()[:3]
    return DAY_NAMES.index(name) if name in DAY_NAMES else None


def parse_zone(name):
    try:
        if "/" not in name and name != "UTC":
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{name[:60]!r} is not a time zone; use a name such as Europe/Berlin."
        ) from None


def parse_quiet_hours(text):
    """`22:00-07:00` as (start, end) times; blank as (None, None)."""
    text = str(text or "").strip()
    if not text:
        return None, None
    start, _, end = text.partition("-")
    first, second = CLOCK.match(start.strip()), CLOCK.match(end.strip())
    if first is None or second is None:
        raise ValidationError(
            f"{text[:30]!r} is not a time window; write quiet hours as 22:00-07:00."
        )
    start = time(int(first.group(1)), int(first.group(2)))
    end = time(int(second.group(1)), int(second.group(2)))
    if start == end:
        raise ValidationError("Quiet hours must start and end at different times.")
    return start, end


def format_quiet_hours(start, end):
    if start is None or end is None:
        return ""
    return f"{start:%H:%M}-{end:%H:%M}"


def in_window(start, end, now, zone):
    """Is `now` within the daily window start-end (which may wrap past midnight)?"""
    if start is None or end is None:
        return False
    clock = now.astimezone(zone).time()
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def window_end(start, end, now, zone):
    """When the daily window that `now` is in ends."""
    local = now.astimezone(zone)
    ends = datetime.combine(local.date(), end, tzinfo=zone)
    if ends <= now:
        ends = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return ends

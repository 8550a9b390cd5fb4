"""How confwatch writes time for people, in one place so pages, emails, the admin and
the JavaScript (static/js/confwatch.js, which follows the same rules) say time alike:

- durations: what elapsed, rounded to its two largest units (`duration_text`), and a
  configured duration, exactly (`exact_duration_text`);
- relative times ("3 min ago", `relative_text`);
- absolute times, always with their zone, in the viewer's zone (`local_text`; the
  exact form with milliseconds for hover texts, `exact_text`; the zone's abbreviations
  for the JavaScript clock, `zone_abbreviations`);
- ISO 8601 for stored details and exports (`iso`, `parse_time`).

The viewer's zone is the active Django time zone (the user's preference, activated by
conferences.web.middleware.UserTimeZone, else the site's); an email passes the
subscriber's zone explicitly.
"""

import itertools
from datetime import datetime, timedelta

from django.utils import timezone

DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def seconds_of(value):
    return value.total_seconds() if isinstance(value, timedelta) else value


def duration_text(value):
    """What elapsed (a timedelta or seconds) in its two largest units, the second left
    out when 0: "45 s", "12 min 5 s", "3 h 20 min", "2 d"."""
    seconds = max(0, int(seconds_of(value)))
    for (name, size), (next_name, next_size) in itertools.pairwise(DURATION_UNITS):
        if seconds >= size:
            count, rest = divmod(seconds, size)
            rest //= next_size
            return f"{count} {name} {rest} {next_name}" if rest else f"{count} {name}"
    return f"{seconds} s"


def exact_duration_text(value):
    """A configured duration (a rule's "after", a grace period), exactly: in the largest
    unit it is a whole number of ("10 min", "90 min", "2 h", "1 d"), else minutes and
    seconds ("1 min 30 s"). Unlike duration_text, nothing is rounded away."""
    seconds = max(0, int(seconds_of(value)))
    for name, size in DURATION_UNITS[:-1]:
        if seconds and seconds % size == 0:
            return f"{seconds // size} {name}"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def relative_text(value, now, *, suffix=" ago"):
    """How long before `now` `value` was: "just now", "42 s ago", "3 min ago", "2 h ago",
    "5 d ago"; with suffix="" how long something has lasted ("a moment", "3 min")."""
    seconds = max(0, int((now - value).total_seconds()))
    if seconds < 5:
        return "just now" if suffix else "a moment"
    if seconds < 60:
        amount = f"{seconds} s"
    elif seconds < 3600:
        amount = f"{seconds // 60} min"
    elif seconds < 86400 * 2:
        amount = f"{seconds // 3600} h"
    else:
        amount = f"{seconds // 86400} d"
    return amount + suffix


def in_zone(value, zone=None):
    """`value` in `zone`, else in the viewer's (the active) time zone."""
    return value.astimezone(zone) if zone is not None else timezone.localtime(value)


def local_text(value, *, zone=None, seconds=True, date=True, named=False):
    """`2026-11-28 19:23:31 CET`: date (unless date=False), time, and always the zone;
    named=True adds the zone's name where its abbreviation is not it, as emails do
    (`... CET (Europe/Berlin)`)."""
    local = in_zone(value, zone)
    pattern = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
    shown = f"{local.strftime(pattern)} {local.tzname()}"
    key = getattr(local.tzinfo, "key", None)
    return f"{shown} ({key})" if named and key and key != local.tzname() else shown


def zone_abbreviations(now, *, zone=None):
    """{UTC offset in minutes: abbreviation} of the zone this year, both sides of its
    daylight saving time: `{60: "CET", 120: "CEST"}`. The JavaScript clock writes these
    after a time (the page gives them to it, <body data-zone-abbreviations>), since the
    browser's Intl knows few zones' abbreviations and would say "GMT+1" where
    local_text says "CET"."""
    names = {}
    for days in range(0, 366, 61):
        local = in_zone(now + timedelta(days=days), zone)
        names.setdefault(int(local.utcoffset().total_seconds()) // 60, local.tzname())
    return names


def exact_text(value, *, zone=None):
    """`2026-11-28 19:23:31.250 CET`: as local_text, with the milliseconds when the
    time has any (Catapult's times do), for hover texts."""
    local = in_zone(value, zone)
    millis = f".{local.microsecond // 1000:03d}" if local.microsecond else ""
    return f"{local:%Y-%m-%d %H:%M:%S}{millis} {local.tzname()}"


def iso(value):
    """A time in ISO 8601, as event details and exports store it (None stays None), as
    exact as it is and no more: `...T15:22:47+00:00` for whole seconds,
    `...T15:22:47.521+00:00` with Catapult's milliseconds, microseconds only when it has
    them (a time confwatch took itself)."""
    if value is None:
        return None
    if value.microsecond and not value.microsecond % 1000:
        return value.isoformat(timespec="milliseconds")
    return value.isoformat()


def parse_time(value):
    """A time written by iso() (an event's detail, a session), or None when the value is
    not an ISO 8601 time with its offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def between_text(start, end, *, zone=None):
    """`between 19:23:21 and 19:23:31 CET` (when a polled change happened): the day
    only where it is not the end's, the zone once, at the end."""
    start_day = in_zone(start, zone).date() != in_zone(end, zone).date()
    first = in_zone(start, zone).strftime("%Y-%m-%d %H:%M:%S" if start_day else "%H:%M:%S")
    return f"between {first} and {local_text(end, zone=zone, date=False)}"


def hold_mute_text(what, *, conference, members):
    """`Conference hold: off · 1 member on hold`: the conference-level flag (what is
    "hold" or "mute") told apart from how many present members have their own (members
    None: not known, left out)."""
    flag = "–" if conference is None else ("on" if conference else "off")
    shown = f"Conference {what}: {flag}"
    if members is None:
        return shown
    who = "no member" if members == 0 else f"{members} member{'' if members == 1 else 's'}"
    return f"{shown} · {who} {'on hold' if what == 'hold' else 'muted'}"

"""How confwatch writes time for people: durations (and, as later changes move them
here, relative times, times with their zone and ISO parsing). One place, so pages and
emails say time alike."""

import itertools
from datetime import timedelta

DURATION_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def duration_text(value):
    """`value` (a timedelta or seconds) in its two largest units, the second left out
    when 0: "45 s", "12 min 5 s", "3 h 20 min", "2 d". Pages and emails say durations
    alike through it."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    seconds = max(0, int(seconds))
    for (name, size), (next_name, next_size) in itertools.pairwise(DURATION_UNITS):
        if seconds >= size:
            count, rest = divmod(seconds, size)
            rest //= next_size
            return f"{count} {name} {rest} {next_name}" if rest else f"{count} {name}"
    return f"{seconds} s"

"""Timestamp formatting in the shapes seen in Catapult v1 material (reference §5.3).

Every shape denotes the same instant: offsets are real offsets, not relabelled UTC.
"""

import zlib
from datetime import UTC, datetime, timedelta, timezone

TIME_FORMATS = ("z", "ms-z", "hour-offset", "ms-colon-offset", "mixed", "epoch-ms", "untidy")
FIXED_FORMATS = ("z", "ms-z", "hour-offset", "ms-colon-offset")
# "untidy" rotates among every shape, epoch-millisecond integers included.
UNTIDY_FORMATS = (*FIXED_FORMATS, "epoch-ms")

MINUS_TWO_HOURS = timezone(timedelta(hours=-2))
MINUS_THREE_HOURS = timezone(timedelta(hours=-3))


def utc_now():
    return datetime.now(UTC)


def format_time(moment, style):
    """Format an aware datetime in one of FIXED_FORMATS.

    z               2017-01-26T01:58:59Z
    ms-z            2017-01-26T01:58:59.123Z
    hour-offset     2013-07-12T15:22:47-02
    ms-colon-offset 2013-07-12T16:26:55.685-02:00
    epoch-ms        1419032854964 (an integer)
    """
    utc = moment.astimezone(UTC)
    if style == "epoch-ms":
        return int(utc.timestamp() * 1000)
    millis = f"{utc.microsecond // 1000:03d}"
    if style == "z":
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == "ms-z":
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + millis + "Z"
    local = utc.astimezone(MINUS_TWO_HOURS)
    if style == "hour-offset":
        return local.strftime("%Y-%m-%dT%H:%M:%S") + "-02"
    if style == "ms-colon-offset":
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + millis + "-02:00"
    raise ValueError(f"unknown time format {style!r}")


def format_field(moment, style, *, key):
    """Format one response field; with "mixed" the shape depends on ``key``.

    ``key`` names the field of one object (e.g. ``"conf-abc:createdTime"``), so a given
    field keeps its shape across reads while neighbouring fields rotate among the shapes.
    """
    if style == "mixed":
        style = FIXED_FORMATS[zlib.crc32(key.encode()) % len(FIXED_FORMATS)]
    elif style == "untidy":
        style = UNTIDY_FORMATS[zlib.crc32(key.encode()) % len(UNTIDY_FORMATS)]
    return format_time(moment, style)


def format_mislabelled(moment):
    """The documented member example's addedTime (reference §1.7): the wall-clock time at
    -02 labelled -03, so that, read as given, the instant is an hour later and a member
    whose removedTime is labelled -02 seems to leave before it joined."""
    local = moment.astimezone(UTC).astimezone(MINUS_TWO_HOURS)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + "-03"


def has_mixed_offsets(member_id):
    """With the "untidy" format, one member in three carries the documented mixed offsets."""
    return zlib.crc32(member_id.encode()) % 3 == 0

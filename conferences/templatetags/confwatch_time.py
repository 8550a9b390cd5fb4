"""Times as the pages show them, written by conferences.text: in the viewer's time zone
(activated by conferences.web.middleware.UserTimeZone) or a given one, always with the
zone named, the exact form (milliseconds too) on hover, and a relative form
("3 min ago") that static/js/confwatch.js keeps right while the page stays open.

    {% load confwatch_time %}
    {% relative_time conference.last_changed_at %}   -> "3 min ago"
    {% relative_time since suffix="" %}              -> "3 min" (how long, for "in state")
    {% local_time delivery.created_at %}             -> "2026-11-28 19:23:31 CET"
    {% local_time link.expires_at seconds=False zone=tz %} -> "2026-11-28 19:23 CET"
    {% duration_between member.joined_at member.left_at %} -> "12 min 5 s"
"""

import json

from django import template
from django.utils import timezone
from django.utils.html import format_html

from conferences import text

register = template.Library()


def machine_time(value, zone):
    """The <time datetime> value: local ISO 8601 to the millisecond (browsers parse it)."""
    local = text.in_zone(value, zone)
    return local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")


@register.simple_tag
def relative_time(value, suffix=" ago", empty="–", zone=None):
    """<time> with a relative text; its title is the exact local time with its zone."""
    if value is None:
        return empty
    return format_html(
        '<time datetime="{}" title="{}" data-relative="{}">{}</time>',
        machine_time(value, zone),
        text.exact_text(value, zone=zone),
        suffix,
        text.relative_text(value, timezone.now(), suffix=suffix),
    )


@register.simple_tag
def local_time(value, empty="–", seconds=True, zone=None):
    """<time> with the local date, time and zone; its title is the exact form."""
    if value is None:
        return empty
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        machine_time(value, zone),
        text.exact_text(value, zone=zone),
        text.local_text(value, zone=zone, seconds=seconds),
    )


@register.simple_tag
def zone_abbreviations():
    """The viewer's zone's abbreviations as JSON, for the JavaScript clock
    (<body data-zone-abbreviations>): it then writes "CET" where local_time does."""
    return json.dumps(text.zone_abbreviations(timezone.now()), separators=(",", ":"))


@register.simple_tag
def duration_between(start, end, empty="unknown"):
    """How long from `start` to `end` (text.duration_text), or `empty` without both."""
    if start is None or end is None:
        return empty
    return text.duration_text(end - start)


@register.filter
def duration(value):
    """A timedelta or seconds as text.duration_text writes it ("" for None)."""
    return "" if value is None else text.duration_text(value)

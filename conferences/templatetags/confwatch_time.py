"""Times as the pages show them: in the viewer's time zone (activated by
conferences.web.middleware.UserTimeZone), with the zone named, the exact ISO form on hover,
and a relative form ("3 min ago") that static/js/confwatch.js keeps right while the page
stays open.

    {% load confwatch_time %}
    {% relative_time conference.last_changed_at %}   -> "3 min ago"
    {% relative_time since suffix="" %}              -> "3 min" (how long, for "in state")
    {% local_time delivery.created_at %}             -> "2026-11-28 19:23:31 CET"
"""

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


def relative_text(value, now, *, suffix=" ago"):
    """ "just now", "42 s ago", "3 min ago", "2 h ago", "5 d ago" (the JS says the same)."""
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


def zoned(value):
    local = timezone.localtime(value)
    return local, local.isoformat(timespec="seconds"), local.strftime("%Y-%m-%d %H:%M:%S %Z")


@register.simple_tag
def relative_time(value, suffix=" ago", empty="–"):
    """<time> with a relative text; its title is the local time with the zone named."""
    if value is None:
        return empty
    _, iso, shown = zoned(value)
    return format_html(
        '<time datetime="{}" title="{}" data-relative="{}">{}</time>',
        iso,
        shown,
        suffix,
        relative_text(value, timezone.now(), suffix=suffix),
    )


@register.simple_tag
def local_time(value, empty="–"):
    """<time> with the local date and time and the zone; its title is the ISO form."""
    if value is None:
        return empty
    _, iso, shown = zoned(value)
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, iso, shown)

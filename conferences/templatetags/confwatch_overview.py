"""One row of the overview, rendered in Python.

The overview renders up to a page of these on every live refresh; the template
language spends about 1 ms on a row this rich, this function a tenth of that. The
markup is the same a template would write: escaped by format_html, classes and data
attributes the tests and the CSS rely on, hold and mute in words, times as <time>.

    {% load confwatch_overview %}
    {% overview_row conference row_options %}
"""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from conferences.templatetags.confwatch_time import relative_time
from conferences.text import hold_mute_text

register = template.Library()


def hold_mute_cell(conference, what):
    """`Conference hold: off · 1 member on hold` (members: page_of_rows' counts; left out
    while no member was seen)."""
    members = getattr(conference, "members_on_hold" if what == "hold" else "members_muted", None)
    if not getattr(conference, "members_seen", 0):
        members = None
    shown = hold_mute_text(what, conference=getattr(conference, what), members=members)
    label = "Hold" if what == "hold" else "Mute"
    return format_html('<td class="{}" data-label="{}">{}</td>', what, label, shown)


def row_class(conference):
    if conference.paused:
        return "is-paused"
    if conference.is_failing:
        return "is-failing"
    if conference.is_stale:
        return "is-stale"
    return ""


def conference_cell(conference):
    name = conference.label or conference.conference_id
    identifier = (
        format_html(' <span class="muted id">{}</span>', conference.conference_id)
        if conference.label
        else ""
    )
    tags = format_html_join("", ' <span class="tag">{}</span>', ((tag,) for tag in conference.tags))
    maintenance = getattr(conference, "in_maintenance", "")
    if maintenance:
        maintenance = format_html(' <span class="maintenance">{}</span>', maintenance)
    return format_html(
        '<td class="conference" data-label="Conference"><a href="{}">{}</a>{}{}{}</td>',
        conference.detail_url,
        name,
        identifier,
        tags,
        maintenance,
    )


def state_cell(conference):
    if conference.paused:
        seen = (
            format_html(' <span class="muted">last seen {}</span>', conference.state)
            if conference.state
            else ""
        )
        badge = format_html('<span class="state badge state-paused">paused</span>{}', seen)
    else:
        if conference.is_stale and conference.state != "completed":
            kind = "stale"
        else:
            kind = conference.state or "unknown"
        since = (
            format_html(
                ' <span class="since muted">for {}</span>',
                relative_time(conference.state_since, suffix=""),
            )
            if conference.state_since
            else ""
        )
        badge = format_html(
            '<span class="state badge state-{}">{}</span>{}',
            kind,
            conference.state or "not yet observed",
            since,
        )
    return format_html('<td class="state-cell" data-label="State">{}</td>', badge)


def polling_cell(conference, stale_after):
    title = format_html(' title="{}"', conference.poll_error) if conference.poll_error else ""
    parts = [
        format_html(
            '<span class="poll poll-{}"{}>{}</span>',
            conference.poll_status,
            title,
            conference.get_poll_status_display(),
        )
    ]
    if conference.is_stale and not conference.paused:
        parts.append(
            format_html(
                ' <span class="marker marker-stale" title="No successful poll for more than '
                '{} s">stale</span>',
                stale_after,
            )
        )
    if conference.is_stale or conference.is_failing:
        if conference.last_observed_at:
            last = format_html("last OK {}", relative_time(conference.last_observed_at))
        else:
            last = "never OK"
        parts.append(format_html(' <span class="muted">{}</span>', last))
    return format_html(
        '<td class="poll-cell" data-label="Polling">{}</td>', mark_safe("".join(parts))
    )


def actions_cell(conference, *, can_pause, can_untrack):
    buttons = []
    if can_pause:
        if conference.paused:
            verb, url = "Resume", conference.resume_url
        else:
            verb, url = "Pause", conference.pause_url
        buttons.append(
            format_html(
                '<button type="submit" form="row-actions" formaction="{}" class="small" '
                'aria-label="{} {}">{}</button>',
                url,
                verb,
                conference,
                verb,
            )
        )
    if can_untrack:
        buttons.append(
            format_html(
                ' <button type="submit" form="row-actions" formaction="{}" class="small danger" '
                'aria-label="Untrack {}" data-confirm="Untrack {}? Its history is deleted.">'
                "Untrack</button>",
                conference.untrack_url,
                conference,
                conference,
            )
        )
    return format_html(
        '<td class="actions" data-label="Actions">{}</td>', mark_safe("".join(buttons))
    )


@register.simple_tag
def overview_row(conference, options):
    """options: show_account, can_pause, can_untrack, stale_after (from the view)."""
    cells = [conference_cell(conference)]
    if options["show_account"]:
        cells.append(format_html('<td data-label="Account">{}</td>', conference.account.name))
    members = conference.active_members
    cells += [
        state_cell(conference),
        format_html(
            '<td class="members num" data-label="Members">{}</td>',
            "–" if members is None else members,
        ),
        hold_mute_cell(conference, "hold"),
        hold_mute_cell(conference, "mute"),
        polling_cell(conference, options["stale_after"]),
        format_html(
            '<td class="changed" data-label="Last change">{}</td>',
            relative_time(conference.last_changed_at),
        ),
    ]
    if options["can_pause"] or options["can_untrack"]:
        cells.append(
            actions_cell(
                conference, can_pause=options["can_pause"], can_untrack=options["can_untrack"]
            )
        )
    return format_html(
        '<tr data-conference-id="{}" class="{}">{}</tr>',
        conference.conference_id,
        row_class(conference),
        mark_safe("".join(cells)),
    )

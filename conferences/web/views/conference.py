"""The conference page: live status card, members chart, timeline; and its history export."""

from django.db.models import Count, Max
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.safestring import mark_safe

from conferences import text
from conferences.alerting import maintenance
from conferences.models import (
    Conference,
)
from conferences.ops import logs
from conferences.recording import history, members
from conferences.registry import roles
from conferences.registry.roles import requires
from conferences.web.auth import token_readable
from conferences.web.selectors import charts, exports, timeline
from conferences.web.views.common import (
    MAX_DELIVERIES_SHOWN,
    fingerprint,
    htmx_partial,
    render_page,
)

# The columns of a conference (and its account) the conference page shows: its live
# refresh compares them, read in one cheap query, before loading anything else.
LIVE_FIELDS = (
    "label",
    "tags",
    "paused",
    *history.STATUS_FIELDS,
    *history.DETAIL_FIELDS,
    "poll_status",
    "poll_error",
    "last_polled_at",
    "last_observed_at",
    "last_changed_at",
    "state_since",
    "latest_history_id",
    "account__problem",
    "account__problem_message",
    "account__request_budget",
    "account__base_url",
)


@requires(GET="pages.read")
def conference_detail(request, pk):
    """The conference page: live status card, members chart over a range, timeline. Its
    live refresh (htmx) answers 204 when the conference's row has not changed."""
    try:
        range_key = charts.parse_range(request.GET.get("range"))
        before = request.GET.get("before") or None
        cursor = timeline.Cursor.parse(before) if before else None
    except (charts.BadRange, timeline.BadCursor) as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    live = (
        Conference.objects.filter(pk=pk)
        # A member change (a callback's mute, say) changes the page too.
        .annotate(member_rows=Count("members"), members_changed=Max("members__last_changed_at"))
        .values_list(*LIVE_FIELDS, "member_rows", "members_changed")
        .first()
    )
    if live is None:
        raise Http404("No such conference.")
    version = fingerprint([live, range_key, before])

    def page_context():
        conferences = Conference.objects.select_related("account", "latest_history")
        conference = get_object_or_404(conferences, pk=pk)
        context = conference_page_context(conference, range_key=range_key, cursor=cursor)
        context.update({"version": version, "before": before})
        return context

    if request.htmx:
        return htmx_partial(
            request, "conferences/detail.html#live-status", page_context, version=version
        )
    context = page_context()
    conference = context["conference"]
    maintenance.mark_in_maintenance([conference])
    context["deliveries"] = list(
        conference.deliveries.order_by("-created_at")[:MAX_DELIVERIES_SHOWN]
    )
    context["can_acknowledge"] = roles.allows(request.user, "conferences.acknowledge")
    context["can_share"] = roles.allows(request.user, "share_links.manage")
    return render_page(request, "conferences/detail.html", context)


def duration_of(conference):
    """A completed conference's duration as pages write it, or ""."""
    seconds = conference.duration_seconds
    return text.duration_text(seconds) if seconds is not None else ""


def conference_page_context(conference, *, range_key, cursor):
    logs.bind(account=conference.account.name, conference=conference.conference_id)
    now = timezone.now()
    state_since = conference.state_since if conference.state else None
    chart = charts.conference_chart(conference, range_key=range_key, now=now)
    title = f"Active members of {conference}, {chart.range_label}"
    return {
        "conference": conference,
        "state_since": state_since,
        "in_state_for": text.duration_text(now - state_since) if state_since else "",
        "duration": duration_of(conference),
        "stale": conference.stale_at(now),
        "chart": chart,
        "chart_svg": mark_safe(chart.svg(title=title)),  # charts escapes every text
        "chart_summary": chart.summary(),
        "ranges": [(key, label) for key, (label, _) in charts.RANGES.items()],
        "range_key": range_key,
        "timeline": timeline.timeline_page(conference, before=cursor, now=now),
        **members.page_context(conference, now=now),
    }


@token_readable(signed_out="login")
@requires(GET="pages.read")
def conference_export(request, pk, fmt):
    """The conference's history over a range of the chart, as CSV or JSON (the fields of
    the history API), streamed."""
    if fmt not in exports.FORMATS:
        raise Http404("Export as csv or json.")
    try:
        range_key = charts.parse_range(request.GET.get("range"))
    except charts.BadRange as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    conference = get_object_or_404(Conference.objects.select_related("account"), pk=pk)
    logs.bind(account=conference.account.name, conference=conference.conference_id)
    return exports.history_response(conference, fmt=fmt, range_key=range_key)

"""The conference page: live status card, members chart, timeline; and its history export."""

from django.db.models import Count, Max
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
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
    bad_request,
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
    live = (
        Conference.objects.filter(pk=pk)
        # A member change (a callback's mute, say) changes the page too.
        .annotate(member_rows=Count("members"), members_changed=Max("members__last_changed_at"))
        .values_list(*LIVE_FIELDS, "member_rows", "members_changed")
        .first()
    )
    if live is None:
        raise Http404("No such conference.")
    try:
        range_key = charts.parse_range(request.GET.get("range"), conference=pk)
        before = request.GET.get("before") or None
        cursor = timeline.Cursor.parse(before) if before else None
    except (charts.BadRange, timeline.BadCursor) as error:
        return bad_request(
            request,
            problem=str(error),
            advice="Open the conference page without it, then choose a range above the chart.",
            back=(reverse("conferences:detail", args=[pk]), "Open the conference page"),
        )
    # A maintenance window beginning or ending changes the page's badge, not the row.
    covering = maintenance.Covering(now=timezone.now())
    version = fingerprint([live, range_key, before, covering.key()])
    if request.htmx:
        return htmx_partial(
            request,
            "conferences/detail.html#live-status",
            lambda: conference_page_context(
                conference_of(pk),
                range_key=range_key,
                cursor=cursor,
                before=before,
                version=version,
                covering=covering,
            ),
            version=version,
        )
    return conference_page(
        request,
        conference_of(pk),
        range_key=range_key,
        cursor=cursor,
        before=before,
        version=version,
        covering=covering,
    )


def conference_of(pk):
    return get_object_or_404(Conference.objects.select_related("account", "latest_history"), pk=pk)


def conference_page(
    request,
    conference,
    *,
    range_key=None,
    cursor=None,
    before=None,
    version=None,
    covering=None,
    forms=None,
    status=200,
):
    """The whole conference page. `forms`: the acknowledge_form or share_form to show as
    typed (refuse_form), else the panels show empty ones."""
    range_key = range_key or charts.parse_range(None, conference=conference)
    context = conference_page_context(
        conference,
        range_key=range_key,
        cursor=cursor,
        before=before,
        version=version,
        covering=covering,
    )
    context["deliveries"] = list(
        conference.deliveries.order_by("-created_at")[:MAX_DELIVERIES_SHOWN]
    )
    context["can_acknowledge"] = roles.allows(request.user, "conferences.acknowledge")
    context["can_share"] = roles.allows(request.user, "share_links.manage")
    context.update(forms or {})
    return render_page(request, "conferences/detail.html", context, status=status)


def refuse_form(request, conference, **forms):
    """A conference page form that was refused (the acknowledge and share forms): the
    page again, 400, with the form as typed and its errors beside it."""
    return conference_page(request, conference, forms=forms, status=400)


def duration_of(conference):
    """A completed conference's duration as pages write it, or ""."""
    seconds = conference.duration_seconds
    return text.duration_text(seconds) if seconds is not None else ""


def conference_page_context(
    conference, *, range_key, cursor=None, before=None, version=None, covering=None
):
    """What the live-status partial reads (the page adds its panels). `version`: the
    live refresh's fingerprint (None: the first refresh renders the partial again);
    `covering`: the maintenance windows the version was made with."""
    logs.bind(account=conference.account.name, conference=conference.conference_id)
    now = timezone.now()
    state_since = conference.state_since if conference.state else None
    chart = charts.conference_chart(conference, range_key=range_key, now=now)
    covering = covering or maintenance.Covering(now=now)
    covering.mark([conference])  # "in maintenance until ..."
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
        "ranges": charts.range_choices(),
        "range_key": range_key,
        # Links are absolute: a refused form renders this page at the form's address.
        "page_url": reverse("conferences:detail", args=[conference.pk]),
        "timeline": timeline.timeline_page(conference, before=cursor, now=now),
        "before": before,
        "version": version,
        **members.page_context(conference, now=now),
    }


@token_readable(signed_out="login")
@requires(GET="pages.read")
def conference_export(request, pk, fmt):
    """The conference's history over a range of the chart, as CSV or JSON (the fields of
    the history API), streamed."""
    if fmt not in exports.FORMATS:
        raise Http404("Export as csv or json.")
    conference = get_object_or_404(Conference.objects.select_related("account"), pk=pk)
    logs.bind(account=conference.account.name, conference=conference.conference_id)
    try:
        range_key = charts.parse_range(request.GET.get("range"), conference=conference)
    except charts.BadRange as error:
        return bad_request(
            request,
            problem=str(error),
            advice="Export from the links above the conference page's chart.",
            back=(reverse("conferences:detail", args=[pk]), "Open the conference page"),
        )
    return exports.history_response(conference, fmt=fmt, range_key=range_key)

"""Share links: create, revoke, and the read-only page a link opens."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache

from conferences.alerting import sharing
from conferences.models import (
    Conference,
    EventKind,
    ShareLink,
)
from conferences.recording import members
from conferences.registry.roles import requires
from conferences.text import local_text
from conferences.web.forms import (
    ShareForm,
)
from conferences.web.selectors import charts, timeline
from conferences.web.views.common import bad_request
from conferences.web.views.conference import refuse_form


@requires(POST="share_links.manage")
def share_create(request, pk):
    """Create a read-only share link of the conference (templates/conferences/_share.html)."""
    conference = get_object_or_404(Conference, pk=pk)
    form = ShareForm(request.POST)
    if not form.is_valid():
        return refuse_form(request, conference, share_form=form)
    link = sharing.create_link(
        conference=conference, user=request.user, expires_in=form.cleaned_data["expires"]
    )
    until = local_text(link.expires_at, seconds=False)
    messages.success(request, f"Share link, until {until}: {sharing.share_url(link)}")
    return redirect("conferences:detail", pk=conference.pk)


@requires(POST="share_links.manage")
def share_revoke(request, pk):
    link = get_object_or_404(ShareLink, pk=pk)
    sharing.revoke(link)
    messages.success(request, "Share link revoked: it now answers 404.")
    return redirect("conferences:detail", pk=link.conference_id)


SHARED_HISTORY = 200


SHARED_EVENTS = 200


SHARED_DELIVERIES = 50


@never_cache
@login_not_required
@requires(GET="token_links")
def shared_conference(request, token):
    """The read-only page a share link opens, without signing in: the conference's status,
    history, timeline and alert emails, nothing else. An unknown, changed, expired or
    revoked link answers the same 404, whether or not the conference exists."""
    link = sharing.link_for(token)
    if link is None:
        response = render(request, "conferences/shared_missing.html", status=404)
    else:
        try:
            range_key = charts.parse_range(request.GET.get("range"), conference=link.conference)
        except charts.BadRange as error:
            response = bad_request(
                request,
                problem=str(error),
                advice="Open the shared page without it, then choose a range above the chart.",
                back=(request.path, "Open the shared page"),
            )
        else:
            response = render(
                request, "conferences/shared.html", shared_context(link, range_key=range_key)
            )
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def shared_context(link, *, range_key):
    conference = link.conference
    events = list(conference.events.order_by("-occurred_at", "-id")[:SHARED_EVENTS])
    for event in events:
        event.before_shown = timeline.shown(event.before)
        event.after_shown = timeline.shown(event.after)
        if event.kind == EventKind.ACKNOWLEDGED:
            event.before_shown = event.after_shown = "–"  # who is not shared
    history = list(conference.history.order_by("-first_seen_at")[:SHARED_HISTORY])
    for entry in history:
        entry.last_seen_at = conference.run_last_seen(entry.pk, entry.last_seen_at)
    now = timezone.now()
    chart = charts.conference_chart(conference, range_key=range_key, now=now)
    context = {
        "conference": conference,
        "link": link,
        "chart_svg": mark_safe(  # charts escapes every text
            chart.svg(title=f"Active members of {conference}, {chart.range_label}")
        ),
        "chart_summary": chart.summary(),
        "chart": chart,
        "ranges": charts.range_choices(),
        "range_key": range_key,
        **members.page_context(conference, now=now),
        "history": history,
        "events": events,
        "deliveries": list(
            conference.deliveries.order_by("-created_at", "-id")[:SHARED_DELIVERIES]
        ),
    }
    return context

import functools
import hashlib
import sys
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import Count, Max, Q
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conferences import text
from conferences.alerting import acknowledgements, schedules, sharing, subscriptions
from conferences.alerting.unsubscribe import read_link as unsubscribe_link
from conferences.callbacks import receiver as callbacks
from conferences.models import (
    Account,
    Conference,
    Delivery,
    EventKind,
    ShareLink,
    Subscription,
    UserPreference,
)
from conferences.ops.health import report as health_report
from conferences.recording import members, observations
from conferences.registry import roles, tracking
from conferences.registry.roles import requires
from conferences.web.forms import (
    SORT_COLUMNS,
    AcknowledgeForm,
    FilterForm,
    PreferenceForm,
    ShareForm,
    SubscriptionForm,
    TrackForm,
)
from conferences.web.middleware import TIME_ZONE_KEY
from conferences.web.selectors import charts, exports, overview, reports, timeline

MAX_LISTED = 500
ACCOUNT_REFRESH = 10  # seconds between refreshes of the overview's account strip
MAX_DELIVERIES_SHOWN = 20


def fingerprint(rows):
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def filtered_conferences(params):
    """The API's list: the overview's filters, in a plain order."""
    form = FilterForm(params)
    conferences = Conference.objects.select_related("account").order_by(
        "account__name", "label", "conference_id"
    )
    if not form.is_valid():
        return form, conferences.none()
    return form, conferences.filter(overview.filter_q(form.cleaned_data, now=timezone.now()))


def htmx_partial(request, template, context, *, version):
    """Render the named partial for an htmx poll, or 204 when the client has it already."""
    if request.GET.get("v") == version:
        response = HttpResponse(status=204)
    else:
        response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def query_with(params, **changes):
    """The query string of params with some parameters changed (None drops one)."""
    query = params.copy()
    for name in ("v", "part"):
        query.pop(name, None)
    for name, value in changes.items():
        query.pop(name, None)
        if value not in (None, ""):
            query[name] = value
    return query.urlencode()


def sort_links(params, current):
    """Each sortable column's link: ascending first, descending when already ascending."""
    links = {}
    for column in SORT_COLUMNS:
        next_sort = f"-{column}" if current == column else column
        if current == column:
            direction = "ascending"
        elif current == f"-{column}":
            direction = "descending"
        else:
            direction = ""
        links[column] = {
            "query": query_with(params, sort=next_sort, page=None),
            "direction": direction,
        }
    return links


@requires(GET="pages.read")
def conference_list(request):
    now = timezone.now()
    if request.htmx and request.GET.get("part") == "accounts":
        response = render(
            request,
            "conferences/list.html#account-strip",
            {"accounts": overview.account_strip(), "refresh_seconds": ACCOUNT_REFRESH},
        )
        patch_vary_headers(response, ["HX-Request"])
        return response
    form = FilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else None
    page = (data or {}).get("page") or 1
    sort = (data or {}).get("sort") or ""
    summary = overview.summarize(data, now=now)
    pages = max(1, -(-summary.rows // overview.PAGE_SIZE))
    page = min(page, pages)  # past the end (rows went away): the last page
    version = summary.version(page, sort, timezone.localdate())
    if request.htmx and request.GET.get("v") == version:
        response = HttpResponse(status=204)
        patch_vary_headers(response, ["HX-Request"])
        return response
    rows = overview.page_of_rows(data, now=now, page=page) if data is not None else []
    add_row_urls(rows)
    first = (page - 1) * overview.PAGE_SIZE + 1
    can_pause = roles.allows(request.user, "conferences.pause")
    can_untrack = roles.allows(request.user, "conferences.untrack")
    context = {
        "form": form,
        "conferences": rows,
        "summary": summary,
        "counts": overview.count_links(summary),
        "version": version,
        "query": query_with(request.GET),
        "filtered": bool(query_with(request.GET, page=None, sort=None)),
        "sort": sort,
        "sort_links": sort_links(request.GET, sort),
        "page": page,
        "pages": pages,
        "first_shown": first if rows else 0,
        "last_shown": first + len(rows) - 1,
        "previous_query": query_with(request.GET, page=page - 1 if page > 2 else None)
        if page > 1
        else None,
        "next_query": query_with(request.GET, page=page + 1) if page < pages else None,
        "show_account": summary.accounts > 1,
        "can_pause": can_pause,
        "can_untrack": can_untrack,
        "row_options": {
            "show_account": summary.accounts > 1,
            "can_pause": can_pause,
            "can_untrack": can_untrack,
            "stale_after": int(overview.stale_after()),
        },
        "troubled_accounts": Account.objects.exclude(problem="").order_by("name"),
        "refresh_seconds": settings.CONFWATCH_PAGE_REFRESH,
        "hidden_refresh_seconds": hidden_refresh_seconds(),
        "account_refresh_seconds": ACCOUNT_REFRESH,
        "poll_interval": settings.CONFWATCH_POLL_INTERVAL,
    }
    if request.htmx:
        # The counts sit above the filters, outside the refreshed table: they come along
        # as an out-of-band swap.
        context["oob_counts"] = True
        response = render(request, "conferences/list.html#overview-live", context)
    else:
        context["accounts"] = overview.account_strip()
        response = render(request, "conferences/list.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


# The columns of a conference (and its account) the conference page shows: its live
# refresh compares them, read in one cheap query, before loading anything else.
LIVE_FIELDS = (
    "label",
    "tags",
    "paused",
    "state",
    "active_members",
    "hold",
    "mute",
    "from_number",
    "created_time",
    "completed_time",
    "callback_url",
    "catapult_tag",
    "poll_status",
    "poll_error",
    "last_polled_at",
    "last_observed_at",
    "last_changed_at",
    "latest_history_id",
    "account__problem",
    "account__problem_message",
    "account__request_budget",
    "account__base_url",
)
PK_MARK = 987654321


def add_row_urls(rows):
    """Each row's links and action addresses, reversed once per page, not per row."""
    patterns = {
        name: reverse(f"conferences:{name}", args=[PK_MARK]).replace(str(PK_MARK), "{}")
        for name in ("detail", "pause", "resume", "untrack")
    }
    for row in rows:
        for name, pattern in patterns.items():
            setattr(row, f"{name}_url", pattern.format(row.pk))


def hidden_refresh_seconds():
    """A tab nobody looks at refreshes this often (seconds) instead."""
    return max(settings.CONFWATCH_PAGE_REFRESH * 15, 30)


def back_to_list(request):
    """Where a row action returns: the overview the user was on (same host only)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("conferences:list")


@requires(POST="conferences.pause")
def conference_pause(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    if tracking.pause(Conference.objects.filter(pk=pk, paused=False)):
        LogEntry.objects.log_actions(request.user.pk, [conference], CHANGE, "Paused tracking.")
        messages.success(request, f"Paused {conference}: it is no longer polled.")
    else:
        messages.info(request, f"{conference} was paused already.")
    return back_to_list(request)


@requires(POST="conferences.pause")
def conference_resume(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    if tracking.resume(Conference.objects.filter(pk=pk, paused=True)):
        LogEntry.objects.log_actions(request.user.pk, [conference], CHANGE, "Resumed tracking.")
        messages.success(request, f"Resumed {conference}: it is polled again.")
    else:
        messages.info(request, f"{conference} was not paused.")
    return back_to_list(request)


@requires(POST="conferences.untrack")
def conference_untrack(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    LogEntry.objects.log_actions(request.user.pk, [conference], DELETION, "Untracked.")
    conference.delete()
    messages.success(
        request, f"Untracked {conference} ({conference.conference_id}) and deleted its history."
    )
    return back_to_list(request)


@requires(GET="account.own", POST="account.own")
def preferences(request):
    """The signed-in user's time zone for the pages."""
    preference = UserPreference.objects.filter(user=request.user).first()
    preference = preference or UserPreference(user=request.user)  # saved on POST only
    form = PreferenceForm(request.POST or None, instance=preference)
    if request.method == "POST" and form.is_valid():
        form.save()
        request.session[TIME_ZONE_KEY] = preference.time_zone
        zone = preference.time_zone or f"the site's ({settings.TIME_ZONE})"
        messages.success(request, f"Times are now shown in {zone}.")
        return redirect("conferences:preferences")
    context = {
        "form": form,
        "zone_names": subscriptions.zone_names(),
        "site_time_zone": settings.TIME_ZONE,
        "now": timezone.now(),
    }
    return render(request, "conferences/preferences.html", context)


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
    if request.htmx and request.GET.get("v") == version:
        response = HttpResponse(status=204)
        patch_vary_headers(response, ["HX-Request"])
        return response
    conferences = Conference.objects.select_related("account", "latest_history")
    conference = get_object_or_404(conferences, pk=pk)
    context = conference_page_context(conference, range_key=range_key, cursor=cursor)
    context.update({"version": version, "before": before})
    if request.htmx:
        return render(request, "conferences/detail.html#live-status", context)
    context["deliveries"] = list(
        conference.deliveries.order_by("-created_at")[:MAX_DELIVERIES_SHOWN]
    )
    context["can_acknowledge"] = roles.allows(request.user, "conferences.acknowledge")
    context["can_share"] = roles.allows(request.user, "share_links.manage")
    response = render(request, "conferences/detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def conference_page_context(conference, *, range_key, cursor):
    now = timezone.now()
    state_since = observations.state_since(conference.pk) if conference.state else None
    chart = charts.conference_chart(conference, range_key=range_key, now=now)
    title = f"Active members of {conference}, {chart.range_label}"
    stale_after = timedelta(seconds=2 * settings.CONFWATCH_POLL_INTERVAL)
    return {
        "conference": conference,
        "state_since": state_since,
        "in_state_for": text.duration_text(now - state_since) if state_since else "",
        "stale": conference.is_polled
        and conference.last_observed_at is not None
        and now - conference.last_observed_at > stale_after,
        "chart": chart,
        "chart_svg": mark_safe(chart.svg(title=title)),  # charts escapes every text
        "chart_summary": chart.summary(),
        "ranges": [(key, label) for key, (label, _) in charts.RANGES.items()],
        "range_key": range_key,
        "timeline": timeline.timeline_page(conference, before=cursor, now=now),
        **members.page_context(conference, now=now),
        "refresh_seconds": settings.CONFWATCH_PAGE_REFRESH,
    }


@requires(GET="conferences.track", POST="conferences.track")
def track(request):
    form = TrackForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        added, existing = tracking.track_conferences(
            account=form.cleaned_data["account"],
            conference_ids=form.cleaned_data["conference_ids"],
            label=form.cleaned_data["label"],
            tags=form.cleaned_data["tags"],
        )
        if added:
            messages.success(request, f"Now tracking {', '.join(added)}.")
        if existing:
            messages.info(request, f"Already tracked: {', '.join(existing)}.")
        return redirect("conferences:list")
    return render(request, "conferences/track.html", {"form": form})


@requires(GET="subscriptions.own", POST="subscriptions.own")
def alerts(request):
    """The signed-in user's own subscriptions, a form to add one, their recent emails.
    Only those who may subscribe others (roles) subscribe another address than their own."""
    form = SubscriptionForm(request.POST or None, initial={"email": request.user.email})
    if not roles.allows(request.user, "subscriptions.others"):
        form.fields["email"].widget.attrs["readonly"] = True
        form.fields["email"].help_text = "Your own address: an admin subscribes other ones."
        if request.method == "POST" and not roles.is_own_address(
            request.user, request.POST.get("email")
        ):
            raise PermissionDenied("Only an admin subscribes another address than yours.")
    if request.method == "POST" and form.is_valid():
        try:
            subscription, created = subscriptions.subscribe(
                user=request.user, **form.subscribe_arguments()
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if created:
                messages.success(request, f"Subscribed {subscriptions.describe(subscription)}.")
            else:
                messages.info(
                    request, f"{subscription.email} already gets exactly these alerts; unchanged."
                )
            return redirect("conferences:alerts")
    own = (
        Subscription.objects.filter(user=request.user)
        .select_related("account")
        .prefetch_related("conferences")
        .order_by("-created_at", "-id")
    )
    rows = [
        {
            "subscription": subscription,
            "scope": subscriptions.scope_text(subscription),
            "thresholds": subscriptions.threshold_text(subscription),
            "rules": subscriptions.rule_text(subscription),
            "quiet_hours": schedules.format_quiet_hours(
                subscription.quiet_start, subscription.quiet_end
            ),
        }
        for subscription in own
    ]
    recipients = Q(subscription__user=request.user)
    if request.user.email:
        recipients |= Q(email__iexact=request.user.email)
    deliveries = (
        Delivery.objects.filter(recipients)
        .select_related("conference")
        .order_by("-created_at", "-id")[:MAX_DELIVERIES_SHOWN]
    )
    context = {
        "form": form,
        "rows": rows,
        "deliveries": list(deliveries),
        "zone_names": subscriptions.zone_names(),
        "site_time_zone": settings.TIME_ZONE,
    }
    return render(request, "conferences/alerts.html", context)


@requires(POST="subscriptions.own")
def alert_delete(request, pk):
    """Delete one of the signed-in user's subscriptions (anyone else's is a 404)."""
    subscription = get_object_or_404(Subscription, pk=pk, user=request.user)
    description = subscriptions.describe(subscription)
    subscriptions.unsubscribe(subscription)
    messages.success(request, f"Deleted {description}.")
    return redirect("conferences:alerts")


@csrf_exempt  # The signed token authorises it; mail clients' one-click POST has no CSRF.
@never_cache
@login_not_required
@requires(GET="token_links", POST="token_links")
def unsubscribe(request, token):
    """The link in every alert email. GET asks; POST (a click, or a mail client's RFC 8058
    one-click "List-Unsubscribe=One-Click") deletes the subscription the token names.
    Opened again, it says "already unsubscribed"; a forged or damaged link is a 404."""
    link = unsubscribe_link(token)
    if link is None:
        return render(request, "conferences/unsubscribe_invalid.html", status=404)
    subscription = link.subscription
    if subscription is None:
        return render(request, "conferences/unsubscribe_gone.html", {"email": link.email})
    context = {
        "subscription": subscription,
        "scope": subscriptions.scope_text(subscription),
        "done": False,
    }
    if request.method == "POST":
        subscriptions.unsubscribe(subscription)
        context["done"] = True
    return render(request, "conferences/unsubscribe.html", context)


def api_login_required(view):
    """JSON endpoints answer 401 instead of redirecting scripts to the sign-in page."""

    @login_not_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "Sign in first."}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


@api_login_required
@requires(GET="pages.read")
def api_conferences(request):
    form, conferences = filtered_conferences(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form.errors.get_json_data()}, status=400)
    return JsonResponse(
        {"conferences": [reports.conference_data(c) for c in conferences[:MAX_LISTED]]}
    )


@api_login_required
@requires(GET="pages.read")
def api_history(request, conference_id):
    try:
        conference = tracking.find_conference(
            conference_id, account_name=request.GET.get("account")
        )
    except tracking.NotTracked as error:
        return JsonResponse({"error": str(error)}, status=404)
    except LookupError as error:
        return JsonResponse({"error": f"{error} Add ?account=NAME."}, status=409)
    return JsonResponse(reports.conference_with_history(conference))


@never_cache
@login_not_required
@requires(GET="public")  # GET or HEAD, as load balancers send
def health(request):
    """For load balancers and monitors: 200 when the database and the broker answer,
    503 otherwise; JSON with what was checked, nothing secret."""
    healthy, data = health_report()
    return JsonResponse(data, status=200 if healthy else 503)


def server_error(request):
    """handler500: an unreachable database is a 503 ("try again"), and the JSON API
    answers JSON whatever went wrong."""
    error = sys.exc_info()[1]
    unavailable = isinstance(error, (OperationalError, InterfaceError))
    status = 503 if unavailable else 500
    message = (
        "The database is unavailable; try again shortly."
        if unavailable
        else "Something went wrong on our side; it has been logged."
    )
    if request.path.startswith("/api/") or request.path.startswith("/health/"):
        return JsonResponse({"error": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain")


# --------------------------------------------------------------------------- acknowledge


@never_cache
@login_not_required
@requires(GET="token_links", POST="token_links")
def acknowledge_alert(request, token):
    """The "Acknowledge" link of an alert email, no sign-in needed: GET asks (a mail
    scanner that follows links acknowledges nothing), POST acknowledges, with an optional
    reason and expiry. The link acts once: used again, it shows what was acknowledged, by
    whom and when. An expired link is a 410, a forged or damaged one a plain 404; neither
    changes anything."""
    link = acknowledgements.read_link(token)
    if link is None:
        return render(request, "conferences/acknowledge_invalid.html", status=404)
    delivery = link.delivery
    if link.expired:
        context = {"delivery": delivery, "days": acknowledgements.link_days()}
        return render(request, "conferences/acknowledge_expired.html", context, status=410)
    form = AcknowledgeForm(request.POST if request.method == "POST" else None)
    done = acknowledgements.made_by_link(delivery)
    used_before = done is not None
    if not used_before and request.method == "POST" and form.is_valid():
        signed_in = request.user.is_authenticated
        done, made = acknowledgements.acknowledge_alert(
            delivery=delivery,
            by=request.user.get_username() if signed_in else delivery.email,
            user=request.user if signed_in else None,
            reason=form.cleaned_data["reason"],
            expires_in=form.cleaned_data["expires"],
        )
        used_before = not made
    context = {
        "delivery": delivery,
        "conference": delivery.conference,
        "form": form,
        "done": done,
        "used_before": used_before,
        "in_force": done is not None and acknowledgements.in_force(done, timezone.now()),
    }
    status = 400 if done is None and form.errors else 200
    return render(request, "conferences/acknowledge.html", context, status=status)


@requires(POST="conferences.acknowledge")
def acknowledge_conference(request, pk):
    """The conference page's "Acknowledge" form (templates/conferences/_acknowledge.html)."""
    conference = get_object_or_404(Conference, pk=pk)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "conferences/form_problem.html",
            {"conference": conference, "form": form, "what": "acknowledge"},
            status=400,
        )
    acknowledgements.acknowledge(
        conference=conference,
        by=request.user.get_username(),
        user=request.user,
        reason=form.cleaned_data["reason"],
        expires_in=form.cleaned_data["expires"],
    )
    messages.success(request, f"Acknowledged {conference}: nothing more until its state changes.")
    return redirect("conferences:detail", pk=conference.pk)


# --------------------------------------------------------------------------- share links


@requires(POST="share_links.manage")
def share_create(request, pk):
    """Create a read-only share link of the conference (templates/conferences/_share.html)."""
    conference = get_object_or_404(Conference, pk=pk)
    form = ShareForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "conferences/form_problem.html",
            {"conference": conference, "form": form, "what": "share"},
            status=400,
        )
    link = sharing.create_link(
        conference=conference, user=request.user, expires_in=form.cleaned_data["expires"]
    )
    messages.success(
        request,
        f"Share link, until {link.expires_at:%Y-%m-%d %H:%M %Z}: {sharing.share_url(link)}",
    )
    return redirect("conferences:detail", pk=conference.pk)


@requires(POST="share_links.manage")
def share_revoke(request, pk):
    link = get_object_or_404(ShareLink, pk=pk)
    sharing.revoke(link)
    messages.success(request, "Share link revoked: it now answers 404.")
    return redirect("conferences:detail", pk=link.conference_id)


SHARED_HISTORY = 200
SHARED_CHART_RANGE = "7d"
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
        chart = charts.conference_chart(conference, range_key=SHARED_CHART_RANGE, now=now)
        context = {
            "conference": conference,
            "link": link,
            "chart_svg": mark_safe(  # charts escapes every text
                chart.svg(title=f"Active members of {conference}, {chart.range_label}")
            ),
            "chart_summary": chart.summary(),
            **members.page_context(conference, now=now),
            "history": history,
            "events": events,
            "deliveries": list(
                conference.deliveries.order_by("-created_at", "-id")[:SHARED_DELIVERIES]
            ),
        }
        response = render(request, "conferences/shared.html", context)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


# --------------------------------------------------------------------------- members and
# callbacks


@csrf_exempt  # Catapult posts here; the secret in the URL authorises it.
@never_cache
@login_not_required
@requires(GET="token_links", POST="token_links")
@require_http_methods(["GET", "POST"])  # not HEAD: a callback's GET carries its event
def callback(request, secret):
    """Catapult's conference events for one account (conferences/callbacks.py)."""
    receipt = callbacks.receive(
        secret=secret,
        method=request.method,
        body_stream=request,
        content_length=request.META.get("CONTENT_LENGTH"),
        query=request.GET,
        authorization=request.headers.get("Authorization"),
    )
    response = JsonResponse({"result": receipt.message}, status=receipt.status)
    if receipt.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="confwatch callbacks"'
    # Django logs 4xx with the path, which holds the secret: this view logs its own.
    response._has_been_logged = True
    return response


@requires(GET="pages.read")
def call_search(request):
    """Which conferences a call was in, when and for how long."""
    call_id = request.GET.get("call_id", "").strip()[:200]
    rows = members.calls_by_call_id(call_id) if call_id else []
    return render(request, "conferences/calls.html", {"call_id": call_id, "rows": rows})


@api_login_required
@requires(GET="pages.read")
def api_call(request, call_id):
    rows = members.calls_by_call_id(call_id[:200])
    return JsonResponse(
        {"call_id": call_id, "conferences": [members.call_data(row) for row in rows]}
    )


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
    return exports.history_response(conference, fmt=fmt, range_key=range_key)

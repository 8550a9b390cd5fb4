import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conferences import (
    charts,
    exports,
    observations,
    reports,
    roles,
    subscriptions,
    timeline,
    tracking,
)
from conferences.forms import FilterForm, SubscriptionForm, TrackForm
from conferences.models import Account, Conference, Delivery, Subscription
from conferences.unsubscribe import subscription_for

MAX_LISTED = 500
MAX_DELIVERIES_SHOWN = 20


def fingerprint(rows):
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def filtered_conferences(params):
    form = FilterForm(params)
    conferences = Conference.objects.select_related("account").order_by(
        "account__name", "label", "conference_id"
    )
    if not form.is_valid():
        return form, conferences.none()
    query = form.cleaned_data["q"].strip()
    if query:
        conferences = conferences.filter(
            Q(conference_id__icontains=query)
            | Q(label__icontains=query)
            | Q(tags__contains=[query.lower()])
        )
    state = form.cleaned_data["state"]
    if state == "pending":
        conferences = conferences.filter(state__isnull=True)
    elif state:
        conferences = conferences.filter(state=state)
    if form.cleaned_data["tracking"] == "paused":
        conferences = conferences.filter(paused=True)
    elif form.cleaned_data["tracking"] != "all":
        conferences = conferences.filter(paused=False)
    if form.cleaned_data["account"]:
        conferences = conferences.filter(account=form.cleaned_data["account"])
    return form, conferences


def htmx_partial(request, template, context, *, version):
    """Render the named partial for an htmx poll, or 204 when the client has it already."""
    if request.GET.get("v") == version:
        response = HttpResponse(status=204)
    else:
        response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def conference_list(request):
    form, conferences = filtered_conferences(request.GET)
    conferences = list(conferences[:MAX_LISTED])
    version = fingerprint(
        [
            (c.pk, c.label, c.state, c.active_members, c.hold, c.mute, c.paused)
            + (c.poll_status, c.last_polled_at, c.last_changed_at)
            for c in conferences
        ]
    )
    query = request.GET.copy()
    query.pop("v", None)
    context = {
        "form": form,
        "conferences": conferences,
        "version": version,
        "query": query.urlencode(),
        "truncated": len(conferences) == MAX_LISTED,
        "troubled_accounts": Account.objects.exclude(problem="").order_by("name"),
        "refresh_seconds": settings.CONFWATCH_PAGE_REFRESH,
    }
    if request.htmx:
        return htmx_partial(
            request, "conferences/list.html#conference-rows", context, version=version
        )
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
)


def conference_detail(request, pk):
    """The conference page: live status card, members chart over a range, timeline. Its
    live refresh (htmx) answers 204 when the conference's row has not changed."""
    try:
        range_key = charts.parse_range(request.GET.get("range"))
        before = request.GET.get("before") or None
        cursor = timeline.Cursor.parse(before) if before else None
    except (charts.BadRange, timeline.BadCursor) as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    live = Conference.objects.filter(pk=pk).values_list(*LIVE_FIELDS).first()
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
        "in_state_for": timeline.duration_text(now - state_since) if state_since else "",
        "stale": conference.is_polled
        and conference.last_observed_at is not None
        and now - conference.last_observed_at > stale_after,
        "chart": chart,
        "chart_svg": mark_safe(chart.svg(title=title)),  # charts escapes every text
        "chart_summary": chart.summary(),
        "ranges": [(key, label) for key, (label, _) in charts.RANGES.items()],
        "range_key": range_key,
        "timeline": timeline.timeline_page(conference, before=cursor, now=now),
        "refresh_seconds": settings.CONFWATCH_PAGE_REFRESH,
    }


@permission_required(roles.TRACK_PERMISSION, raise_exception=True)
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


def alerts(request):
    """The signed-in user's own subscriptions, a form to add one, their recent emails."""
    form = SubscriptionForm(request.POST or None, initial={"email": request.user.email})
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


@require_POST
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
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token):
    """The link in every alert email. GET asks; POST (a click, or a mail client's RFC 8058
    one-click "List-Unsubscribe=One-Click") deletes the subscription the token names."""
    subscription = subscription_for(token)
    if subscription is None:
        return render(request, "conferences/unsubscribe_invalid.html", status=404)
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
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "Sign in first."}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@api_login_required
def api_conferences(request):
    form, conferences = filtered_conferences(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form.errors.get_json_data()}, status=400)
    return JsonResponse(
        {"conferences": [reports.conference_data(c) for c in conferences[:MAX_LISTED]]}
    )


@require_GET
@api_login_required
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


@require_GET
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

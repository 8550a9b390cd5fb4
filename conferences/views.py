import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conferences import overview, reports, roles, subscriptions, tracking
from conferences.forms import (
    SORT_COLUMNS,
    FilterForm,
    PreferenceForm,
    SubscriptionForm,
    TrackForm,
)
from conferences.models import (
    Account,
    Conference,
    Delivery,
    EventKind,
    Subscription,
    UserPreference,
)
from conferences.unsubscribe import subscription_for

MAX_LISTED = 500
ACCOUNT_REFRESH = 10  # seconds between refreshes of the overview's account strip
EVENTS_PER_PAGE = 50
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
    can_pause = request.user.has_perm(roles.PAUSE_PERMISSION)
    can_untrack = request.user.has_perm(roles.UNTRACK_PERMISSION)
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


@require_POST
@permission_required(roles.PAUSE_PERMISSION, raise_exception=True)
def conference_pause(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    if Conference.objects.filter(pk=pk, paused=False).update(paused=True):
        LogEntry.objects.log_actions(request.user.pk, [conference], CHANGE, "Paused tracking.")
        messages.success(request, f"Paused {conference}: it is no longer polled.")
    else:
        messages.info(request, f"{conference} was paused already.")
    return back_to_list(request)


@require_POST
@permission_required(roles.PAUSE_PERMISSION, raise_exception=True)
def conference_resume(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    if tracking.resume(Conference.objects.filter(pk=pk, paused=True)):
        LogEntry.objects.log_actions(request.user.pk, [conference], CHANGE, "Resumed tracking.")
        messages.success(request, f"Resumed {conference}: it is polled again.")
    else:
        messages.info(request, f"{conference} was not paused.")
    return back_to_list(request)


@require_POST
@permission_required(roles.UNTRACK_PERMISSION, raise_exception=True)
def conference_untrack(request, pk):
    conference = get_object_or_404(Conference, pk=pk)
    LogEntry.objects.log_actions(request.user.pk, [conference], DELETION, "Untracked.")
    conference.delete()
    messages.success(
        request, f"Untracked {conference} ({conference.conference_id}) and deleted its history."
    )
    return back_to_list(request)


def preferences(request):
    """The signed-in user's time zone for the pages."""
    preference, _ = UserPreference.objects.get_or_create(user=request.user)
    form = PreferenceForm(request.POST or None, instance=preference)
    if request.method == "POST" and form.is_valid():
        form.save()
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


def conference_detail(request, pk):
    conference = get_object_or_404(
        Conference.objects.select_related("account", "latest_history"), pk=pk
    )
    history = list(conference.history.order_by("-first_seen_at")[: reports.MAX_HISTORY_ITEMS])
    errors = list(conference.errors.order_by("-first_seen_at")[:20])
    version = fingerprint(
        [
            conference.state,
            conference.active_members,
            conference.hold,
            conference.mute,
            conference.poll_status,
            conference.last_polled_at,
            conference.paused,
        ]
    )
    context = {
        "conference": conference,
        "history": history,
        "errors": errors,
        "version": version,
        "refresh_seconds": settings.CONFWATCH_PAGE_REFRESH,
    }
    if request.htmx:
        return htmx_partial(
            request, "conferences/detail.html#live-status", context, version=version
        )
    # The timeline and the alert emails sit outside the live partial: the page shows
    # them as they were when it was loaded (reload for newer ones).
    events = Paginator(conference.events.order_by("-occurred_at", "-id"), EVENTS_PER_PAGE)
    events_page = events.get_page(request.GET.get("events_page"))
    for event in events_page:
        event.before_shown = shown_value(event.before)
        event.after_shown = shown_value(event.after)
        event.is_polling = event.kind in (EventKind.POLLING_PROBLEM, EventKind.POLLING_RECOVERED)
    context["events_page"] = events_page
    context["deliveries"] = list(
        conference.deliveries.order_by("-created_at")[:MAX_DELIVERIES_SHOWN]
    )
    response = render(request, "conferences/detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def shown_value(value):
    """An event's before or after value as the timeline shows it."""
    if value is None:
        return "–"
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value)


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

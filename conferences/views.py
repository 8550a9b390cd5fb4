import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conferences import callbacks, members, reports, roles, subscriptions, tracking
from conferences.forms import FilterForm, SubscriptionForm, TrackForm
from conferences.models import Account, Conference, Delivery, EventKind, Subscription
from conferences.unsubscribe import subscription_for

MAX_LISTED = 500
EVENTS_PER_PAGE = 50
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


# --------------------------------------------------------------------------- members and
# callbacks


@csrf_exempt  # Catapult posts here; the secret in the URL authorises it.
@never_cache
@login_not_required
@require_http_methods(["GET", "POST"])
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


def call_search(request):
    """Which conferences a call was in, when and for how long."""
    call_id = request.GET.get("call_id", "").strip()[:200]
    rows = members.calls_by_call_id(call_id) if call_id else []
    return render(request, "conferences/calls.html", {"call_id": call_id, "rows": rows})


@require_GET
@api_login_required
def api_call(request, call_id):
    rows = members.calls_by_call_id(call_id[:200])
    return JsonResponse(
        {"call_id": call_id, "conferences": [members.call_data(row) for row in rows]}
    )

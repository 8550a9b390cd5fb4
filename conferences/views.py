import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from conferences import reports, tracking
from conferences.forms import FilterForm, TrackForm
from conferences.models import Account, Conference

MAX_LISTED = 500


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
    response = render(request, "conferences/detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


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

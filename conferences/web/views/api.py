"""The JSON API: conferences, a conference's history, a call's conferences (docs/api.md).
Read with a session or an API token (`token_readable`)."""

from django.http import JsonResponse
from django.utils import timezone

from conferences.models import (
    Conference,
)
from conferences.ops import logs
from conferences.recording import members
from conferences.registry import tracking
from conferences.registry.roles import requires
from conferences.web.auth import token_readable
from conferences.web.forms import (
    FilterForm,
)
from conferences.web.selectors import overview, reports

MAX_LISTED = 500


def filtered_conferences(params):
    """The API's list: the overview's filters, in a plain order."""
    form = FilterForm(params)
    conferences = Conference.objects.select_related("account").order_by(
        "account__name", "label", "conference_id"
    )
    if not form.is_valid():
        return form, conferences.none()
    return form, conferences.filter(overview.filter_q(form.cleaned_data, now=timezone.now()))


@token_readable
@requires(GET="pages.read")
def api_conferences(request):
    form, conferences = filtered_conferences(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form.errors.get_json_data()}, status=400)
    return JsonResponse(
        {"conferences": [reports.conference_data(c) for c in conferences[:MAX_LISTED]]}
    )


@token_readable
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
    logs.bind(account=conference.account.name, conference=conference.conference_id)
    return JsonResponse(reports.conference_with_history(conference))


@token_readable
@requires(GET="pages.read")
def api_call(request, call_id):
    rows = members.calls_by_call_id(call_id[:200])
    return JsonResponse(
        {"call_id": call_id, "conferences": [members.call_data(row) for row in rows]}
    )

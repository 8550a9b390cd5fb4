"""/health/ for load balancers, and the 500 handler."""

import sys

from django.contrib.auth.decorators import login_not_required
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.cache import never_cache

from conferences.ops.health import report as health_report
from conferences.registry.roles import requires


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
    # Rendered without the request, like Django's own: no user, no database query.
    page = loader.render_to_string("500.html", {"status": status, "message": message})
    return HttpResponse(page, status=status)

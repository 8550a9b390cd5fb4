"""/metrics for Prometheus (conferences/ops/metrics.py)."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from conferences.ops import metrics as ops_metrics
from conferences.registry.roles import requires


@never_cache
@login_not_required
@requires(GET="public")  # its own check: a bearer token or an allowed address
def metrics(request):
    """The metrics in Prometheus' text format. Refused (401, before any query) without
    the token or an allowed address."""
    if not ops_metrics.scrape_allowed(request):
        response = HttpResponse("Unauthorized: send the metrics token.\n", status=401)
        response["Content-Type"] = "text/plain; charset=utf-8"
        response["WWW-Authenticate"] = 'Bearer realm="confwatch metrics"'
        return response
    return HttpResponse(ops_metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

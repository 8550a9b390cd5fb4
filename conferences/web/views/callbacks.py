"""The receiver of Catapult's callbacks (the logic is conferences/callbacks/receiver.py)."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from conferences.callbacks import receiver
from conferences.ops import metrics
from conferences.registry.roles import requires


@csrf_exempt  # Catapult posts here; the secret in the URL authorises it.
@never_cache
@login_not_required
@requires(GET="token_links", POST="token_links")
@require_http_methods(["GET", "POST"])  # not HEAD: a callback's GET carries its event
def callback(request, secret):
    """Catapult's conference events for one account (conferences/callbacks/receiver.py)."""
    receipt = receiver.receive(
        secret=secret,
        method=request.method,
        body_stream=request,
        content_length=request.META.get("CONTENT_LENGTH"),
        query=request.GET,
        authorization=request.headers.get("Authorization"),
    )
    metrics.callback_answered(receipt.status)
    response = JsonResponse({"result": receipt.message}, status=receipt.status)
    if receipt.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="confwatch callbacks"'
    # A refusal is logged as one line with the secret masked (conferences.ops.request_lines),
    # except past the rate limit, where a line per refused event would flood the log.
    if receipt.status == 429:
        response._has_been_logged = True
    return response

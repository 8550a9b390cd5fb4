"""Requests the application must not see, and what every request needs set up."""

import zoneinfo
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from conferences.models import UserPreference


class RejectNulBytes:
    """A NUL byte in the path or a query parameter is a 400: Postgres cannot store or
    compare text with NUL in it, so such a value would otherwise end as a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest(
                "Bad request: a NUL character in the address.", content_type="text/plain"
            )
        return self.get_response(request)


class HtmxSignInRedirect:
    """An htmx request without a (valid) session gets a client redirect to sign-in
    (`HX-Redirect`) instead of the sign-in page, which htmx would swap into the table.

    Covers every htmx endpoint at once: LoginRequiredMiddleware answers them all with the
    same redirect to LOGIN_URL, which this turns into a 204 carrying HX-Redirect. The
    `next` it names is the page the user was on (htmx sends it as HX-Current-URL), not
    the partial's address."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.headers.get("HX-Request") != "true" or response.status_code != 302:
            return response
        login_path = resolve_url(settings.LOGIN_URL)
        if urlsplit(response["Location"]).path != login_path:
            return response
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        if current.netloc == request.get_host() and current.path:
            next_url = current.path + (f"?{current.query}" if current.query else "")
        else:
            next_url = request.get_full_path()
        client_redirect = HttpResponse(status=204)
        client_redirect["HX-Redirect"] = f"{login_path}?{urlencode({'next': next_url}, safe='/')}"
        patch_vary_headers(client_redirect, ["HX-Request"])
        return client_redirect


class UserTimeZone:
    """Times on every page in the signed-in user's time zone (their preference), else
    the site's TIME_ZONE. Runs after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = ""
        if request.user.is_authenticated:
            zone_name = (
                UserPreference.objects.filter(user=request.user)
                .values_list("time_zone", flat=True)
                .first()
                or ""
            )
        try:
            zone = zoneinfo.ZoneInfo(zone_name) if zone_name else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None  # a zone name this system no longer knows: the site's
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

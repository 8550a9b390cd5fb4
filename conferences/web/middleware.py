"""Requests the application must not see, and what every request needs set up."""

import re
import time
import uuid
import zoneinfo
from urllib.parse import urlsplit

from django.contrib.auth import REDIRECT_FIELD_NAME, SESSION_KEY
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from conferences.models import UserPreference
from conferences.ops import logs

LAST_SEEN_KEY = "confwatch_last_seen"
TIME_ZONE_KEY = "confwatch_time_zone"


class RequestId:
    """Each request's id: the X-Request-ID a proxy sent, when it is a sane one (1 to 64
    letters, digits and . _ : -), else a new random one. Every log line of the request
    carries it (conferences/ops/logs.py), and the response echoes it."""

    VALID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = request.headers.get("X-Request-ID", "")
        request.request_id = sent if self.VALID.fullmatch(sent) else uuid.uuid4().hex
        # Not reset after the response: Django logs a failed request's line after the
        # middleware ran, and the next request starts afresh.
        logs.start(request_id=request.request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


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


class LoginRequired(LoginRequiredMiddleware):
    """Every view needs a signed-in user unless it is marked @login_not_required (fail
    closed: a new view is protected). An htmx request (a live update whose session
    ended) gets HX-Redirect to the sign-in page, so htmx reloads the whole page there
    instead of putting the sign-in form inside the one it updates."""

    def handle_no_permission(self, request, view_func):
        if request.headers.get("HX-Request") != "true":
            return super().handle_no_permission(request, view_func)
        current = request.headers.get("HX-Current-URL") or request.get_full_path()
        query = QueryDict(mutable=True)
        query[REDIRECT_FIELD_NAME] = urlsplit(current)._replace(scheme="", netloc="").geturl()
        response = HttpResponse(status=204)
        login_url = resolve_url(self.get_login_url(view_func))
        response["HX-Redirect"] = f"{login_url}?{query.urlencode(safe='/')}"
        patch_vary_headers(response, ["HX-Request"])
        return response


class IdleSessionTimeout:
    """A session lasts SESSION_COOKIE_AGE seconds after the last page a user asked for.
    Django ends an expired session; this moves the expiry on at most once a minute per
    session, and never for htmx's live updates, which are not activity."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = request.session
        if request.headers.get("HX-Request") != "true" and session.get(SESSION_KEY):
            now = int(time.time())
            if now - session.get(LAST_SEEN_KEY, 0) >= 60:
                session[LAST_SEEN_KEY] = now  # modified: saved with a new expiry
        return self.get_response(request)


class ContentSecurityPolicy:
    """Pages load scripts, styles, images and fonts from this site only, with no inline
    script or style, are never framed, and post forms only to this site."""

    POLICY = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.POLICY)
        return response


class UserTimeZone:
    """Times on every page in the signed-in user's time zone (their preference), else
    the site's TIME_ZONE. Runs after AuthenticationMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = ""
        if request.user.is_authenticated:
            # Read once per session (the preferences page updates it there).
            zone_name = request.session.get(TIME_ZONE_KEY)
            if zone_name is None:
                zone_name = (
                    UserPreference.objects.filter(user=request.user)
                    .values_list("time_zone", flat=True)
                    .first()
                    or ""
                )
                if request.headers.get("HX-Request") != "true":
                    # Not on a live update: writing the session would extend it.
                    request.session[TIME_ZONE_KEY] = zone_name
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

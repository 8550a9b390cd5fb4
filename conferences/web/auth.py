"""Who a request is: sign-in throttling (django-axes counts failed sign-ins per user name
and per address and refuses further tries for a while, AXES_* settings), and the JSON
API's read-only API tokens (`token_readable`)."""

import functools

from axes.backends import AxesStandaloneBackend
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.utils.cache import patch_vary_headers

from conferences.registry import tokens


class LoginThrottle(AxesStandaloneBackend):
    """Axes' check of every sign-in through a web request. An authentication without a
    request (a management command, the test client) cannot be guessed at over the
    network, so it is not counted instead of failing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


# --------------------------------------------------------------------------- API tokens

READ_METHODS = ("GET", "HEAD")
REALM = 'Bearer realm="confwatch"'


def unauthorized(message, *, bad_token=False):
    """401 with a JSON body and the header RFC 6750 asks for."""
    response = JsonResponse({"error": message}, status=401)
    response["WWW-Authenticate"] = REALM + (', error="invalid_token"' if bad_token else "")
    return response


def bearer_token(request):
    """The token of an `Authorization: Bearer ...` header: None without one (no header, or
    another scheme), "" when the header is Bearer with nothing usable after it."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()


def token_readable(view=None, *, signed_out="json"):
    """A view the JSON API serves: read with a session, or with an API token
    (`Authorization: Bearer cw_...`) as the token's user, whose permissions `@requires`
    (inside this decorator) then checks. A token only reads: another method than GET or
    HEAD is 403 whatever the token. A bad token is 401 with a JSON error and never falls
    back to the session. Without either, `signed_out="json"` answers 401 (scripts) and
    "login" sends the browser to sign in (a page's download link)."""
    if view is None:
        return functools.partial(token_readable, signed_out=signed_out)
    if signed_out not in ("json", "login"):
        raise ValueError(f"signed_out is json or login, not {signed_out!r}.")

    @login_not_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        token = bearer_token(request)
        if token is not None:
            if request.method not in READ_METHODS:
                return JsonResponse({"error": "API tokens only read: use GET or HEAD."}, status=403)
            try:
                request.user = tokens.authenticate(token)
            except tokens.Refused as error:
                return unauthorized(str(error), bad_token=True)
        elif not request.user.is_authenticated:
            if signed_out == "login":
                return redirect_to_login(request.get_full_path())
            return unauthorized("Sign in first, or send an API token.")
        response = view(request, *args, **kwargs)
        patch_vary_headers(response, ["Authorization"])
        return response

    wrapper.signed_out = signed_out
    return wrapper

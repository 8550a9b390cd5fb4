"""What the pages share: the htmx partial-or-204 answer, query strings, where row
actions return."""

import hashlib

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme

MAX_DELIVERIES_SHOWN = 20


def fingerprint(rows):
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def live_context():
    """What the pages' live parts read (how often they refresh, how often conferences are
    polled). A page and its htmx partials both render with it, through render_page and
    htmx_partial, so that no partial can miss a value its page has."""
    return {
        "refresh_seconds": settings.CONFWATCH_PAGE_REFRESH,
        "hidden_refresh_seconds": hidden_refresh_seconds(),
        "poll_interval": settings.CONFWATCH_POLL_INTERVAL,
    }


def render_page(request, template, context, **kwargs):
    """The full page, with live_context; it varies on HX-Request like its partials."""
    response = render(request, template, {**live_context(), **context}, **kwargs)
    patch_vary_headers(response, ["HX-Request"])
    return response


def htmx_partial(request, template, context, *, version):
    """Render the named partial for an htmx poll, or 204 when the client has it already
    (its `v` is `version`; None: always render). `context` may be a function, called
    only when the partial is rendered; live_context comes with it, as with its page.
    Either answer varies on HX-Request."""
    if version is not None and request.GET.get("v") == version:
        response = HttpResponse(status=204)
        patch_vary_headers(response, ["HX-Request"])
        return response
    return render_page(request, template, context() if callable(context) else context)


def bad_request(request, *, problem, advice, back=None):
    """The product's 400 page for a request it refuses: what was wrong (`problem`), what
    to do (`advice`), and `back`, a (url, words) link to where to do it."""
    context = {"problem": problem, "advice": advice, "back": back}
    return render(request, "400.html", context, status=400)


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

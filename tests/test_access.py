"""Fail closed: every URL of the URLconf, the admin's included, walked as anonymous,
viewer and admin; CSRF on every state-changing request; nothing changes on GET."""

import re

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLResolver, get_resolver

from conferences.alerting.unsubscribe import token_for
from tests.test_roles import signed_in_as, world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

# The only views an anonymous visitor may reach. The JSON API is open to the middleware
# because it answers 401 itself (a script should not get the sign-in page).
OPEN = {
    "login",
    "admin:login",
    "conferences:unsubscribe",
    "conferences:health",
    "conferences:api-list",
    "conferences:api-history",
    # Signed links from emails and share links: the token in the address authorises.
    "conferences:acknowledge-alert",
    "conferences:shared",
    # Catapult's callbacks: the secret in the address (and optional Basic credentials).
    "conferences:callback",
    "conferences:api-call",
    # An API token reads the history export; without one or a session it sends the
    # browser to sign in itself (conferences.web.auth.token_readable).
    "conferences:history-export",
    "favicon",
    # Prometheus: a bearer token or an allowed address (loopback in development).
    "conferences:metrics",
}
ANSWERS_401 = {"conferences:api-list", "conferences:api-history", "conferences:api-call"}
# Answers a POST without a CSRF token: the signed token in the address authorises it
# (mail clients' one-click unsubscribe cannot send one).
CSRF_EXEMPT = {"conferences:unsubscribe", "conferences:callback"}


def url_patterns(patterns=None, prefix="", namespace=""):
    """(route, name, view) of every URL pattern, in URLconf order."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        else:
            name = f"{namespace}{pattern.name}" if pattern.name else None
            yield prefix + str(pattern.pattern), name, pattern.callback


def concrete_url(route, objects):
    """An address for the route, with the world's objects in its parameters."""
    model = route.split("/")[2] if route.startswith("admin/") and route.count("/") > 3 else ""
    values = {
        "object_id": str(objects[model].pk) if model in objects else "1",
        "id": "1",
        "content_type_id": "1",
        "app_label": "conferences",
        "url": "no-such-page/",
        "pk": str(objects["subscription"].pk if "alerts" in route else objects["conference"].pk),
        "token": token_for(objects["subscription"]),
        "conference_id": objects["conference"].conference_id,
        "secret": "not-the-secret",
        "call_id": "c-no-such-call",
        "fmt": "csv",
    }
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], url)
    return "/" + url.replace("^", "").replace("$", "")


def every_url(objects):
    return [(name, concrete_url(route, objects)) for route, name, _ in url_patterns()]


def test_a_view_is_open_to_anonymous_visitors_only_when_it_says_so():
    opened = {name for _, name, view in url_patterns() if not getattr(view, "login_required", 1)}

    assert opened == OPEN


@pytest.mark.parametrize("role", ["anonymous", "viewer", "admin"])
def test_every_url_answers_each_role_without_a_server_error(client, world, role):  # noqa: F811
    client = signed_in_as(client, role)

    answers = {url: (name, client.get(url)) for name, url in every_url(world)}

    assert not {url: r.status_code for url, (_, r) in answers.items() if r.status_code >= 500}
    if role != "anonymous":
        return
    for url, (name, response) in answers.items():
        if name in ANSWERS_401:
            assert response.status_code == 401, url
        elif name not in OPEN:
            assert response.status_code == 302, url
            assert "/login/" in response["Location"], url
    assert answers["/health/"][1].status_code in (200, 503)
    assert answers["/accounts/login/"][1].status_code == 200


def test_password_reset_is_switched_off(client, world):  # noqa: F811
    assert "password_reset" not in {name for _, name, _ in url_patterns()}
    assert client.get("/accounts/password_reset/").status_code in (302, 404)


def snapshot():
    """Every row the project stores, except sessions (a request may touch its own)."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model is not Session
    }


def test_no_get_anywhere_changes_anything(client, world):  # noqa: F811
    client = signed_in_as(client, "superuser")
    before = snapshot()

    for _, url in every_url(world):
        client.get(url)

    assert snapshot() == before


def test_every_state_changing_request_without_a_csrf_token_is_refused(world):  # noqa: F811
    client = signed_in_as(Client(enforce_csrf_checks=True), "superuser")
    before = snapshot()

    answers = {
        url: client.post(url, {"post": "yes"}).status_code
        for name, url in every_url(world)
        if name not in CSRF_EXEMPT
    }

    assert {url: status for url, status in answers.items() if status != 403} == {}
    assert snapshot() == before

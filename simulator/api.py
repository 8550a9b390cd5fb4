"""The ``/v1/users/{userId}/conferences...`` API: auth, rate limit, faults, then routes.

``handle_api`` turns one request into a Response. Order of checks, as a client sees them:
401 (credentials) -> 429 (rate limit) -> injected faults -> 404/405/400/403 -> success,
which a hostile conference's GETs then reshape (``simulator.hostile``).
"""

import re
from dataclasses import replace
from urllib.parse import parse_qsl

from simulator import errors, validation
from simulator.render import conference_path, member_path
from simulator.responses import (
    Response,
    empty_response,
    error_response,
    json_response,
    parse_json_object,
)

USER_PATH = re.compile(r"^/v1/users/([^/]+)(/.*)?$")
CONFERENCE_IN_PATH = re.compile(r"^/conferences/([^/]+)")
# The GETs a hostile conference answers in its shape (simulator/hostile.py).
HOSTILE_GET = re.compile(r"^/conferences/([^/]+)(/members)?$")


def create_conference(sim, user_id, body):
    fields = validation.parse_create_conference(body)
    conference_id = sim.state.create_conference(user_id=user_id, **fields)
    return empty_response(201, headers={"Location": conference_path(user_id, conference_id)})


def get_conference(sim, user_id, body, conference_id):
    data = sim.state.get_conference(user_id=user_id, conference_id=conference_id)
    return json_response(200, data)


def update_conference(sim, user_id, body, conference_id):
    changes = validation.parse_update_conference(body)
    sim.state.update_conference(user_id=user_id, conference_id=conference_id, changes=changes)
    return empty_response(200)


def play_conference_audio(sim, user_id, body, conference_id):
    audio = validation.parse_audio(body)
    sim.state.play_conference_audio(user_id=user_id, conference_id=conference_id, audio=audio)
    return empty_response(200)


def add_member(sim, user_id, body, conference_id):
    fields = validation.parse_add_member(body)
    member_id = sim.state.add_member(user_id=user_id, conference_id=conference_id, **fields)
    location = member_path(user_id, conference_id, member_id)
    return empty_response(201, headers={"Location": location})


def list_members(sim, user_id, body, conference_id):
    """With a members page size, ``?page=N`` (from 0) and a ``Link: rel="next"`` header."""
    page_text = body.get("page", "0")
    if not page_text.isdigit() or len(page_text) > 6:
        raise errors.bad_request(f"Query parameter 'page' must be a number, got {page_text!r}")
    page = int(page_text)
    data, more = sim.state.list_members(user_id=user_id, conference_id=conference_id, page=page)
    headers = {}
    if more:
        link = members_link(sim, user_id, conference_id, page=page)
        headers["Link"] = link
    return json_response(200, data, headers=headers)


def members_link(sim, user_id, conference_id, *, page):
    """The ``Link`` header of a members page that has a next one (reference §5.4):
    absolute by default; relative targets and a ``rel="first"`` entry on request, as py3's
    test header has them."""
    shapes = sim.faults.shapes()
    size = sim.state.members_page_size
    if "relative-links" in shapes:
        target = "members"
    else:
        target = f"{sim.url}{conference_path(user_id, conference_id)}/members"
    links = [f'<{target}?page={page + 1}&size={size}>; rel="next"']
    if "first-links" in shapes:
        links.insert(0, f'<{target}?page=0&size={size}>; rel="first"')
    return ", ".join(links)


def get_member(sim, user_id, body, conference_id, member_id):
    data = sim.state.get_member(user_id=user_id, conference_id=conference_id, member_id=member_id)
    return json_response(200, data)


def update_member(sim, user_id, body, conference_id, member_id):
    changes = validation.parse_update_member(body)
    sim.state.update_member(
        user_id=user_id, conference_id=conference_id, member_id=member_id, changes=changes
    )
    return empty_response(200)


def play_member_audio(sim, user_id, body, conference_id, member_id):
    audio = validation.parse_audio(body)
    sim.state.play_member_audio(
        user_id=user_id, conference_id=conference_id, member_id=member_id, audio=audio
    )
    return empty_response(200)


ROUTES = [
    (re.compile(r"^/conferences$"), {"POST": create_conference}),
    (
        re.compile(r"^/conferences/([^/]+)$"),
        {"GET": get_conference, "POST": update_conference},
    ),
    (re.compile(r"^/conferences/([^/]+)/audio$"), {"POST": play_conference_audio}),
    (
        re.compile(r"^/conferences/([^/]+)/members$"),
        {"GET": list_members, "POST": add_member},
    ),
    (
        re.compile(r"^/conferences/([^/]+)/members/([^/]+)$"),
        {"GET": get_member, "POST": update_member},
    ),
    (re.compile(r"^/conferences/([^/]+)/members/([^/]+)/audio$"), {"POST": play_member_audio}),
]


def request_path_detail(path):
    """The ``requestPath`` error detail: the path without ``/v1/`` (``users/u-1/...``)."""
    return path.removeprefix("/v1/").lstrip("/")


def handle_api(sim, *, method, path, authorization, raw_body, query="", remote_address=""):
    detail_path = request_path_detail(path)
    try:
        return route_api(
            sim,
            method=method,
            path=path,
            authorization=authorization,
            raw_body=raw_body,
            query=query,
            remote_address=remote_address,
        )
    except errors.ApiError as error:
        if error.status == 401:
            return unauthorized_response(sim, error, request_path=detail_path, method=method)
        return shaped_error_response(
            sim, error, path=path, method=method, remote_address=remote_address
        )


def shaped_error_response(sim, error, *, path, method, remote_address):
    """An error's response in the shapes turned on (``errors.ERROR_SHAPES``)."""
    return error_response(
        error,
        request_path=request_path_detail(path),
        request_method=method,
        remote_address=remote_address,
        shapes=sim.faults.shapes(),
    )


UNAUTHORIZED_HTML = (
    b"<html><head><title>401 Unauthorized</title></head><body><h1>Unauthorized</h1></body></html>"
)


def unauthorized_response(sim, error, *, request_path, method):
    """A 401's body is not documented (reference §4.2): JSON, empty or HTML, as set."""
    shape = sim.faults.settings()["unauthorized_body"]
    if shape == "empty":
        return Response(401)
    if shape == "html":
        return Response(401, UNAUTHORIZED_HTML, "text/html; charset=utf-8")
    return error_response(error, request_path=request_path, request_method=method)


MEMBER_IN_PATH = re.compile(r"^/conferences/[^/]+/members/([^/]+)")
# The POSTs that update a conference or a member: the only ones a conflict can hit.
UPDATE_PATH = re.compile(r"^/conferences/[^/]+(/members/[^/]+)?$")


def route_api(sim, *, method, path, authorization, raw_body, query="", remote_address=""):
    match = USER_PATH.match(path)
    if match is None:
        raise errors.resource_not_found(path)
    user_id, rest = match.group(1), match.group(2) or ""
    sim.users.authenticate(authorization, path_user_id=user_id)
    if not (rest == "/conferences" or rest.startswith("/conferences/")):
        raise errors.resource_not_found(path)

    accepted, reset_ms = sim.limiter.admit(user_id)
    if not accepted:
        raise errors.rate_limit_reached(reset_ms=reset_ms, request_path=request_path_detail(path))

    about = CONFERENCE_IN_PATH.match(rest)
    member = MEMBER_IN_PATH.match(rest)
    decision = sim.faults.decide(
        conference_id=about.group(1) if about else None,
        method=method,
        member_id=member.group(1) if member else None,
        update=UPDATE_PATH.match(rest) is not None,
    )
    faulted = faulted_response(
        sim,
        decision,
        user_id=user_id,
        method=method,
        path=path,
        authorization=authorization,
        remote_address=remote_address,
    )
    if faulted is not None:
        return faulted

    try:
        response = dispatch(
            sim, user_id=user_id, method=method, rest=rest, raw_body=raw_body, query=query
        )
    except errors.ApiError as error:
        response = shaped_error_response(
            sim, error, path=path, method=method, remote_address=remote_address
        )
    hostile = HOSTILE_GET.match(rest)
    if method == "GET" and response.status == 200 and hostile is not None:
        response = sim.hostile.reshape(
            response,
            conference_id=hostile.group(1),
            members=hostile.group(2) is not None,
            base_url=sim.url,
            user_id=user_id,
        )
    return replace(response, latency_seconds=decision.latency_seconds)


def faulted_response(sim, decision, *, user_id, method, path, authorization="", remote_address=""):
    if decision.kind is None:
        return None
    if decision.kind == "hang":
        return Response(0, hang_seconds=decision.hang_seconds)
    if decision.kind == "rate-limited":
        sim.limiter.record_429(user_id)
        error = errors.rate_limit_reached(
            reset_ms=decision.reset_ms, request_path=request_path_detail(path)
        )
    elif decision.kind == "error":
        error = decision.error
    elif decision.kind == "echo-authorization":
        error = errors.ApiError(
            500,
            "backend",
            "backend-debug-echo",
            f"backend failed for the request with Authorization: {authorization}",
        )
    else:
        return Response(
            decision.status,
            decision.body,
            decision.content_type,
            latency_seconds=decision.latency_seconds,
        )
    response = shaped_error_response(
        sim, error, path=path, method=method, remote_address=remote_address
    )
    return replace(response, latency_seconds=decision.latency_seconds)


def dispatch(sim, *, user_id, method, rest, raw_body, query=""):
    """Route to a function; a POST's body is its JSON, a GET's its query parameters."""
    for pattern, methods in ROUTES:
        match = pattern.match(rest)
        if match is None:
            continue
        function = methods.get(method)
        if function is None:
            raise errors.method_not_allowed(method, f"/v1/users/{user_id}{rest}")
        body = dict(parse_qsl(query))
        if method == "POST":
            try:
                body = parse_json_object(raw_body)
            except ValueError as exc:
                raise errors.bad_request(str(exc)) from None
        return function(sim, user_id, body, *match.groups())
    raise errors.resource_not_found(f"/v1/users/{user_id}{rest}")

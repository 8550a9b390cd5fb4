"""Catapult-style API errors: an exception carrying the HTTP status and the JSON body."""

import time
import uuid

# Untidier documented error shapes, each on request (reference §4.1):
# - "full-429-details": the 429's details also name remoteAddress and requestMethod;
# - "legacy-400": a 400 in the stored-error shape (BAD_REQUEST, integer time, user, ids);
# - "empty-403-details": a 403 whose details are an empty list.
ERROR_SHAPES = ("full-429-details", "legacy-400", "empty-403-details")


class ApiError(Exception):
    """An error answered as ``{"category", "code", "message", "details"}`` JSON.

    ``message`` may be None: the documented 429 body has no ``message`` key.
    ``details`` are the error's own details; the handler adds the request path and method
    unless ``request_details`` is False.
    """

    def __init__(
        self,
        status,
        category,
        code,
        message=None,
        *,
        details=None,
        headers=None,
        request_details=True,
    ):
        super().__init__(message or code)
        self.status = status
        self.category = category
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.headers = dict(headers or {})
        self.request_details = request_details

    def body(self, *, request_path, request_method, remote_address="", shapes=frozenset()):
        """The JSON body. ``shapes`` (names from ``ERROR_SHAPES``) turn on the untidier
        documented shapes: the 429's full details, the legacy 400 and the bare 403."""
        if self.status == 400 and "legacy-400" in shapes:
            return self.legacy_body(request_path=request_path, request_method=request_method)
        body = {"category": self.category, "code": self.code}
        if self.message is not None:
            body["message"] = self.message
        if self.status == 403 and "empty-403-details" in shapes:
            body["details"] = []
            return body
        details = list(self.details)
        if self.request_details:
            details.append({"name": "requestPath", "value": request_path})
            details.append({"name": "requestMethod", "value": request_method})
        elif self.status == 429 and "full-429-details" in shapes:
            details.append({"name": "remoteAddress", "value": remote_address})
            details.append({"name": "requestMethod", "value": request_method})
        body["details"] = details
        return body

    def legacy_body(self, *, request_path, request_method):
        """The stored-error shape of the reference §4.1 (``getErrorsErrorId``): upper-case
        category, an integer epoch-ms ``time``, a nested ``user`` and details that carry
        their own ``id`` and ``version``."""
        user_id = request_path.split("/")[1] if request_path.startswith("users/") else ""
        details = list(self.details) + [
            {"name": "requestPath", "value": request_path},
            {"name": "requestMethod", "value": request_method},
        ]
        body = {
            "id": f"ue-{uuid.uuid4().hex[:24]}",
            "category": self.category.upper().replace("-", "_"),
            "code": self.code,
            "message": self.message or self.code,
            "time": int(time.time() * 1000),
            "user": {"id": user_id},
            "details": [
                {"id": f"ued-{uuid.uuid4().hex[:24]}", **detail, "version": 0} for detail in details
            ],
            "version": 0,
        }
        return body


def bad_request(message, *, code="validation-error"):
    return ApiError(400, "bad-request", code, message)


def missing_property(name):
    return ApiError(400, "bad-request", "missing-property", f"Property '{name}' is required")


def unauthorized(message):
    return ApiError(401, "authorization", "unauthorized", message)


def user_access_denied(*, credentials_user_id, path_user_id):
    return ApiError(
        401,
        "authorization",
        "user-access-denied",
        f"User {credentials_user_id} does not have permission to access user {path_user_id}",
    )


def conference_error(message="Invalid conference state"):
    return ApiError(403, "forbidden", "conference-error", message)


def max_members(conference_id, limit):
    return ApiError(
        403,
        "limit",
        "conference-max-members",
        f"Conference {conference_id} already has the maximum of {limit} members",
    )


def limit_reached():
    """A 403 with category ``limit`` for an account rate (reference §4.3), not the 429."""
    return ApiError(
        403,
        "limit",
        "call-rate-limit-reached",
        "The call rate limit of this account was reached, retry later",
    )


def call_not_found(call_id):
    """Adding a member whose call id names no call (reference §4.2, 403 forbidden)."""
    return ApiError(403, "forbidden", "call-id-not-found", f"Call {call_id} not found")


def call_already_joined(call_id, conference_id):
    """Adding a member whose call is already in the conference (403 forbidden)."""
    return ApiError(
        403,
        "forbidden",
        "call-invalid-state",
        f"Call {call_id} is already a member of conference {conference_id}",
    )


def update_conflict(code="conference-update-conflict"):
    return ApiError(409, "conflict", code, "Concurrent update, retry your operation")


def call_unavailable(subject):
    return ApiError(
        503,
        "unavailable",
        "call-unavailable",
        f"Conference member {subject} doesn't have an available call, retry later",
    )


def conference_not_found(conference_id):
    return ApiError(
        404, "not-found", "conference-not-found", f"Conference {conference_id} not found"
    )


def member_not_found(member_id):
    return ApiError(
        404,
        "not-found",
        "conference-member-not-found",
        f"Conference member {member_id} not found",
    )


def resource_not_found(path):
    return ApiError(404, "not-found", "resource-not-found", f"Resource {path} not found")


def method_not_allowed(method, path):
    return ApiError(
        405, "bad-request", "method-not-allowed", f"Method {method} is not allowed on {path}"
    )


def rate_limit_reached(*, reset_ms, request_path):
    """The documented 429: no ``message`` key, reset time in epoch milliseconds."""
    return ApiError(
        429,
        "too-many-requests",
        "rate-limit-reached",
        None,
        details=[
            {"name": "rateLimitResetTime", "value": str(reset_ms)},
            {"name": "requestPath", "value": request_path},
        ],
        headers={"X-RateLimit-Reset": str(reset_ms)},
        request_details=False,
    )

"""The small Response value that route functions return and the handler writes."""

import json
from dataclasses import dataclass, field

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = ""
    headers: dict = field(default_factory=dict)
    latency_seconds: float = 0.0
    hang_seconds: float | None = None
    # Send the body one byte at a time, this many seconds apart (a hostile "drip").
    drip_seconds: float | None = None


def json_response(status, data, *, headers=None):
    body = json.dumps(data).encode("utf-8")
    return Response(status, body, JSON_TYPE, dict(headers or {}))


def empty_response(status, *, headers=None):
    return Response(status, b"", "", dict(headers or {}))


def error_response(error, *, request_path, request_method, remote_address="", shapes=frozenset()):
    body = error.body(
        request_path=request_path,
        request_method=request_method,
        remote_address=remote_address,
        shapes=shapes,
    )
    return json_response(error.status, body, headers=error.headers)


def parse_json_object(raw):
    """Decode a request body into a dict; an empty body is ``{}``. Raise ValueError if bad."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("Request body must be a JSON object")
    return data

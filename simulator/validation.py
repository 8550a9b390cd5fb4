"""Turn request bodies into typed values, or raise a 400 ApiError.

Following the reference (§6 items 5 and 15): booleans and integers may arrive as strings
("true", "2000"), and an explicit JSON ``null`` means "not provided".
"""

import re
from urllib.parse import urlsplit

from simulator.errors import bad_request, missing_property

INTEGER_TEXT = re.compile(r"^-?[0-9]+$")
PROFILES = ("interpret_digits", "passthru_digits")
CALLBACK_METHODS = ("GET", "POST")
MAX_CALLBACK_TIMEOUT_MS = 10000
MAX_SENTENCE_LENGTH = 1000


def optional_bool(body, name):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise bad_request(f"Property '{name}' must be a boolean (true or false), got {value!r}")


def optional_int(body, name, *, minimum, maximum):
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str) and INTEGER_TEXT.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"Property '{name}' must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise bad_request(f"Property '{name}' must be between {minimum} and {maximum}")
    return value


def optional_str(body, name):
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"Property '{name}' must be a string, got {value!r}")
    return value


def required_str(body, name):
    value = optional_str(body, name)
    if value is None:
        raise missing_property(name)
    if not value.strip():
        raise bad_request(f"Property '{name}' must not be blank", code="blank-property")
    return value


def optional_choice(body, name, choices):
    value = optional_str(body, name)
    if value is None:
        return None
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    allowed = ", ".join(choices)
    raise bad_request(f"Property '{name}' must be one of the following values: {allowed}")


def optional_url(body, name):
    """An http(s) URL; the empty string is kept and means "unset"."""
    value = optional_str(body, name)
    if value is None or value == "":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request(
            f"Property '{name}' must be an http or https URL, got {value!r}",
            code="callback-invalid-url",
        )
    return value


def callback_settings(body):
    return {
        "callback_url": optional_url(body, "callbackUrl"),
        "callback_http_method": optional_choice(body, "callbackHttpMethod", CALLBACK_METHODS),
        "callback_timeout": optional_int(
            body, "callbackTimeout", minimum=1, maximum=MAX_CALLBACK_TIMEOUT_MS
        ),
        "fallback_url": optional_url(body, "fallbackUrl"),
        "tag": optional_str(body, "tag"),
    }


def parse_create_conference(body):
    """Fields of ``POST /conferences``. Empty strings count as not provided."""
    fields = {
        "from_number": required_str(body, "from"),
        "profile": optional_choice(body, "profile", PROFILES) or PROFILES[0],
    }
    for name, value in callback_settings(body).items():
        fields[name] = value if value != "" else None
    return fields


def parse_update_conference(body):
    """Fields of ``POST /conferences/{id}``; None = unchanged, "" = unset (URLs, tag)."""
    if body.get("profile") is not None:
        raise bad_request("Property 'profile' cannot be updated")
    changes = {
        "state": optional_choice(body, "state", ("completed",)),
        "hold": optional_bool(body, "hold"),
        "mute": optional_bool(body, "mute"),
    }
    changes.update(callback_settings(body))
    return changes


def parse_add_member(body):
    return {
        "call_id": required_str(body, "callId"),
        "join_tone": optional_bool(body, "joinTone"),
        "leaving_tone": optional_bool(body, "leavingTone"),
        "mute": optional_bool(body, "mute"),
        "hold": optional_bool(body, "hold"),
    }


def parse_update_member(body):
    return {
        "state": optional_choice(body, "state", ("completed",)),
        "join_tone": optional_bool(body, "joinTone"),
        "leaving_tone": optional_bool(body, "leavingTone"),
        "mute": optional_bool(body, "mute"),
        "hold": optional_bool(body, "hold"),
    }


def parse_audio(body):
    """Fields of the audio endpoints: one of fileUrl/sentence is required ("" = stop)."""
    audio = {
        "file_url": optional_str(body, "fileUrl"),
        "sentence": optional_str(body, "sentence"),
        "gender": optional_choice(body, "gender", ("female", "male")),
        "locale": optional_str(body, "locale"),
        "voice": optional_str(body, "voice"),
        "loop_enabled": optional_bool(body, "loopEnabled"),
        "tag": optional_str(body, "tag"),
    }
    if audio["file_url"] is None and audio["sentence"] is None:
        raise bad_request("One of the properties 'fileUrl' or 'sentence' is required")
    if audio["sentence"] is not None and len(audio["sentence"]) > MAX_SENTENCE_LENGTH:
        raise bad_request(f"Property 'sentence' must be at most {MAX_SENTENCE_LENGTH} characters")
    return audio

"""JSON shapes of conferences, members and callback events (reference §1.2, §2, §3)."""

from simulator.timestamps import (
    format_field,
    format_mislabelled,
    format_time,
    has_mixed_offsets,
)

# Keys a response may leave out, as the documentation's examples do (§6 item 1), and the
# documented default each holds then: a key is only ever left out while it holds its
# default, so a set ``hold: true`` or a member's ``removedTime`` is always sent.
CONFERENCE_DEFAULTS = {
    "activeMembers": 0,
    "hold": False,
    "mute": False,
    "profile": "interpret_digits",
    "callbackHttpMethod": "POST",
    "callbackTimeout": 10000,
}
MEMBER_DEFAULTS = {"mute": False, "hold": False, "joinTone": False, "leavingTone": False}


def without_defaults(body, defaults):
    """``body`` without the keys that hold their documented default."""
    return {
        name: value
        for name, value in body.items()
        if name not in defaults or value != defaults[name]
    }


def conference_path(user_id, conference_id):
    return f"/v1/users/{user_id}/conferences/{conference_id}"


def member_path(user_id, conference_id, member_id):
    return f"{conference_path(user_id, conference_id)}/members/{member_id}"


def call_url(base_url, user_id, call_id):
    return f"{base_url}/v1/users/{user_id}/calls/{call_id}"


def conference_json(conference, *, time_format, omit=False):
    """The GET conference body; optional keys appear only when they have a value, and
    with ``omit`` only when they hold something other than their default."""
    body = {
        "id": conference.id,
        "state": conference.state,
        "from": conference.from_number,
        "createdTime": format_field(
            conference.created_at, time_format, key=f"{conference.id}:createdTime"
        ),
    }
    if conference.completed_at is not None:
        body["completedTime"] = format_field(
            conference.completed_at, time_format, key=f"{conference.id}:completedTime"
        )
    body["activeMembers"] = len(conference.active_members())
    body["hold"] = conference.hold
    body["mute"] = conference.mute
    body["profile"] = conference.profile
    optional = {
        "callbackUrl": conference.callback_url,
        "callbackHttpMethod": conference.callback_http_method,
        "callbackTimeout": conference.callback_timeout,
        "fallbackUrl": conference.fallback_url,
        "tag": conference.tag,
    }
    for name, value in optional.items():
        if value is not None:
            body[name] = value
    if omit:
        return without_defaults(body, CONFERENCE_DEFAULTS)
    return body


def member_json(conference, member, *, base_url, time_format, omit=False):
    body = {
        "id": member.id,
        "state": member.state,
        "mute": member.mute,
        "hold": member.hold,
        "joinTone": member.join_tone,
        "leavingTone": member.leaving_tone,
        "addedTime": format_field(member.added_at, time_format, key=f"{member.id}:addedTime"),
    }
    if member.removed_at is not None:
        body["removedTime"] = format_field(
            member.removed_at, time_format, key=f"{member.id}:removedTime"
        )
    if time_format == "untidy" and has_mixed_offsets(member.id):
        body["addedTime"] = format_mislabelled(member.added_at)
        if member.removed_at is not None:
            body["removedTime"] = format_time(member.removed_at, "hour-offset")
    body["call"] = call_url(base_url, conference.user_id, member.call_id)
    if omit:
        return without_defaults(body, MEMBER_DEFAULTS)
    return body


def conference_event(conference, *, base_url, status):
    """``conference`` event: uses ``status``; times with ms and a colon offset (§3.1)."""
    payload = {
        "eventType": "conference",
        "conferenceId": conference.id,
        "conferenceUri": base_url + conference_path(conference.user_id, conference.id),
        "status": status,
        "createdTime": format_time(conference.created_at, "ms-colon-offset"),
    }
    if status == "completed" and conference.completed_at is not None:
        payload["completedTime"] = format_time(conference.completed_at, "ms-colon-offset")
    if conference.tag is not None:
        payload["tag"] = conference.tag
    return payload


def member_event(conference, member, *, base_url, now):
    """``conference-member`` event: uses ``state``; time with ms and ``Z`` (§3.2)."""
    payload = {
        "eventType": "conference-member",
        "activeMembers": len(conference.active_members()),
        "conferenceId": conference.id,
        "callId": member.call_id,
        "memberId": member.id,
        "memberUri": base_url + member_path(conference.user_id, conference.id, member.id),
        "state": member.state,
        "hold": member.hold,
        "mute": member.mute,
        "time": format_time(now, "ms-z"),
    }
    if conference.tag is not None:
        payload["tag"] = conference.tag
    return payload


def audio_event(conference, *, base_url, event_type, status, now, tag):
    """``conference-playback`` / ``conference-speak`` event (§3.3, §3.4)."""
    payload = {
        "eventType": event_type,
        "conferenceId": conference.id,
        "conferenceUri": base_url + conference_path(conference.user_id, conference.id),
        "status": status,
        "time": format_time(now, "ms-z"),
    }
    tag = tag if tag is not None else conference.tag
    if tag is not None:
        payload["tag"] = tag
    return payload


def call_audio_event(conference, member, *, base_url, event_type, status, now, tag):
    """A call ``playback`` / ``speak`` event, what audio played to one member produces
    (reference §1.4, §3.6): about the member's call; ``speak`` also carries
    ``state`` ``PLAYBACK_START`` / ``PLAYBACK_STOP``."""
    payload = {
        "eventType": event_type,
        "callId": member.call_id,
        "callUri": call_url(base_url, conference.user_id, member.call_id),
        "status": status,
        "time": format_time(now, "ms-z"),
    }
    if event_type == "speak":
        payload["state"] = "PLAYBACK_START" if status == "started" else "PLAYBACK_STOP"
    if tag is not None:
        payload["tag"] = tag
    return payload

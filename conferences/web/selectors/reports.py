"""Conference status and history as plain data, for the JSON API and the commands."""

from conferences.redact import without_userinfo
from conferences.text import iso

MAX_HISTORY_ITEMS = 1000


def conference_data(conference):
    return {
        "conference_id": conference.conference_id,
        "account": conference.account.name,
        "label": conference.label,
        "tags": list(conference.tags),
        "paused": conference.paused,
        "state": conference.state,
        "active_members": conference.active_members,
        "hold": conference.hold,
        "mute": conference.mute,
        "from": conference.from_number,
        "created_time": iso(conference.created_time),
        "completed_time": iso(conference.completed_time),
        "duration_seconds": conference.duration_seconds,
        "profile": conference.profile,
        "callback_url": without_userinfo(conference.callback_url),
        "callback_http_method": conference.callback_http_method,
        "callback_timeout": conference.callback_timeout,
        "fallback_url": without_userinfo(conference.fallback_url),
        "last_polled_at": iso(conference.last_polled_at),
        "last_changed_at": iso(conference.last_changed_at),
        "poll_status": conference.poll_status,
        "poll_error": conference.poll_error or None,
    }


# The fields of a history item, in the order the API and the exports give them.
HISTORY_FIELDS = ["state", "active_members", "hold", "mute", "first_seen_at", "last_seen_at"]


def history_item(entry, *, conference):
    """One history run of the conference (a HistoryEntry, or anything with its
    attributes) as plain data; the open run ends when the conference row says."""
    return {
        "state": entry.state,
        "active_members": entry.active_members,
        "hold": entry.hold,
        "mute": entry.mute,
        "first_seen_at": iso(entry.first_seen_at),
        "last_seen_at": iso(conference.run_last_seen(entry.pk, entry.last_seen_at)),
    }


def history_data(conference, *, limit=MAX_HISTORY_ITEMS):
    entries = conference.history.order_by("-first_seen_at")[:limit]
    return [history_item(entry, conference=conference) for entry in entries]


def conference_with_history(conference):
    """The conference's status with its history under "history"."""
    data = conference_data(conference)
    data["history"] = history_data(conference)
    return data

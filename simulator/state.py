"""In-memory conferences and members, and the rules that change them.

One lock guards all of it. Every public method takes the lock, applies one operation and
returns plain data (ids, dicts), so callers never hold references into the state.
Callback events are handed to ``event_sink`` (a non-blocking callable) while the lock is
held, which keeps them in the order the changes happened.
"""

import random
import string
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from simulator import errors, render
from simulator.callbacks import DEFAULT_TIMEOUT_MS, CallbackEvent
from simulator.timestamps import utc_now

MAX_ACTIVE_MEMBERS = 20
# How long audio plays before its "done" event: a sentence at about 15 characters a
# second (at least a second), a file this many seconds (the simulator never fetches it).
SPEAK_CHARACTERS_PER_SECOND = 15
FILE_PLAYBACK_SECONDS = 2.0
ID_ALPHABET = string.ascii_lowercase + string.digits
SETTING_NAMES = ("callback_url", "callback_http_method", "callback_timeout", "fallback_url", "tag")


@dataclass
class Member:
    id: str
    call_id: str
    added_at: object
    state: str = "active"
    mute: bool = False
    hold: bool = False
    join_tone: bool = False
    leaving_tone: bool = False
    removed_at: object = None


@dataclass
class Conference:
    id: str
    user_id: str
    from_number: str
    profile: str
    created_at: object
    state: str = "created"
    completed_at: object = None
    hold: bool = False
    mute: bool = False
    callback_url: str | None = None
    callback_http_method: str | None = None
    callback_timeout: int | None = None
    fallback_url: str | None = None
    tag: str | None = None
    members: list = field(default_factory=list)

    def active_members(self):
        return [member for member in self.members if member.state == "active"]


class State:
    def __init__(
        self,
        *,
        seed=0,
        time_format="z",
        base_url="",
        event_sink=None,
        event_cancel=None,
        clock=None,
        omit_rate=0.0,
        members_page_size=0,
    ):
        self.lock = threading.Lock()
        self.time_format = time_format
        # Share of responses that leave out optional fields (as the docs' examples do).
        self.omit_rate = omit_rate
        self._omit = random.Random(f"{seed}:omit")
        # Members per page of a members list (0: one page); more pages are advertised
        # with a ``Link: <...>; rel="next"`` header (reference §5.4).
        self.members_page_size = members_page_size
        self.base_url = base_url
        self.event_sink = event_sink
        # Forgets scheduled "done" events by their cancel key (when audio is stopped).
        self.event_cancel = event_cancel
        self.clock = clock or utc_now
        self._ids = random.Random(f"{seed}:ids")
        self._conferences = {}
        self._issued_ids = set()

    # --- conferences -------------------------------------------------------------------

    def create_conference(self, *, user_id, from_number, profile="interpret_digits", **settings):
        """Create a conference in state ``created``; return its id.

        ``settings``: callback_url, callback_http_method, callback_timeout, fallback_url, tag.
        """
        with self.lock:
            conference_id = self._new_id("conf-", 18)
            conference = Conference(
                id=conference_id,
                user_id=user_id,
                from_number=from_number,
                profile=profile,
                created_at=self.clock(),
            )
            self._apply_settings(conference, settings)
            self._conferences[conference_id] = conference
            self._emit_conference(conference, "created")
            return conference_id

    def get_conference(self, *, user_id, conference_id):
        with self.lock:
            conference = self._conference(user_id, conference_id)
            return render.conference_json(
                conference, time_format=self.time_format, omit=self._draw_omit()
            )

    def update_conference(self, *, user_id, conference_id, changes):
        """Apply ``validation.parse_update_conference`` output; state=completed terminates."""
        with self.lock:
            conference = self._conference(user_id, conference_id)
            if conference.state == "completed":
                raise errors.conference_error(
                    f"Conference {conference_id} is completed and cannot be updated"
                )
            if changes.get("hold") is not None:
                conference.hold = changes["hold"]
            if changes.get("mute") is not None:
                conference.mute = changes["mute"]
            self._apply_settings(conference, changes)
            if changes.get("state") == "completed":
                self._terminate(conference)

    def play_conference_audio(self, *, user_id, conference_id, audio):
        with self.lock:
            conference = self._conference(user_id, conference_id)
            if conference.state == "completed":
                raise errors.conference_error(f"Conference {conference_id} is completed")
            if audio.get("file_url") is not None:
                self._emit_audio(conference, None, "conference-playback", audio, "file_url")
            if audio.get("sentence") is not None:
                self._emit_audio(conference, None, "conference-speak", audio, "sentence")

    # --- members -----------------------------------------------------------------------

    def add_member(self, *, user_id, conference_id, call_id, **flags):
        """Add an active member; ``flags``: join_tone, leaving_tone, mute, hold (None = default)."""
        with self.lock:
            conference = self._conference(user_id, conference_id)
            if conference.state == "completed":
                raise errors.conference_error(f"Conference {conference_id} is completed")
            if not call_id.startswith("c-"):
                raise errors.call_not_found(call_id)
            if any(member.call_id == call_id for member in conference.active_members()):
                raise errors.call_already_joined(call_id, conference_id)
            if len(conference.active_members()) >= MAX_ACTIVE_MEMBERS:
                raise errors.max_members(conference_id, MAX_ACTIVE_MEMBERS)
            member = Member(id=self._new_id("member-", 12), call_id=call_id, added_at=self.clock())
            for name in ("join_tone", "leaving_tone", "mute", "hold"):
                if flags.get(name) is not None:
                    setattr(member, name, flags[name])
            conference.members.append(member)
            conference.state = "active"
            self._emit_member(conference, member)
            return member.id

    def list_members(self, *, user_id, conference_id, page=0):
        """One page of members (all of them without paging) and whether more follow."""
        with self.lock:
            conference = self._conference(user_id, conference_id)
            members = conference.members
            more = False
            if self.members_page_size:
                start = page * self.members_page_size
                more = len(members) > start + self.members_page_size
                members = members[start : start + self.members_page_size]
            return [self._member_json(conference, member) for member in members], more

    def get_member(self, *, user_id, conference_id, member_id):
        with self.lock:
            conference = self._conference(user_id, conference_id)
            return self._member_json(conference, self._member(conference, member_id))

    def update_member(self, *, user_id, conference_id, member_id, changes):
        """Apply ``validation.parse_update_member`` output; state=completed removes."""
        with self.lock:
            conference = self._conference(user_id, conference_id)
            member = self._present_member(conference, member_id)
            for name in ("join_tone", "leaving_tone"):
                if changes.get(name) is not None:
                    setattr(member, name, changes[name])
            changed = False
            for name in ("mute", "hold"):
                value = changes.get(name)
                if value is not None and value != getattr(member, name):
                    setattr(member, name, value)
                    changed = True
            if changes.get("state") == "completed":
                self._remove_member(conference, member)
            elif changed:
                self._emit_member(conference, member)

    def play_member_audio(self, *, user_id, conference_id, member_id, audio):
        """Audio to one member sends call ``playback`` / ``speak`` events (reference §3.6)
        to the conference's callbackUrl (the simulator has no calls of its own)."""
        with self.lock:
            conference = self._conference(user_id, conference_id)
            member = self._present_member(conference, member_id)
            if audio.get("file_url") is not None:
                self._emit_audio(conference, member, "playback", audio, "file_url")
            if audio.get("sentence") is not None:
                self._emit_audio(conference, member, "speak", audio, "sentence")

    # --- control-side views ------------------------------------------------------------

    def summary(self):
        with self.lock:
            return [
                {
                    "user_id": conference.user_id,
                    "id": conference.id,
                    "state": conference.state,
                    "active_members": len(conference.active_members()),
                }
                for conference in self._conferences.values()
            ]

    def conference_fields(self, *, conference_id):
        """The fields confwatch keeps history of: state, active_members, hold, mute."""
        with self.lock:
            conference = self._conferences[conference_id]
            return {
                "state": conference.state,
                "active_members": len(conference.active_members()),
                "hold": conference.hold,
                "mute": conference.mute,
            }

    def active_member_ids(self, *, conference_id):
        with self.lock:
            conference = self._conferences.get(conference_id)
            if conference is None:
                return []
            return [member.id for member in conference.active_members()]

    # --- internals (call with the lock held) -------------------------------------------

    def _new_id(self, prefix, length):
        while True:
            suffix = "".join(self._ids.choice(ID_ALPHABET) for _ in range(length))
            candidate = prefix + suffix
            if candidate not in self._issued_ids:
                self._issued_ids.add(candidate)
                return candidate

    def _conference(self, user_id, conference_id):
        conference = self._conferences.get(conference_id)
        if conference is None or conference.user_id != user_id:
            raise errors.conference_not_found(conference_id)
        return conference

    def _member(self, conference, member_id):
        for member in conference.members:
            if member.id == member_id:
                return member
        raise errors.member_not_found(member_id)

    def _present_member(self, conference, member_id):
        """A member that has not left: departed members cannot be changed (403)."""
        member = self._member(conference, member_id)
        if member.state == "completed":
            raise errors.conference_error(f"Conference member {member_id} has left the conference")
        return member

    def _member_json(self, conference, member):
        return render.member_json(
            conference,
            member,
            base_url=self.base_url,
            time_format=self.time_format,
            omit=self._draw_omit(),
        )

    def _draw_omit(self):
        return self.omit_rate > 0 and self._omit.random() < self.omit_rate

    def _apply_settings(self, conference, settings):
        """Callback settings and tag; None leaves a value alone, "" unsets it."""
        for name in SETTING_NAMES:
            if settings.get(name) is not None:
                setattr(conference, name, settings[name] or None)

    def _remove_member(self, conference, member):
        member.state = "completed"
        member.removed_at = self.clock()
        self._emit_member(conference, member)
        if conference.state == "active" and not conference.active_members():
            self._complete(conference)

    def _terminate(self, conference):
        for member in conference.active_members():
            self._remove_member(conference, member)
        if conference.state != "completed":
            self._complete(conference)

    def _complete(self, conference):
        conference.state = "completed"
        conference.completed_at = self.clock()
        self._emit_conference(conference, "completed")

    def _emit(self, conference, payload, *, due=None, cancel_key=None):
        if self.event_sink is None or not conference.callback_url:
            return
        self.event_sink(
            CallbackEvent(
                url=conference.callback_url,
                method=(conference.callback_http_method or "POST").upper(),
                timeout_ms=conference.callback_timeout or DEFAULT_TIMEOUT_MS,
                fallback_url=conference.fallback_url,
                payload=payload,
                key=conference.id,
                due=due,
                cancel_key=cancel_key,
            )
        )

    def _emit_conference(self, conference, status):
        payload = render.conference_event(conference, base_url=self.base_url, status=status)
        self._emit(conference, payload)

    def _emit_member(self, conference, member):
        payload = render.member_event(conference, member, base_url=self.base_url, now=self.clock())
        self._emit(conference, payload)

    def _emit_audio(self, conference, member, event_type, audio, field_name):
        """ "started" now; "done" when the audio would end, sent then with that time (never
        for a loop, which plays until stopped). An empty value stops what plays: "done" now,
        and the pending "done" is forgotten."""
        value = audio[field_name]
        now = self.clock()
        subject = member.id if member is not None else conference.id
        cancel_key = f"{subject}:{event_type}"
        if not value:
            if self.event_cancel is not None:
                self.event_cancel(cancel_key)
            self._emit(
                conference, self._audio_payload(conference, member, event_type, audio, "done", now)
            )
            return
        self._emit(
            conference, self._audio_payload(conference, member, event_type, audio, "started", now)
        )
        if audio.get("loop_enabled"):
            return
        if field_name == "sentence":
            seconds = max(1.0, len(value) / SPEAK_CHARACTERS_PER_SECOND)
        else:
            seconds = FILE_PLAYBACK_SECONDS
        done_at = now + timedelta(seconds=seconds)
        payload = self._audio_payload(conference, member, event_type, audio, "done", done_at)
        self._emit(conference, payload, due=done_at.timestamp(), cancel_key=cancel_key)

    def _audio_payload(self, conference, member, event_type, audio, status, at):
        if member is None:
            return render.audio_event(
                conference,
                base_url=self.base_url,
                event_type=event_type,
                status=status,
                now=at,
                tag=audio.get("tag"),
            )
        return render.call_audio_event(
            conference,
            member,
            base_url=self.base_url,
            event_type=event_type,
            status=status,
            now=at,
            tag=audio.get("tag"),
        )

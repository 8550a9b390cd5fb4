"""A test driver for Catapult: the write endpoints (create and update conferences, add
and update members) that only tests, benches and the simulator's checks use. The
product's client (conferences/catapult/client.py) only reads."""

from __future__ import annotations

import requests

from conferences.catapult.answers import MalformedResponse, last_path_segment
from conferences.catapult.client import CatapultClient


def _drop_none(fields: dict) -> dict:
    """Request bodies carry only the fields that were given: never explicit nulls."""
    return {key: value for key, value in fields.items() if value is not None}


class CatapultDriver(CatapultClient):
    """The client plus the write endpoints, for setting up what the tests then read."""

    def create_conference(
        self,
        *,
        from_number: str,
        callback_url: str | None = None,
        callback_http_method: str | None = None,
        callback_timeout: int | None = None,
        fallback_url: str | None = None,
        profile: str | None = None,
        tag: str | None = None,
    ) -> str:
        """Create a conference and return its id (from the ``Location`` header)."""
        body = _drop_none(
            {
                "from": from_number,
                "callbackUrl": callback_url,
                "callbackHttpMethod": callback_http_method,
                "callbackTimeout": callback_timeout,
                "fallbackUrl": fallback_url,
                "profile": profile,
                "tag": tag,
            }
        )
        response = self._request("POST", self._conferences_url(), body=body)
        return self._id_from_location(response)

    def update_conference(
        self,
        conference_id: str,
        *,
        state: str | None = None,
        hold: bool | None = None,
        mute: bool | None = None,
        callback_url: str | None = None,
        callback_http_method: str | None = None,
        callback_timeout: int | None = None,
        fallback_url: str | None = None,
        tag: str | None = None,
    ) -> None:
        """Update a conference; ``state="completed"`` terminates it. Sends only given fields."""
        body = _drop_none(
            {
                "state": state,
                "hold": hold,
                "mute": mute,
                "callbackUrl": callback_url,
                "callbackHttpMethod": callback_http_method,
                "callbackTimeout": callback_timeout,
                "fallbackUrl": fallback_url,
                "tag": tag,
            }
        )
        if not body:
            raise ValueError("update_conference needs at least one field to change")
        self._request("POST", self._conference_url(conference_id), body=body)

    def add_member(
        self,
        conference_id: str,
        *,
        call_id: str,
        join_tone: bool | None = None,
        leaving_tone: bool | None = None,
        mute: bool | None = None,
        hold: bool | None = None,
    ) -> str:
        """Add an existing call to the conference and return the member id."""
        body = _drop_none(
            {
                "callId": call_id,
                "joinTone": join_tone,
                "leavingTone": leaving_tone,
                "mute": mute,
                "hold": hold,
            }
        )
        response = self._request("POST", self._conference_url(conference_id, "members"), body=body)
        return self._id_from_location(response)

    def update_member(
        self,
        conference_id: str,
        member_id: str,
        *,
        state: str | None = None,
        mute: bool | None = None,
        hold: bool | None = None,
        join_tone: bool | None = None,
        leaving_tone: bool | None = None,
    ) -> None:
        """Update a member; ``state="completed"`` removes it. Sends only given fields."""
        body = _drop_none(
            {
                "state": state,
                "mute": mute,
                "hold": hold,
                "joinTone": join_tone,
                "leavingTone": leaving_tone,
            }
        )
        if not body:
            raise ValueError("update_member needs at least one field to change")
        url = self._conference_url(conference_id, "members", member_id)
        self._request("POST", url, body=body)

    def _id_from_location(self, response: requests.Response) -> str:
        """The id in a create/add answer's ``Location``, relative or absolute (§1.1)."""
        location = response.headers.get("Location", "").strip()
        if not location:
            raise MalformedResponse("no Location header", status=response.status_code)
        try:
            resource_id = last_path_segment(location)
        except ValueError:
            raise MalformedResponse(
                "the Location header is not a usable URL", status=response.status_code
            ) from None
        if not resource_id:
            raise MalformedResponse(
                self._scrub(f"no id in Location {location!r:.100}"), status=response.status_code
            )
        return resource_id

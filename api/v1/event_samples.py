"""The event types the API knows, each with a representative `data` object.

REST hooks subscribe to these (exactly, or by a wildcard that matches some), and the samples route
shows the sample while an organisation has no real event of the type yet. Each sample has the shape
the store service that records the event gives it.
"""

from __future__ import annotations

from typing import Any

_MEMBER = {"member_id": 42, "email": "ada@example.com", "role": "member", "status": "active"}
_BOOKING = {
    "booking_id": 1001,
    "member_id": 42,
    "desk_id": 7,
    "start": "2030-01-31T09:00:00+00:00",
    "end": "2030-01-31T17:00:00+00:00",
    "status": "booked",
    "reason": "WFO",
    "source": "api",
}
_DESK = {"desk_id": 7, "label": "11", "building": "HQ", "kind": "desk"}
_TEAM = {"team_id": 3, "name": "Platform"}
_TOKEN = {"token_id": 12, "member_id": 42, "prefix": "dsk_a1b2c3d4"}
_ENDPOINT = {
    "endpoint_id": 5,
    "kind": "webhook",
    "url": "https://hooks.example.com/deskbridge",
    "description": "",
    "event_types": ["booking.*"],
    "payload_format": "event",
    "paused": False,
    "disabled": False,
}
_CONNECTION = {"connection_id": 4, "kind": "microsoft", "name": "Entra ID"}
_EXTERNAL_EVENT = {
    "external_event_id": 77,
    "member_id": 42,
    "calendar_id": 6,
    "provider": "google",
    "start": "2030-01-31T09:00:00+00:00",
    "end": "2030-01-31T17:00:00+00:00",
    "all_day": False,
    "show_as": "workingElsewhere",
    "status": "confirmed",
    "working_location": "office",
}
_FEED = {"feed_id": 8, "member_id": 42, "team_id": None}

SAMPLES: dict[str, dict[str, Any]] = {
    "organisation.created": {"organisation_id": 1},
    "organisation.updated": {"organisation_id": 1, "timezone": "Europe/London"},
    "membership.invited": {**_MEMBER, "status": "invited", "invitation_id": 9, "source": "api"},
    "membership.accepted": {**_MEMBER, "invitation_id": 9},
    "membership.added": {**_MEMBER, "source": "api"},
    "membership.removed": {**_MEMBER, "status": "removed", "reason": "member_removed", "cancelled_bookings": 2},
    "member.updated": {"member_id": 42, "email": "ada@example.com", "changes": {"display_name": "Ada L."}},
    "invitation.revoked": {"invitation_id": 9, "member_id": 42, "email": "ada@example.com"},
    "team.created": _TEAM,
    "team.updated": {**_TEAM, "added": [42]},
    "team.deleted": _TEAM,
    "desk.created": _DESK,
    "desk.updated": {**_DESK, "changes": {"label": "11"}},
    "desk.deleted": _DESK,
    "booking.created": _BOOKING,
    "booking.updated": {**_BOOKING, "changes": {"desk_id": 7}},
    "booking.cancelled": {**_BOOKING, "status": "cancelled", "reason": "cancelled_by_member"},
    "booking.checked_in": {**_BOOKING, "status": "checked_in"},
    "booking.checked_out": {**_BOOKING, "status": "checked_out"},
    "api_token.created": _TOKEN,
    "api_token.revoked": _TOKEN,
    "endpoint.created": _ENDPOINT,
    "endpoint.updated": {**_ENDPOINT, "changes": {"paused": False}},
    "endpoint.enabled": _ENDPOINT,
    "endpoint.deleted": _ENDPOINT,
    "endpoint.disabled": {"endpoint_id": 5, "url": "https://hooks.example.com/deskbridge", "reason": "gone"},
    "endpoint.secret_rotated": {"endpoint_id": 5, "previous_valid_until": "2030-02-01T09:00:00+00:00"},
    "hook.deleted": {**_ENDPOINT, "kind": "rest_hook", "payload_format": "array", "reason": "gone"},
    "connection.created": _CONNECTION,
    "connection.updated": {**_CONNECTION, "changed": ["settings"]},
    "connection.deleted": _CONNECTION,
    "connection.synced": {**_CONNECTION, "counts": {"seen": 120, "invited": 3, "removed": 1, "updated": 2}},
    "connection.failed": {
        **_CONNECTION,
        "error": "Graph refused the client secret: it is wrong or has expired",
        "action_required": True,
    },
    "external_event.upserted": _EXTERNAL_EVENT,
    "external_event.deleted": _EXTERNAL_EVENT,
    "external_event.booking_refused": {
        **_EXTERNAL_EVENT,
        "reason": "the member already has a booking at that time",
    },
    "feed.created": _FEED,
    "feed.rotated": _FEED,
    "feed.deleted": _FEED,
}


def known_types(pattern: str) -> list[str]:
    """The known event types `pattern` (an exact type, `prefix.*` or `*`) stands for, in table order."""
    if pattern == "*":
        return list(SAMPLES)
    if pattern.endswith(".*"):
        return [name for name in SAMPLES if name.startswith(pattern[:-1])]
    return [pattern] if pattern in SAMPLES else []

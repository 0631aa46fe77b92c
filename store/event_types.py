"""The event catalog: every event type deskbridge records, declared once, with what its `data` holds.

Each type has a description, a pydantic model of its `data` (the JSON Schema `GET /v1/event-types`
shows is that model's) and an example, checked against the model when this module loads. The outbox
refuses a type not declared here (`store.outbox.record`), endpoints and hooks accept only patterns
that match a declared type (`check_pattern`), and the REST hooks' samples are these examples: one
table, so what is documented, what is subscribed to and what is sent cannot drift apart.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from store.models.booking import BookingStatus
from store.models.external_event import ShowAs, WorkingLocation
from store.models.member import MemberStatus, Role
from store.models.webhook_endpoint import EndpointKind, PayloadFormat


class UnknownEventType(ValueError):
    """An event type the catalog does not declare: declare it in `store.event_types` first."""


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the shapes --------------------------------------------------------------------------------


class OrganisationRef(_Data):
    organisation_id: int


class OrganisationUpdated(OrganisationRef):
    """Only the settings that changed are present, with their new values."""

    timezone: str | None = Field(default=None, description="An IANA time zone.")
    api_enabled: bool | None = None
    directory_policy: str | None = Field(default=None, description="invite or add.")
    calendar_window_days: int | None = None
    office_rules: dict[str, Any] | None = None
    calendar_busy_only: bool | None = None
    offboarding_undo_days: int | None = Field(default=None, description="Days a removal can be undone.")
    release_on_absence: bool | None = None


class MemberData(_Data):
    member_id: int
    email: str
    role: Role
    status: MemberStatus


class MemberInvited(MemberData):
    invitation_id: int
    source: str = Field(description="api, console, or the directory connection that invited them.")


class MemberAccepted(MemberData):
    invitation_id: int


class MemberAdded(MemberData):
    source: str = Field(description="api, console, or the directory connection that added them.")


class MemberRemoved(MemberData):
    reason: str = Field(description="Why: member_removed, or what a directory said (e.g. deleted, disabled).")
    cancelled_bookings: int = Field(description="Live bookings of theirs cancelled with the membership.")


class Unrestored(_Data):
    kind: str = Field(description="booking, team or token: what the removal took that did not come back.")
    id: int
    reason: str = Field(
        description="ended, desk_taken, desk_removed, member_busy, not_cancelled, team_deleted, not_issued."
    )


class MemberRestored(MemberData):
    source: str = Field(description="api, cli, console, or the directory connection the person reappeared in.")
    removed_at: datetime = Field(description="When the removal now undone was made.")
    restored_bookings: int = Field(description="Cancelled bookings booked again (each has its booking.restored).")
    unrestored: list[Unrestored] = Field(description="What could not come back, and why.")


class MemberChanges(_Data):
    display_name: str | None = None
    email: str | None = None
    role: Role | None = None
    api_access: bool | None = None


class MemberUpdated(_Data):
    member_id: int
    email: str
    changes: MemberChanges = Field(description="Only the fields that changed, with their new values.")


class InvitationRevoked(_Data):
    invitation_id: int
    member_id: int
    email: str


class TeamData(_Data):
    team_id: int
    name: str


class TeamUpdated(TeamData):
    added: list[int] | None = Field(default=None, description="Member ids put in the team (when that was the change).")
    removed: list[int] | None = Field(default=None, description="Member ids taken out (when that was the change).")


class DeskData(_Data):
    desk_id: int
    label: str
    building: str
    kind: str = Field(description="desk, room, parking, locker or other.")


class DeskUpdated(DeskData):
    changes: dict[str, Any] = Field(
        description="The fields that changed (label, building, floor, zone, kind, active) with their new values."
    )


class BookingData(_Data):
    booking_id: int
    member_id: int
    desk_id: int | None
    start: datetime
    end: datetime
    status: BookingStatus
    reason: str = Field(
        description="Why the booking is (WFO, …); for booking.cancelled, why it was cancelled (cancelled_by_member,"
        " out_of_office: its person is away that whole day, …)."
    )
    source: str = Field(description="api, console, calendar, or the peer platform it came from.")


class BookingUpdated(BookingData):
    changes: dict[str, Any] = Field(
        description="The fields that changed (start, end, desk_id, details, reason) with their new values."
    )


class TokenData(_Data):
    token_id: int
    member_id: int
    prefix: str = Field(description="The token's first 12 characters, as lists show it; never the token.")


class EndpointData(_Data):
    endpoint_id: int
    kind: EndpointKind
    url: str = Field(description="Credentials in the URL are shown as ***.")
    description: str
    event_types: list[str]
    payload_format: PayloadFormat
    paused: bool
    disabled: bool
    ordered: bool = Field(default=False, description="Delivered one at a time, strictly in event order.")
    rate_limit_per_second: int | None = Field(default=None, description="At most this many requests a second.")
    signature: str = Field(default="hmac", description="hmac (v1) or ed25519 (v1a).")


class EndpointUpdated(EndpointData):
    changes: dict[str, Any] = Field(description="The fields that changed with their new values.")


class EndpointDisabled(_Data):
    endpoint_id: int
    url: str
    reason: str = Field(description="gone (it answered 410) or failing (5 days without a success).")


class SecretRotated(_Data):
    endpoint_id: int
    previous_valid_until: datetime


class HookDeleted(EndpointData):
    reason: str = Field(description="gone: its target answered 410.")


class ConnectionData(_Data):
    connection_id: int
    kind: str = Field(description="The connection's kind (microsoft, google, scim, csv, ics, …).")
    name: str


class ConnectionUpdated(ConnectionData):
    changed: list[str] = Field(description="What changed: name, settings, credentials, token.")


class ConnectionSynced(ConnectionData):
    counts: dict[str, int] = Field(description="What the sync did, by outcome.")


HealthPart = Literal["sync", "push_channel", "delivery"]
PART_HELP = "What failed: its sync, its push channels (polling still syncs it), or a peer platform's webhook delivery."


class ConnectionFailed(ConnectionData):
    error: str = Field(description="Why, in plain words for an admin (never a secret).")
    part: HealthPart = Field(description=PART_HELP)


class ConnectionActionRequired(ConnectionData):
    error: str = Field(description="What an admin must do, in plain words (never a secret).")
    part: HealthPart = Field(description=PART_HELP)


class ConnectionRecovered(ConnectionData):
    part: HealthPart = Field(description="What works again.")
    was: Literal["error", "action_required"] = Field(description="What it was: failing, or waiting for an admin.")


class ConnectionRemovalsHeld(ConnectionData):
    plan_id: str = Field(description="The held plan (GET /v1/connections/{id}/plans/{plan_id}); approve or reject it.")
    removals: int = Field(description="People whose removal waits for an admin.")
    limit: int = Field(description="The removals the connection may apply within an hour (settings.removal_limit).")
    removed_last_hour: int = Field(description="Removals it applied in the hour before.")
    people: list[str] = Field(description="The addresses held (the first 100; the plan lists them all).")


class ExternalEventData(_Data):
    external_event_id: int
    member_id: int
    calendar_id: int
    provider: str = Field(description="microsoft, google, ics, or the peer platform.")
    start: datetime
    end: datetime
    all_day: bool
    show_as: ShowAs
    status: str = Field(description="confirmed, tentative or cancelled.")
    working_location: WorkingLocation | None


class BookingRefused(ExternalEventData):
    reason: str = Field(description="Why the office day was not booked.")


class FeedData(_Data):
    feed_id: int
    member_id: int | None
    team_id: int | None


# --- the catalog -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventType:
    """One event type: its name, what it means, the model of its `data` and an example of it."""

    name: str
    description: str
    data: type[BaseModel]
    example: dict[str, Any]

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the event's `data`."""
        return self.data.model_json_schema()


CATALOG: dict[str, EventType] = {}


def _declare(name: str, description: str, data: type[BaseModel], example: dict[str, Any]) -> None:
    if name in CATALOG:
        raise ValueError(f"event type {name} is declared twice")
    data.model_validate(example)  # an example that does not fit stops the import
    CATALOG[name] = EventType(name, description, data, example)


_MEMBER: dict[str, Any] = {"member_id": 42, "email": "ada@example.com", "role": "member", "status": "active"}
_BOOKING: dict[str, Any] = {
    "booking_id": 1001,
    "member_id": 42,
    "desk_id": 7,
    "start": "2030-01-31T09:00:00Z",
    "end": "2030-01-31T17:00:00Z",
    "status": "booked",
    "reason": "WFO",
    "source": "api",
}
_DESK: dict[str, Any] = {"desk_id": 7, "label": "11", "building": "HQ", "kind": "desk"}
_TEAM: dict[str, Any] = {"team_id": 3, "name": "Platform"}
_TOKEN: dict[str, Any] = {"token_id": 12, "member_id": 42, "prefix": "dsk_a1b2c3d4"}
_ENDPOINT: dict[str, Any] = {
    "endpoint_id": 5,
    "kind": "webhook",
    "url": "https://hooks.example.com/deskbridge",
    "description": "",
    "event_types": ["booking.*"],
    "payload_format": "event",
    "paused": False,
    "disabled": False,
    "ordered": False,
    "rate_limit_per_second": None,
    "signature": "hmac",
}
_CONNECTION: dict[str, Any] = {"connection_id": 4, "kind": "microsoft", "name": "Entra ID"}
_EXTERNAL_EVENT: dict[str, Any] = {
    "external_event_id": 77,
    "member_id": 42,
    "calendar_id": 6,
    "provider": "google",
    "start": "2030-01-31T09:00:00Z",
    "end": "2030-01-31T17:00:00Z",
    "all_day": False,
    "show_as": "workingElsewhere",
    "status": "confirmed",
    "working_location": "office",
}
_FEED: dict[str, Any] = {"feed_id": 8, "member_id": 42, "team_id": None}

_declare("organisation.created", "An organisation was made.", OrganisationRef, {"organisation_id": 1})
_declare(
    "organisation.updated",
    "An admin changed the organisation's settings; only the changed ones are present.",
    OrganisationUpdated,
    {"organisation_id": 1, "timezone": "Europe/London"},
)
_declare(
    "membership.invited",
    "Someone was invited (by an admin or a directory); the email goes out after.",
    MemberInvited,
    {**_MEMBER, "status": "invited", "invitation_id": 9, "source": "api"},
)
_declare(
    "membership.accepted",
    "An invitation was accepted: the member is active.",
    MemberAccepted,
    {**_MEMBER, "invitation_id": 9},
)
_declare(
    "membership.added",
    "Someone became a member at once (a directory with the add policy, or the first admin).",
    MemberAdded,
    {**_MEMBER, "source": "api"},
)
_declare(
    "membership.removed",
    "A membership ended; their live bookings were cancelled and their tokens revoked.",
    MemberRemoved,
    {**_MEMBER, "status": "removed", "reason": "member_removed", "cancelled_bookings": 2},
)
_declare(
    "membership.restored",
    "A removal was undone: the membership, teams, API access (new tokens) and the bookings that were still free "
    "came back; `unrestored` lists what did not.",
    MemberRestored,
    {
        **_MEMBER,
        "source": "api",
        "removed_at": "2030-01-20T16:00:00Z",
        "restored_bookings": 2,
        "unrestored": [{"kind": "booking", "id": 1002, "reason": "desk_taken"}],
    },
)
_declare(
    "member.updated",
    "A member's name, address, role or API access changed.",
    MemberUpdated,
    {"member_id": 42, "email": "ada@example.com", "changes": {"display_name": "Ada L."}},
)
_declare(
    "invitation.revoked",
    "A pending invitation was withdrawn.",
    InvitationRevoked,
    {"invitation_id": 9, "member_id": 42, "email": "ada@example.com"},
)
_declare("team.created", "A team was made.", TeamData, _TEAM)
_declare("team.updated", "A team was renamed, or a member put in or taken out.", TeamUpdated, {**_TEAM, "added": [42]})
_declare("team.deleted", "A team was deleted (its members stay).", TeamData, _TEAM)
_declare("desk.created", "A desk (or room, parking space, locker) was added.", DeskData, _DESK)
_declare("desk.updated", "A desk changed.", DeskUpdated, {**_DESK, "changes": {"label": "11"}})
_declare("desk.deleted", "A desk was deleted.", DeskData, _DESK)
_declare(
    "booking.created",
    "A booking was made (by a member, an admin, a calendar or a peer platform).",
    BookingData,
    _BOOKING,
)
_declare(
    "booking.updated", "A live booking was moved or edited.", BookingUpdated, {**_BOOKING, "changes": {"desk_id": 7}}
)
_declare(
    "booking.cancelled",
    "A booking was cancelled; `reason` says why.",
    BookingData,
    {**_BOOKING, "status": "cancelled", "reason": "cancelled_by_member"},
)
_declare(
    "booking.restored",
    "A booking cancelled by a member's removal was booked again when the removal was undone.",
    BookingData,
    _BOOKING,
)
_declare("booking.checked_in", "A member checked in.", BookingData, {**_BOOKING, "status": "checked_in"})
_declare("booking.checked_out", "A member checked out.", BookingData, {**_BOOKING, "status": "checked_out"})
_declare("api_token.created", "An API token was made (its secret is never in an event).", TokenData, _TOKEN)
_declare("api_token.revoked", "An API token was revoked.", TokenData, _TOKEN)
_declare("endpoint.created", "A webhook endpoint or REST hook was made.", EndpointData, _ENDPOINT)
_declare(
    "endpoint.updated",
    "A webhook endpoint changed (paused, resumed, new URL or types, …).",
    EndpointUpdated,
    {**_ENDPOINT, "changes": {"paused": False}},
)
_declare("endpoint.enabled", "A disabled webhook endpoint was turned back on.", EndpointData, _ENDPOINT)
_declare("endpoint.deleted", "A webhook endpoint was deleted.", EndpointData, _ENDPOINT)
_declare(
    "endpoint.disabled",
    "Deliveries to an endpoint stopped: it answered 410, or failed for 5 days. Its admins get an email too.",
    EndpointDisabled,
    {"endpoint_id": 5, "url": "https://hooks.example.com/deskbridge", "reason": "gone"},
)
_declare(
    "endpoint.secret_rotated",
    "An endpoint's signing secret was rotated; the previous one signs too until `previous_valid_until`.",
    SecretRotated,
    {"endpoint_id": 5, "previous_valid_until": "2030-02-01T09:00:00Z"},
)
_declare(
    "hook.deleted",
    "A REST hook was deleted because its target answered 410.",
    HookDeleted,
    {**_ENDPOINT, "kind": "rest_hook", "payload_format": "array", "reason": "gone"},
)
_declare(
    "connection.created", "A directory, calendar or peer platform connection was made.", ConnectionData, _CONNECTION
)
_declare(
    "connection.updated",
    "A connection's name, settings, credentials or SCIM token changed.",
    ConnectionUpdated,
    {**_CONNECTION, "changed": ["settings"]},
)
_declare(
    "connection.deleted", "A connection was deleted (the members it brought in stay).", ConnectionData, _CONNECTION
)
_declare(
    "connection.synced",
    "A sync of the connection finished.",
    ConnectionSynced,
    {**_CONNECTION, "counts": {"seen": 120, "invited": 3, "removed": 1, "updated": 2}},
)
_declare(
    "connection.failed",
    "A connection started failing (its sync, push channels or a delivery); it is retried. Said once, not at"
    " every retry that fails again.",
    ConnectionFailed,
    {**_CONNECTION, "error": "Microsoft Graph answered 503 Service Unavailable; it is retried", "part": "sync"},
)
_declare(
    "connection.action_required",
    "A connection needs an admin: credentials refused, consent revoked, a secret no key opens. Said once.",
    ConnectionActionRequired,
    {**_CONNECTION, "error": "Graph refused the client secret: it is wrong or has expired", "part": "sync"},
)
_declare(
    "connection.recovered",
    "A connection that was failing (or waiting for an admin) works again: a good sync, or channels open.",
    ConnectionRecovered,
    {**_CONNECTION, "part": "sync", "was": "action_required"},
)
_declare(
    "connection.removals_held",
    "A sync would have removed more people than the connection's removal limit allows within an hour: the "
    "removals wait for an admin to approve or reject the plan (everything else was applied). Admins get an email.",
    ConnectionRemovalsHeld,
    {
        **_CONNECTION,
        "plan_id": "plan_9Jx2kQe1",
        "removals": 812,
        "limit": 50,
        "removed_last_hour": 0,
        "people": ["ada@example.com", "grace@example.com"],
    },
)
_declare(
    "external_event.upserted",
    "A calendar event was read (new, or changed in when or how busy); never its title or attendees.",
    ExternalEventData,
    _EXTERNAL_EVENT,
)
_declare(
    "external_event.deleted", "A calendar event was removed from its calendar.", ExternalEventData, _EXTERNAL_EVENT
)
_declare(
    "external_event.booking_refused",
    "A calendar event marked an office day but no booking could be made for it.",
    BookingRefused,
    {**_EXTERNAL_EVENT, "reason": "the member already has a booking at that time"},
)
_declare("feed.created", "A calendar feed (a secret ICS URL) was made.", FeedData, _FEED)
_declare("feed.rotated", "A feed's secret URL was replaced; the old one stops working.", FeedData, _FEED)
_declare("feed.deleted", "A feed was deleted.", FeedData, _FEED)


def get(name: str) -> EventType:
    """The declared type `name`; UnknownEventType when there is none."""
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownEventType(f"{name!r} is not a declared event type (store.event_types)") from None


def matching(pattern: str) -> list[str]:
    """The declared types `pattern` (an exact type, `prefix.*` or `*`) stands for, in catalog order."""
    if pattern == "*":
        return list(CATALOG)
    if pattern.endswith(".*"):
        return [name for name in CATALOG if name.startswith(pattern[:-1])]
    return [pattern] if pattern in CATALOG else []


def nearest(pattern: str) -> str | None:
    """The declared type or family wildcard closest in spelling to `pattern`, if one is close."""
    families = sorted({name.split(".", 1)[0] + ".*" for name in CATALOG})
    choices = families if pattern.endswith(".*") else list(CATALOG)
    close = difflib.get_close_matches(pattern, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def check_pattern(pattern: str) -> str | None:
    """Why `pattern` matches no declared type (naming the nearest one), or None when it matches some."""
    if matching(pattern):
        return None
    near = nearest(pattern)
    hint = f" (did you mean {near!r}?)" if near else ""
    return f"{pattern!r} matches no event type{hint}; GET /v1/event-types lists them"

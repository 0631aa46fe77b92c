"""Kadence resources (JSON-LD) to records: users, bookings as people's office days, desk spaces.

Every check here raises ConnectorError naming the record and the field, so a malformed answer
stops the round before anything reaches the worker.

A booking is a `KadenceEvent`: a PersonEvent that also carries Kadence's own status and its
`checkedInDate`/`checkedOutDate`, which the worker mirrors onto the booking it holds
(sync/peers/attendance.py). The status is also kept as a category `kadence:<status>` (see
`kadence_status`) on the stored event, beside the calendar status the sync engine understands: a
booking checked in, checked out or completed is still a confirmed office day; cancelled and
`noCheckIn` (auto-released: the desk went back and the person never came) are cancelled; `unknown`
is tentative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.records import CalendarEvent, ConnectorError, DirectoryUser, PeerDesk, PersonEvent

CALENDAR_STATUS = {
    "booked": "confirmed",
    "checkedIn": "confirmed",
    "checkedOut": "confirmed",
    "completed": "confirmed",
    "cancelled": "cancelled",
    "noCheckIn": "cancelled",
    "unknown": "tentative",
}
STATUS_CATEGORY = "kadence:"
# Booking types that put their person in the office for the day. Rooms are meetings Kadence already
# writes into the person's own calendar; lockers and parking come with an office day, not instead of one.
OFFICE_TYPES = frozenset({"desk", "private_office", "pod", "onsite"})
BOOKING_REASON = "WFO"


@dataclass(frozen=True, slots=True)
class KadenceEvent(PersonEvent):
    """A Kadence booking as its person's office day, with what Kadence says of their attendance.

    `status` is Kadence's (`booked`, `checkedIn`, `checkedOut`, `completed`, `cancelled`, `noCheckIn`,
    `unknown`); `checked_in_at`/`checked_out_at` its `checkedInDate`/`checkedOutDate` (aware UTC), None
    when the booking has none.
    """

    status: str = "booked"
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Building:
    """What bookings and desks need of a building: its name and IANA time zone."""

    name: str
    time_zone: str | None


def kadence_status(event: CalendarEvent) -> str | None:
    """The Kadence status (`booked`, `checkedIn`, …) a booking's event carries, if it is one."""
    for category in event.categories:
        if category.startswith(STATUS_CATEGORY):
            return category[len(STATUS_CATEGORY) :]
    return None


def identifier(item: Mapping[str, Any], what: str) -> str:
    """The resource's ULID: `id` when it is a string, else the last segment of its `@id` IRI.

    The document renders `id` as an object (a schema artifact of the serialised ULID); the IRI
    always ends with the same ULID, so either way names the resource.
    """
    value = item.get("id")
    if isinstance(value, str) and value:
        return value
    found = reference(item.get("@id"))
    if found is None:
        raise ConnectorError(f"Kadence {what} has neither an id nor an @id")
    return found


def reference(value: object) -> str | None:
    """The ULID a reference names: an IRI string or an embedded `{"@id": …}` object; None when null."""
    if isinstance(value, dict):
        value = value.get("@id")
    if not isinstance(value, str) or not value.strip("/"):
        return None
    return value.rstrip("/").rsplit("/", 1)[-1]


def parse_time(value: object, what: str) -> datetime:
    """An ISO 8601 date-time with its offset (`2017-07-21T17:32:28+00:00`) as aware UTC.

    A time without an offset is refused: the document always gives one, and guessing the zone would
    move someone's day by hours.
    """
    if not isinstance(value, str):
        raise ConnectorError(f"Kadence {what} is {value!r}, not a date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConnectorError(f"Kadence {what} is {value!r}, not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ConnectorError(f"Kadence {what} is {value!r}, without a UTC offset")
    return parsed.astimezone(UTC)


def _text(item: Mapping[str, Any], key: str, what: str, *, required: bool = True) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConnectorError(f"Kadence {what} has {key}={value!r}, not a name")
    return value.strip()


def to_user(item: Mapping[str, Any]) -> DirectoryUser:
    """A Kadence user as a directory record (a pending invitation is still a colleague: active)."""
    ulid = identifier(item, "user")
    email = item.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise ConnectorError(f"Kadence user {ulid} has email={email!r}, not an address")
    names = (_text(item, key, f"user {ulid}", required=False) for key in ("firstName", "lastName"))
    return DirectoryUser(
        external_id=ulid,
        username=email or ulid,
        email=email or None,
        display_name=" ".join(name for name in names if name),
    )


def to_building(item: Mapping[str, Any]) -> tuple[str, Building]:
    """(ULID, Building) of a Kadence building."""
    ulid = identifier(item, "building")
    zone = item.get("timeZone")
    return ulid, Building(_text(item, "name", f"building {ulid}"), zone if isinstance(zone, str) and zone else None)


def _name_of(value: object) -> str:
    """The `name` of an embedded floor or neighborhood (null when the space has none)."""
    name = value.get("name") if isinstance(value, dict) else None
    return name.strip() if isinstance(name, str) else ""


def to_desk(item: Mapping[str, Any], building: Building | None) -> PeerDesk:
    """A Kadence space of type desk as a desk to import (the building comes from the listing's filter)."""
    ulid = identifier(item, "space")
    return PeerDesk(
        external_id=ulid,
        label=_text(item, "name", f"space {ulid}"),
        building=building.name if building else "",
        floor=_name_of(item.get("floor")),
    )


@dataclass(frozen=True, slots=True)
class Booking:
    """The parts of a booking the reader decides on before translating it."""

    ulid: str
    type: str
    user: str | None  # the ULID of the user the booking is for


def booking_head(item: Mapping[str, Any]) -> Booking:
    """A booking's id, type and user, checked."""
    ulid = identifier(item, "booking")
    kind = _text(item, "type", f"booking {ulid}")
    return Booking(ulid, kind, reference(item.get("userId")))


def to_event(item: Mapping[str, Any], person: str, buildings: Mapping[str, Building]) -> KadenceEvent:
    """A desk (or onsite) booking as `person`'s office day at the space's (or building's) name."""
    head = booking_head(item)
    what = f"booking {head.ulid}"
    start = parse_time(item.get("startDate"), f"{what} startDate")
    end = parse_time(item.get("endDate"), f"{what} endDate")
    if end <= start:
        raise ConnectorError(f"Kadence {what} ends ({item['endDate']}) before it starts ({item['startDate']})")
    updated = parse_time(item.get("updatedAt"), f"{what} updatedAt")
    status = item.get("status")
    if status not in CALENDAR_STATUS:
        raise ConnectorError(f"Kadence {what} has status={status!r}, not one the document lists")
    space = item.get("space")
    if space is not None and not isinstance(space, dict):
        raise ConnectorError(f"Kadence {what} has a space that is not an object")
    building = buildings.get(reference(item.get("building")) or "")
    space_name = _text(space, "name", f"{what} space") if space else ""
    label = space_name or (building.name if building else "")
    where = (space_name, _name_of(space.get("floor")) if space else "", building.name if building else "")
    event = CalendarEvent(
        event_id=f"booking:{head.ulid}",
        start=start,
        end=end,
        timezone=building.time_zone if building else None,
        show_as="workingElsewhere",  # as Google's working-location entries: where they work, not a meeting
        status=CALENDAR_STATUS[status],
        title=label or "Office",
        location=", ".join(part for part in where if part),
        categories=(f"{STATUS_CATEGORY}{status}",),
        working_location="office",
        working_location_label=label or None,
        # Kadence moves a booking to completed or noCheckIn itself; the status is in the etag so such a
        # move is seen even if it left updatedAt alone.
        etag=f"{updated.isoformat()}/{status}",
        updated=updated,
    )
    return KadenceEvent(
        person=person,
        event=event,
        booking_reason=BOOKING_REASON,
        status=status,
        checked_in_at=_maybe_time(item, "checkedInDate", what),
        checked_out_at=_maybe_time(item, "checkedOutDate", what),
    )


def _maybe_time(item: Mapping[str, Any], key: str, what: str) -> datetime | None:
    """An optional date-time field (null or absent until the booking is checked in or out)."""
    value = item.get(key)
    return None if value is None else parse_time(value, f"{what} {key}")

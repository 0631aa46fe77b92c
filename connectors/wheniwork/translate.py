"""When I Work objects as deskbridge records, every field we use checked before anything is built.

A field that is missing or of the wrong kind is a `ConnectorError` naming the object and the
field: the reader translates a whole listing before it yields a page, so one bad object stops the
round with nothing applied. IDs come as numbers or as numeric strings (the document has both).

Mapping choices (see reader.py for the listings):

- A user is a DirectoryUser keyed by their When I Work id; the email is the sign-in name (the
  login takes an email). `activated` false means not active; a user object without it counts as
  active (the document's list examples leave it out). Locations and roles, which DirectoryUser has
  no fields for, become groups: `location:<id>` named after the location, `role:<code>`.
- A published shift assigned to someone (`user_id` 0 is an open shift) at a listed location that
  counts as an office (every listed location, unless the connection names its offices) is a booking
  for a shift: `shift:<id>`, at the office the location names. A shift object without `published`
  counts as published: a listing shows unpublished shifts only when asked to.
- A time-off request (the document's "Requests") is an out-of-office entry, `timeoff:<id>`, when
  its status is an approved one; it is all-day when it runs from midnight to midnight in its offset.
- The etag is the object's `updated_at` (with the location's name for shifts, which the event
  shows); the zone is the fixed offset the start was written in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.records import CalendarEvent, ConnectorError, DirectoryUser, PersonEvent
from connectors.wheniwork.dates import DateError, fixed_zone, is_local_midnight, local_offset, parse_datetime

ROLE_NAMES = {2: "Managers", 5: "Supervisors", 3: "Employees"}  # the document's codes


@dataclass(frozen=True, slots=True)
class Person:
    """A When I Work user: the record for the directory, and what events and groups need of them."""

    id: int
    record: DirectoryUser
    locations: tuple[int, ...]
    role: int | None


def listing(body: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> list[dict[str, Any]]:
    """The objects under `key` (`{"shifts": […]}`); an absent optional sideload is an empty list."""
    items = body.get(key)
    if items is None and not required:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ConnectorError(f"When I Work answered /{path} without a list of objects in {key!r}")
    return items


def ident(obj: Mapping[str, Any], key: str, what: str) -> int:
    """An id field as an int: a number or a numeric string."""
    value = _as_id(obj.get(key))
    if value is None:
        raise _bad(obj, what, f"{key} is {obj.get(key)!r}, not an id")
    return value


def _as_id(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def person(obj: Mapping[str, Any]) -> Person:
    """A user object as a Person."""
    user_id = ident(obj, "id", "user")
    email = _text(obj, "email", "user").strip() or None
    if email is not None and "@" not in email:
        raise _bad(obj, "user", f"email {email!r} is not an address")
    name = " ".join(part for part in (_text(obj, "first_name", "user"), _text(obj, "last_name", "user")) if part)
    record = DirectoryUser(
        external_id=str(user_id),
        username=email or str(user_id),
        email=email,
        display_name=name.strip(),
        active=_flag(obj, "activated", "user", default=True),
    )
    located = obj.get("locations") or []
    locations = tuple(_as_id(item) for item in located) if isinstance(located, list) else (None,)
    if None in locations:
        raise _bad(obj, "user", f"locations is {located!r}, not a list of ids")
    role = ident(obj, "role", "user") if obj.get("role") is not None else None
    return Person(user_id, record, tuple(item for item in locations if item is not None), role)


def location(obj: Mapping[str, Any]) -> tuple[int, str]:
    """A location object as (id, name)."""
    location_id = ident(obj, "id", "location")
    name = _text(obj, "name", "location").strip()
    return location_id, name or f"Location {location_id}"


def offices(wanted: Sequence[int | str], locations: Mapping[int, str]) -> tuple[frozenset[int], tuple[str, ...]]:
    """The ids of the listed locations `wanted` names (ids, or names in any case), and what named none.

    A name shared by several locations names them all; an entry that names no listed location is
    handed back, so the admin hears of it (a location renamed or closed in When I Work).
    """
    found: set[int] = set()
    unknown: list[str] = []
    for entry in wanted:
        if isinstance(entry, int):
            named = {entry} & set(locations)
        else:
            named = {lid for lid, name in locations.items() if name.strip().casefold() == entry.strip().casefold()}
        if not named:
            unknown.append(str(entry))
        found |= named
    return frozenset(found), tuple(unknown)


def role_name(code: int) -> str:
    """The group name of a role code (the document names three)."""
    return ROLE_NAMES.get(code, f"Role {code}")


def shift(
    obj: Mapping[str, Any],
    emails: Mapping[int, str],
    locations: Mapping[int, str],
    skipped: Counter[str],
    *,
    offices: frozenset[int] | None = None,
) -> PersonEvent | None:
    """A shift as a booking, or None (open, unpublished, or skipped for a reason counted in `skipped`).

    `offices`: the location ids that count as offices; None: every listed location does.
    """
    shift_id = ident(obj, "id", "shift")
    user_id = ident(obj, "user_id", "shift")
    location_id = ident(obj, "location_id", "shift") if obj.get("location_id") is not None else 0
    start, end, zone = _span(obj, "shift")
    updated = _maybe_when(obj, "updated_at", "shift")
    if not _flag(obj, "published", "shift", default=True) or user_id == 0:
        return None  # unpublished shifts are not shown to employees yet; open shifts are nobody's
    email = emails.get(user_id)
    label = locations.get(location_id)
    if email is None:
        skipped["shifts of people When I Work does not list with an email"] += 1
        return None
    if label is None:
        skipped["shifts without a listed location"] += 1
        return None
    if offices is not None and location_id not in offices:
        skipped["shifts at locations that are not offices"] += 1
        return None
    event = CalendarEvent(
        event_id=f"shift:{shift_id}",
        start=start,
        end=end,
        timezone=zone,
        title="Shift",
        location=label,
        working_location="office",
        working_location_label=label,
        etag=f"{updated.isoformat()} {label}" if updated else None,
        updated=updated,
    )
    return PersonEvent(person=email, event=event, booking_reason="shift")


def time_off(
    obj: Mapping[str, Any], emails: Mapping[int, str], approved: frozenset[int], skipped: Counter[str]
) -> PersonEvent | None:
    """An approved time-off request as an out-of-office entry, or None."""
    request_id = ident(obj, "id", "request")
    user_id = ident(obj, "user_id", "request")
    status = ident(obj, "status", "request")
    start, end, zone = _span(obj, "request")
    updated = _maybe_when(obj, "updated_at", "request")
    if status not in approved:
        return None
    email = emails.get(user_id)
    if email is None:
        skipped["time off of people When I Work does not list with an email"] += 1
        return None
    whole_days = is_local_midnight(obj["start_time"]) and is_local_midnight(obj["end_time"])
    event = CalendarEvent(
        event_id=f"timeoff:{request_id}",
        start=start,
        end=end,
        timezone=zone,
        all_day=whole_days,
        show_as="oof",
        title="Time off",
        etag=updated.isoformat() if updated else None,
        updated=updated,
    )
    return PersonEvent(person=email, event=event)


def _span(obj: Mapping[str, Any], what: str) -> tuple[datetime, datetime, str | None]:
    start = _when(obj, "start_time", what)
    end = _when(obj, "end_time", what)
    if end <= start:
        raise _bad(obj, what, f"it ends ({obj['end_time']}) before it starts ({obj['start_time']})")
    return start, end, fixed_zone(local_offset(obj["start_time"]))


def _maybe_when(obj: Mapping[str, Any], key: str, what: str) -> datetime | None:
    return None if obj.get(key) is None else _when(obj, key, what)


def _when(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    try:
        return parse_datetime(obj.get(key))
    except DateError as error:
        raise _bad(obj, what, f"{key}: {error}") from None


def _text(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(obj, what, f"{key} is {value!r}, not text")
    return value


def _flag(obj: Mapping[str, Any], key: str, what: str, *, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):  # the document's own example has `"activated": 1`
        return str(value) == "1"
    raise _bad(obj, what, f"{key} is {value!r}, not true or false")


def _bad(obj: Mapping[str, Any], what: str, reason: str) -> ConnectorError:
    return ConnectorError(f"When I Work sent a malformed {what} (id {obj.get('id')!r}): {reason}")

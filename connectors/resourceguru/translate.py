"""Resource Guru objects as records: resources as people, bookings and downtimes (time off) as their events.

Pure functions, shared by the reconciling poll and the webhooks. Anything unreadable is a ValueError
naming the object and the field, so one bad object never becomes a half-true record.

Mapping (the document's fields; `[EXT]` where only the older docs name them):
- A resource is a person when its type is human (`resource_types[].human`) and it has an `email`;
  `external_id` is its id, `active` is not `archived`. Its zone (`timezone`, a Rails name, or `[EXT]`
  `{name, offset}`) is the zone its bookings and time off follow when they name none.
- A booking covers `start_date`..`end_date` (inclusive), `duration` minutes a day from `start_time`
  (minutes after midnight; null: some time in the day). One day at a known time is that interval;
  anything else (no start time, several days) is all-day across its days: the person is committed
  on those days, and a single calendar entry cannot say "an hour a day" honestly. Tentative bookings
  ("do not take up availability") are show_as tentative; others busy.
- A downtime runs from `from` at `start_time` to `to` at `end_time` (minutes; 0..1440 is whole days,
  then all-day) and is show_as oof. `deleted: true` means it is gone.
- Ids are "booking:<id>" and "downtime:<id>": one per object, the same in every person's calendar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.records import CalendarEvent, DirectoryUser, PersonEvent
from connectors.resourceguru.zones import iana_zone

DAY_MINUTES = 1440


@dataclass(frozen=True, slots=True)
class Person:
    """A human resource with an address: who its events belong to, and its zone (IANA; None: UTC)."""

    email: str
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Roster:
    """Who is who at one account: resource id → Person, and the ids of human resource types.

    Bookings and downtimes name resources by id only, so turning them into people's events needs
    this; the poll builds it on every round, and webhooks are read against the last one kept.
    """

    people: Mapping[str, Person] = field(default_factory=dict)
    human_types: frozenset[int] = frozenset()


def human_type_ids(types: list[dict[str, Any]]) -> frozenset[int]:
    """The ids of the resource types marked `human`."""
    return frozenset(_int(item, "id", "resource type") for item in types if item.get("human") is True)


def to_user(resource: Mapping[str, Any], human_types: frozenset[int]) -> DirectoryUser | None:
    """The person a resource is, or None when it is not a human resource with an address."""
    rid = _int(resource, "id", "resource")
    what = f"resource {rid}"
    email = _text(resource, "email", what).strip().lower()
    if not email or not _is_human(resource, human_types, what):
        return None
    if "@" not in email:
        raise ValueError(f"{what}: email {email!r} is not an address")
    name = _text(resource, "name", what).strip()
    if not name:
        name = f"{_text(resource, 'first_name', what)} {_text(resource, 'last_name', what)}".strip()
    archived = resource.get("archived", False)
    if not isinstance(archived, bool):
        raise ValueError(f"{what}: archived is not true or false")
    return DirectoryUser(external_id=str(rid), username=email, email=email, display_name=name, active=not archived)


def person_of(resource: Mapping[str, Any], user: DirectoryUser) -> Person:
    """The roster entry of a resource `to_user` made a person of."""
    zone = resource.get("timezone")
    if isinstance(zone, Mapping):  # [EXT] the older docs show {name, offset}
        zone = zone.get("name")
    return Person(user.email or user.username, iana_zone(zone) if isinstance(zone, str) else None)


def booking_events(item: Mapping[str, Any], roster: Roster) -> list[PersonEvent]:
    """A booking as the events of the people it books (resources that are not people are left out)."""
    bid = _int(item, "id", "booking")
    what = f"booking {bid}"
    start_day, end_day = _date(item, "start_date", what), _date(item, "end_date", what)
    if end_day < start_day:
        raise ValueError(f"{what}: end_date {end_day} is before start_date {start_day}")
    duration = _int(item, "duration", what, low=1, high=DAY_MINUTES)
    start_time = None if item.get("start_time") is None else _int(item, "start_time", what, low=0, high=DAY_MINUTES)
    tentative = item.get("tentative") is True
    out: list[PersonEvent] = []
    for person, zone in _people(item, roster, what):
        if start_time is not None and start_day == end_day:
            start = _at(start_day, start_time, zone)
            end, all_day = start + timedelta(minutes=duration), False
        else:
            start, end, all_day = _at(start_day, 0, zone), _at(end_day + timedelta(days=1), 0, zone), True
        event = CalendarEvent(
            event_id=f"booking:{bid}",
            start=start,
            end=end,
            timezone=zone.key,
            all_day=all_day,
            show_as="tentative" if tentative else "busy",
            status="tentative" if tentative else "confirmed",
            title=_title(item, what, "Booking"),
            etag=_etag(item),
            updated=_updated(item, what),
        )
        out.append(PersonEvent(person=person.email, event=event))
    return out


def downtime_events(item: Mapping[str, Any], roster: Roster) -> list[PersonEvent]:
    """Time off as out-of-office events of its people (none when it is marked deleted)."""
    did = _int(item, "id", "downtime")
    what = f"downtime {did}"
    first, last = _date(item, "from", what), _date(item, "to", what)
    start_time = _int(item, "start_time", what, low=0, high=DAY_MINUTES)
    end_time = _int(item, "end_time", what, low=0, high=DAY_MINUTES)
    if (last, end_time) <= (first, start_time):
        raise ValueError(f"{what}: it ends ({last} +{end_time} min) before it starts ({first} +{start_time} min)")
    if item.get("deleted") is True:
        return []
    out: list[PersonEvent] = []
    for person, zone in _people(item, roster, what):
        event = CalendarEvent(
            event_id=f"downtime:{did}",
            start=_at(first, start_time, zone),
            end=_at(last, end_time, zone),
            timezone=zone.key,
            all_day=start_time == 0 and end_time == DAY_MINUTES,
            show_as="oof",
            title=_title(item, what, "Time off"),
            etag=_etag(item),
            updated=_updated(item, what),
        )
        out.append(PersonEvent(person=person.email, event=event))
    return out


def resource_ids(item: Mapping[str, Any], what: str) -> list[str]:
    """The resources an object is for: `resource_ids`, or a booking's single `resource_id`."""
    ids: list[str] = []
    many = item.get("resource_ids")
    if many is not None:
        if not isinstance(many, list):
            raise ValueError(f"{what}: resource_ids is not a list")
        ids = [str(_id(value, f"{what}: resource_ids")) for value in many]
    if item.get("resource_id") is not None:
        single = str(_id(item["resource_id"], f"{what}: resource_id"))
        if single not in ids:
            ids.insert(0, single)
    if not ids:
        raise ValueError(f"{what}: it names no resource (resource_ids or resource_id)")
    return ids


def _people(item: Mapping[str, Any], roster: Roster, what: str) -> list[tuple[Person, ZoneInfo]]:
    named = item.get("timezone")
    if named is not None and not isinstance(named, str):
        raise ValueError(f"{what}: timezone is not a name")
    own = iana_zone(named)  # null or empty: each resource's own zone, as the document says
    out: list[tuple[Person, ZoneInfo]] = []
    for rid in resource_ids(item, what):
        person = roster.people.get(rid)
        if person is not None:
            out.append((person, ZoneInfo(own or person.timezone or "UTC")))
    return out


def _is_human(resource: Mapping[str, Any], human_types: frozenset[int], what: str) -> bool:
    kind = resource.get("resource_type")
    if isinstance(kind, Mapping) and isinstance(kind.get("human"), bool):
        return bool(kind["human"])
    type_id = resource.get("resource_type_id", kind.get("id") if isinstance(kind, Mapping) else None)
    if type_id is not None and human_types:
        return _id(type_id, f"{what}: resource_type_id") in human_types
    return True  # nothing says otherwise: an address is what makes a resource someone


def _at(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    # Minutes past local midnight; 1440 is the next midnight. Aware arithmetic in one zone is
    # wall-clock arithmetic, so 540 is 09:00 local even on a day daylight saving changes.
    return (datetime.combine(day, time(), zone) + timedelta(minutes=minutes)).astimezone(UTC)


def _title(item: Mapping[str, Any], what: str, default: str) -> str:
    lines = _text(item, "details", what).strip().splitlines()
    return lines[0].strip()[:200] if lines else default


def _etag(item: Mapping[str, Any]) -> str | None:
    value = item.get("updated_at")
    return value if isinstance(value, str) and value else None


def _updated(item: Mapping[str, Any], what: str) -> datetime | None:
    value = _etag(item)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: updated_at {value!r} is not an ISO 8601 time") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(item: Mapping[str, Any], key: str, what: str, *, low: int = 1, high: int | None = None) -> int:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what}: {key} is {'missing' if value is None else 'not a whole number'}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{what}: {key} {value} is outside {bounds}")
    return value


def _id(value: Any, what: str) -> int:
    # Query strings carry ids as digit strings; payloads should carry numbers, but accept either.
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what}: {value!r} is not an id")
    return value


def _date(item: Mapping[str, Any], key: str, what: str) -> date:
    value = item.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{what}: {key} is {'missing' if value is None else 'not a date'}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: {key} {value!r} is not an ISO 8601 date (YYYY-MM-DD)") from None


def _text(item: Mapping[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what}: {key} is not text")
    return value

"""Google Calendar event resources as calendar records (and the booking id deskbridge hides in them).

Google gives a timed event's `start`/`end` as `dateTime` (RFC 3339 with an offset) plus an optional
`timeZone`, and an all-day event's as `date`, the end date exclusive. All-day events run from midnight
to midnight in the event's zone, or the calendar's (the listing's `timeZone`). An instance of a
recurring event carries `recurringEventId` and `originalStartTime`, which names the instance even
after it was moved. A deleted event, or a cancelled instance, comes back as `status: cancelled` with
little more than its id: that is a removal.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.records import CalendarEvent, RemovedEvent, Window

# The private extended property that marks an event deskbridge wrote (echo suppression, idempotent writes).
BOOKING_PROPERTY = "deskbridgeBookingId"

WORKING_LOCATIONS = {"homeOffice": "home", "officeLocation": "office", "customLocation": "custom"}


def to_record(item: dict[str, Any], calendar_zone: str | None) -> CalendarEvent | RemovedEvent | None:
    """One event resource as a CalendarEvent, a RemovedEvent (cancelled), or None (no id: nothing to key it by)."""
    event_id = item.get("id")
    if not event_id:
        return None
    if item.get("status") == "cancelled":
        return RemovedEvent(str(event_id))
    start_field = item.get("start") or {}
    zone = start_field.get("timeZone") or calendar_zone
    start, all_day = parse_time(start_field, zone)
    end, _ = parse_time(item.get("end") or {}, zone)
    if start is None:
        return None
    if end is None or end < start:
        end = start + (timedelta(days=1) if all_day else timedelta())
    location_type, label = working_location(item)
    return CalendarEvent(
        event_id=str(event_id),
        start=start,
        end=end,
        ical_uid=item.get("iCalUID"),
        recurrence_id=original_start(item),
        timezone=zone,
        all_day=all_day,
        show_as=show_as(item),
        status=str(item.get("status") or "confirmed"),
        title=str(item.get("summary") or ""),
        location=str(item.get("location") or ""),
        attendees=tuple(str(a["email"]) for a in item.get("attendees") or () if a.get("email")),
        working_location=location_type,
        working_location_label=label,
        etag=item.get("etag"),
        updated=_parse_datetime(item.get("updated")),
        booking_id=booking_id(item),
    )


def overlaps(event: CalendarEvent, window: Window) -> bool:
    """Whether the event touches the window, as Google's timeMin/timeMax filter it (both bounds exclusive)."""
    return event.end > window.start and event.start < window.end


def parse_time(field: dict[str, Any], zone: str | None) -> tuple[datetime | None, bool]:
    """A start or end field as an aware UTC datetime, and whether it was an all-day date."""
    if field.get("dateTime"):
        when = _parse_datetime(field["dateTime"])
        if when is not None and when.tzinfo is None:  # Google always sends an offset; be safe anyway
            when = when.replace(tzinfo=_zone(zone))
        return (when.astimezone(UTC) if when is not None else None), False
    if field.get("date"):
        day = date.fromisoformat(str(field["date"]))
        return datetime.combine(day, time(), _zone(zone)).astimezone(UTC), True
    return None, False


def original_start(item: dict[str, Any]) -> str | None:
    """The instance's original start: ISO 8601 in UTC for timed series, the date for all-day ones."""
    if not item.get("recurringEventId"):
        return None
    field = item.get("originalStartTime") or {}
    if field.get("dateTime"):
        when = _parse_datetime(field["dateTime"])
        return when.isoformat() if when is not None and when.tzinfo is not None else None
    return str(field["date"]) if field.get("date") else None


def show_as(item: dict[str, Any]) -> str:
    """How the event shows the person: status events first, then transparency and their own answer."""
    event_type = item.get("eventType")
    if event_type == "outOfOffice":
        return "oof"
    if event_type == "workingLocation":
        return "workingElsewhere"
    if item.get("transparency") == "transparent":
        return "free"
    own = next((a for a in item.get("attendees") or () if a.get("self")), None)
    answer = own.get("responseStatus") if own else None
    if answer == "declined":
        return "free"  # invited but not going: the time is not taken
    if answer == "tentative" or item.get("status") == "tentative":
        return "tentative"
    return "busy"


def working_location(item: dict[str, Any]) -> tuple[str | None, str | None]:
    """(home | office | custom, label) of a working-location entry; (None, None) for other events."""
    if item.get("eventType") != "workingLocation":
        return None, None
    properties = item.get("workingLocationProperties") or {}
    kind = WORKING_LOCATIONS.get(str(properties.get("type")))
    if kind is None:  # older entries have no `type`: the sub-object present says which it is
        kind = next((WORKING_LOCATIONS[key] for key in WORKING_LOCATIONS if key in properties), None)
    if kind == "office":
        office = properties.get("officeLocation") or {}
        label = office.get("label") or office.get("buildingId") or office.get("deskId")
        return kind, str(label) if label else None
    if kind == "custom":
        label = (properties.get("customLocation") or {}).get("label")
        return kind, str(label) if label else None
    return kind, None


def booking_id(item: dict[str, Any]) -> int | None:
    """The booking id deskbridge put in the event's private extended properties, if any."""
    value = ((item.get("extendedProperties") or {}).get("private") or {}).get(BOOKING_PROPERTY)
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def _parse_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else when


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")

"""Outlook events (Graph `event` objects) as CalendarEvents, and how an event we wrote is recognised.

Our events carry the booking id twice, both set when the event is created:

- `transactionId` = `deskbridge-booking-{booking id}-{sequence}`. Graph uses it to drop a retried
  create, and returns it on every read of the event ("only returned in a response payload if an
  app has set it"), calendarView delta included. Delta supports neither `$expand` nor `$select`,
  so this is how the reader knows an echo without a request per event.
- the single-value extended property BOOKING_PROPERTY (a String in our own property set). Graph can
  filter events on it, so the writer finds the event of a booking whose create was cut short.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from connectors.microsoft.calendar_times import iana_name, midnight, read_day, read_time, wall_clock, zone_named
from connectors.records import CalendarEvent, ConnectorError, RemovedEvent

CALENDARS_PERMISSION = "Calendars.ReadWrite"
PROPERTY_SET = "{08c009cf-719c-4a93-aecc-5d96ea41b5a5}"  # ours; never change it, events in the wild carry it
BOOKING_PROPERTY = f"String {PROPERTY_SET} Name deskbridgeBookingId"
TRANSACTION_PREFIX = "deskbridge-booking-"
CATEGORY = "deskbridge"
SHOW_AS = frozenset({"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"})
_TRANSACTION = re.compile(rf"^{TRANSACTION_PREFIX}(\d+)(?:-|$)")


def transaction_id(booking_id: int, sequence: int, suffix: str = "") -> str:
    """The transactionId a booking's event is created with (`suffix` tells a re-creation apart)."""
    return f"{TRANSACTION_PREFIX}{booking_id}-{sequence}{suffix}"


def booking_of(item: dict[str, Any]) -> int | None:
    """The booking id an event of ours carries (transactionId, else the extended property), or None."""
    transaction = item.get("transactionId")
    if isinstance(transaction, str) and (match := _TRANSACTION.match(transaction)):
        return int(match.group(1))
    for prop in item.get("singleValueExtendedProperties") or ():
        if not isinstance(prop, dict) or str(prop.get("id", "")).lower() != BOOKING_PROPERTY.lower():
            continue
        value = str(prop.get("value", ""))
        if value.isdigit():
            return int(value)
    return None


def is_removed(item: dict[str, Any]) -> bool:
    """Delta's tombstone: deleted, or moved out of the window (Graph says `deleted` for both)."""
    return "@removed" in item


def removed_from_graph(item: dict[str, Any]) -> RemovedEvent:
    """A RemovedEvent from an `@removed` delta entry."""
    return RemovedEvent(event_id=str(item["id"]))


def event_from_graph(item: dict[str, Any]) -> CalendarEvent:
    """A CalendarEvent from a Graph event, an occurrence or exception of a series included.

    All-day events are dates: Graph writes them as midnight in whatever zone was asked for, so the
    day is read and its midnight taken in the organiser's zone (`originalStartTimeZone`; UTC when
    Graph names none or one we cannot place, e.g. `tzone://Microsoft/Custom`).
    """
    original_zone = item.get("originalStartTimeZone")
    all_day = item.get("isAllDay") is True
    if all_day:
        zone = zone_named(original_zone) or UTC
        start, end = midnight(read_day(item.get("start")), zone), midnight(read_day(item.get("end")), zone)
    else:
        start, end = read_time(item.get("start")), read_time(item.get("end"))
    show_as = str(item.get("showAs") or "busy")
    location = item.get("location")
    return CalendarEvent(
        event_id=str(item["id"]),
        start=start,
        end=end,
        ical_uid=_text(item.get("iCalUId")),
        recurrence_id=_recurrence_id(item),
        timezone=iana_name(original_zone),
        all_day=all_day,
        show_as=show_as if show_as in SHOW_AS else "unknown",
        status="cancelled" if item.get("isCancelled") is True else "confirmed",
        title=str(item.get("subject") or ""),
        location=str(location.get("displayName") or "") if isinstance(location, dict) else "",
        categories=tuple(str(category) for category in item.get("categories") or ()),
        attendees=_attendees(item.get("attendees")),
        etag=_text(item.get("changeKey")) or _text(item.get("@odata.etag")),
        updated=_offset_time(item.get("lastModifiedDateTime")),
        booking_id=booking_of(item),
    )


def _recurrence_id(item: dict[str, Any]) -> str | None:
    """An instance's original start in UTC ("2025-03-03T08:00:00Z"); None outside a series."""
    if not item.get("seriesMasterId") and item.get("type") not in ("occurrence", "exception"):
        return None
    # originalStart is the slot the series gave the instance; an exception moved elsewhere keeps it.
    original = _offset_time(item.get("originalStart")) or read_time(item.get("start"))
    return original.strftime("%Y-%m-%dT%H:%M:%SZ")


def _attendees(value: Any) -> tuple[str, ...]:
    addresses: list[str] = []
    for attendee in value or ():
        email = attendee.get("emailAddress") if isinstance(attendee, dict) else None
        address = email.get("address") if isinstance(email, dict) else None
        if isinstance(address, str) and address:
            addresses.append(address.lower())
    return tuple(addresses)


def _offset_time(value: Any) -> datetime | None:
    """A DateTimeOffset ("2017-04-15T03:00:51.245372Z") as aware UTC; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)  # Python 3.11 reads Graph's form ("…0226900Z") as it is
    except ValueError:
        pass
    else:
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    text = value.strip()
    offset = "+00:00"
    if text.endswith("Z"):
        text = text[:-1]
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        text, offset = text[:-6], text[-6:]
    try:
        moment = datetime.fromisoformat(wall_clock(text).isoformat() + offset)
    except (ConnectorError, ValueError):  # a bad timestamp costs us `updated`, never the event
        return None
    return moment.astimezone(UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

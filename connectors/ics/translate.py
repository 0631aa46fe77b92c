"""One expanded occurrence (an `icalendar.Event` from recurring-ical-events) to a CalendarEvent."""

from __future__ import annotations

import hashlib
from dataclasses import astuple, replace
from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo

import icalendar
from icalendar.error import BrokenCalendarProperty
from icalendar.timezone import tzid_from_tzinfo

from connectors.ics.zones import iana_name
from connectors.records import CalendarEvent

BOOKING_ID = "X-DESKBRIDGE-BOOKING-ID"  # what our own export writes (connectors.ics.export)
# Outlook's own show-as, more precise than TRANSP; exported by Exchange and Outlook.com feeds.
BUSY_STATUS = {
    "FREE": "free",
    "TENTATIVE": "tentative",
    "BUSY": "busy",
    "OOF": "oof",
    "WORKINGELSEWHERE": "workingElsewhere",
}


def to_utc(value: date, fallback: tzinfo | None) -> datetime:
    """An aware UTC time: dates are midnight and floating times are wall-clock time in `fallback` (UTC if None).

    Local times that do not exist (spring forward) take the offset before the gap and repeated ones
    (fall back) the first of the two, as RFC 5545 says: zoneinfo's `fold=0` does exactly that.
    """
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=fallback or UTC)
    return value.astimezone(UTC)


def _utc_iso(value: date, fallback: tzinfo | None) -> str:
    if not isinstance(value, datetime):
        return value.isoformat()  # an all-day instance is a day, the same in every zone
    return to_utc(value, fallback).strftime("%Y-%m-%dT%H:%M:%SZ")


def _zone_name(value: date, fallback: ZoneInfo | None) -> str | None:
    tz = value.tzinfo if isinstance(value, datetime) else None
    if tz is None:
        return fallback.key if fallback else None
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return key
    name = tzid_from_tzinfo(tz)  # VTIMEZONE-made zones keep their TZID, often a Windows name
    return iana_name(name) if name else None


def _show_as(event: icalendar.Event, status: str) -> str:
    if status == "cancelled":
        return "free"  # an event that does not take place keeps nobody busy
    busy = str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).strip().upper()
    if busy in BUSY_STATUS:
        return BUSY_STATUS[busy]
    if str(event.get("TRANSP", "")).strip().upper() == "TRANSPARENT":
        return "free"
    return "tentative" if status == "tentative" else "busy"


def _list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _attendees(event: icalendar.Event) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for attendee in _list(event.get("ATTENDEE")):
        text = str(attendee).strip()
        if text[:7].lower() == "mailto:" and text[7:]:
            found.setdefault(text[7:], None)
    return tuple(found)


def _booking_id(event: icalendar.Event) -> int | None:
    try:
        return int(str(event.get(BOOKING_ID, "")).strip())
    except ValueError:
        return None


def moment(value: object) -> date | None:
    """The date or date-time of a parsed property (DTSTART, RECURRENCE-ID…); None when absent or broken."""
    try:
        found = getattr(value, "dt", None)
    except BrokenCalendarProperty:  # icalendar keeps what it could not read, and raises on its use
        return None
    return found if isinstance(found, date) else None


def _updated(event: icalendar.Event, fallback: tzinfo | None) -> datetime | None:
    found = moment(event.get("LAST-MODIFIED"))
    return to_utc(found, fallback) if found is not None else None


def to_event(
    event: icalendar.Event,
    *,
    uid: str,
    ical_uid: str | None,
    original: date | None,
    fallback: ZoneInfo | None,
    date_only: bool = False,
) -> CalendarEvent:
    """Translate one occurrence; `fallback` is the zone for floating times and all-day dates (the calendar's).

    `original` is the instance's original start in its series (None for a single event): with the UID
    it names the instance, however the instance was moved since. `date_only`: the series declared
    VALUE=DATE but also a TZID (ownCloud does), which icalendar reads as midnight in that zone.
    """
    start, end = event.start, event.end
    recurrence_id = _utc_iso(original, fallback) if original is not None else None
    raw_status = str(event.get("STATUS", "")).strip().upper()
    status = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}.get(raw_status, "confirmed")
    translated = CalendarEvent(
        event_id=f"{uid}/{recurrence_id}" if recurrence_id else uid,
        start=to_utc(start, fallback),
        end=to_utc(end, fallback),
        ical_uid=ical_uid,
        recurrence_id=recurrence_id,
        timezone=_zone_name(start, fallback),
        all_day=date_only or not isinstance(start, datetime),
        show_as=_show_as(event, status),
        status=status,
        title=str(event.get("SUMMARY", "")),
        location=str(event.get("LOCATION", "")),
        categories=tuple(str(category) for category in event.categories),
        attendees=_attendees(event),
        updated=_updated(event, fallback),
        booking_id=_booking_id(event),
    )
    # The etag is what we made of the occurrence, so a feed re-exported with new DTSTAMPs changes nothing.
    # LAST-MODIFIED is left out: a series' master gets a new one when any single instance is edited.
    digest = hashlib.sha256(repr(astuple(replace(translated, updated=None))).encode()).hexdigest()[:32]
    return replace(translated, etag=digest)

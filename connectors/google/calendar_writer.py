"""Bookings written into a person's primary Google calendar (`CalendarWriter`).

A booking becomes a working-location entry ("office, <label>"), as Google's calendar-status guide
describes one: `eventType: workingLocation` with `workingLocationProperties` of type
`officeLocation`, `visibility: public`, `transparency: transparent`, timed (a booking has times).
Working locations exist on primary calendars only and only where an admin turned them on; Google
refuses them with a 400 otherwise, and the writer then writes a plain busy event and remembers to.

Every event carries the booking id in `extendedProperties.private.deskbridgeBookingId`: the reader
hands it back as `booking_id` (so our own events never come in as the person's), and a create whose
answer was lost (a crash, a timeout) is found again by `privateExtendedProperty` before writing. The
event id itself is made from the booking id, so an insert retried inside one call meets a 409 rather
than making a second event. An event keeps its type for life (Google will not turn a plain event into
a working location), so updates write the kind the event already is.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.google.calendar_events import BOOKING_PROPERTY, booking_id
from connectors.google.calendar_service import CalendarService, GoogleConflict, GoogleGone, GoogleInvalid
from connectors.google.service import GoogleNotFound, GoogleSettings
from connectors.records import BookingEntry

log = logging.getLogger(__name__)

WORKING_LOCATION = "workingLocation"


class GoogleCalendarWriter:
    """Creates, updates and deletes booking events in one person's primary calendar (one per thread).

    `working_location`: True writes working-location entries (a refusal is an error), False plain
    events, None (default) tries a working location and falls back to a plain event when Google
    refuses it; the attribute then turns False, which the worker may keep for that person.
    """

    def __init__(
        self,
        settings: GoogleSettings,
        person: str,
        *,
        working_location: bool | None = None,
        service: CalendarService | None = None,
    ) -> None:
        """Prepare a writer acting as `person`; builds the service (no network) unless given."""
        self.settings = settings
        self.person = person
        self.working_location = working_location
        self.service = service or CalendarService(settings, person)

    def put(self, entry: BookingEntry, event_id: str | None) -> str:
        """Create or update the booking's event; returns its id (another one if the stored event is not ours)."""
        existing = self._ours(self._fetch(event_id), entry.booking_id) if event_id else None
        if existing is None:
            existing = self._find(entry.booking_id)
        if existing is not None:
            try:
                return self._update(existing, entry)
            except (GoogleNotFound, GoogleGone):
                pass  # deleted for good between our read and our write: make it again
        return self._create(entry)

    def delete(self, event_id: str) -> None:
        """Delete the booking's event; one already deleted (410) or unknown (404) is what we wanted."""
        try:
            self.service.call(
                lambda r: r.events().delete(calendarId="primary", eventId=event_id, sendUpdates="none"),
                f"deleting event {event_id}",
            )
        except (GoogleNotFound, GoogleGone):
            return

    def _fetch(self, event_id: str) -> dict[str, Any] | None:
        try:
            return self.service.call(
                lambda r: r.events().get(calendarId="primary", eventId=event_id), f"reading event {event_id}"
            )
        except (GoogleNotFound, GoogleGone):
            return None

    @staticmethod
    def _ours(item: dict[str, Any] | None, booking: int) -> dict[str, Any] | None:
        # A deleted event, or an id that is not this booking's (never overwrite someone's own event).
        if item is None or item.get("status") == "cancelled" or booking_id(item) != booking:
            return None
        return item

    def _find(self, booking: int) -> dict[str, Any] | None:
        answer = self.service.call(
            lambda r: r.events().list(
                calendarId="primary", privateExtendedProperty=f"{BOOKING_PROPERTY}={booking}", maxResults=50
            ),
            f"looking for booking {booking}'s event",
        )
        found: list[dict[str, Any]] = [
            item for item in answer.get("items") or () if item.get("id") and item.get("status") != "cancelled"
        ]
        if not found:
            return None
        found.sort(key=lambda item: (str(item.get("created") or ""), str(item["id"])))
        for extra in found[1:]:
            # Only an older writer (or a copy made by hand) leaves these; one event per booking is the rule.
            log.warning("deleting duplicate event %s of booking %s", extra["id"], booking)
            self.delete(str(extra["id"]))
        return found[0]

    def _update(self, existing: dict[str, Any], entry: BookingEntry) -> str:
        event_id = str(existing["id"])
        body = booking_body(entry, working_location=existing.get("eventType") == WORKING_LOCATION)
        answer = self.service.call(
            lambda r: r.events().update(calendarId="primary", eventId=event_id, body=body, sendUpdates="none"),
            f"updating event {event_id}",
        )
        return str(answer.get("id") or event_id)

    def _create(self, entry: BookingEntry) -> str:
        if self.working_location is not False:
            try:
                return self._insert(entry, booking_body(entry, working_location=True))
            except GoogleInvalid as refused:
                if self.working_location:
                    raise
                log.info("working locations refused for %s (%s): writing plain events", self.person, refused.message)
                self.working_location = False
        return self._insert(entry, booking_body(entry, working_location=False))

    def _insert(self, entry: BookingEntry, body: dict[str, Any]) -> str:
        # The id is ours, made from the booking id: an insert retried after its answer was lost (a timeout,
        # a 503 after Google did the work) meets a 409 instead of making a second event.
        event_id = event_id_for(entry.booking_id)
        try:
            answer = self.service.call(
                lambda r: r.events().insert(calendarId="primary", body={**body, "id": event_id}, sendUpdates="none"),
                "creating an event",
            )
        except GoogleConflict:
            # Made already: by a try whose answer we lost, or made and deleted since (Google keeps the id).
            existing = self._fetch(event_id)
            if existing is None or booking_id(existing) != entry.booking_id:
                raise
            return self._update(existing, entry)  # "confirmed" brings a deleted one back
        return str(answer["id"])


def event_id_for(booking: int) -> str:
    """The event id we give a booking's event (Google allows base32hex ids of 5 to 1024 characters)."""
    return f"deskbridge{booking}"


def booking_body(entry: BookingEntry, *, working_location: bool) -> dict[str, Any]:
    """The event resource for a booking: a working-location entry, or a plain busy event."""
    body: dict[str, Any] = {
        "start": {"dateTime": _local(entry.start, entry.timezone), "timeZone": entry.timezone},
        "end": {"dateTime": _local(entry.end, entry.timezone), "timeZone": entry.timezone},
        # "confirmed" also brings back an event someone deleted in the meantime (Google keeps it cancelled).
        "status": "confirmed",
        "extendedProperties": {"private": {BOOKING_PROPERTY: str(entry.booking_id)}},
    }
    if working_location:
        body.update(
            eventType=WORKING_LOCATION,
            visibility="public",
            transparency="transparent",
            workingLocationProperties={"type": "officeLocation", "officeLocation": {"label": entry.office_label}},
        )
    else:
        body.update(summary=entry.title, location=entry.location, transparency="opaque")
    return body


def _local(when: datetime, zone: str) -> str:
    if when.tzinfo is None:
        raise ValueError("booking times must be timezone-aware")
    try:
        return when.astimezone(ZoneInfo(zone)).isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        return when.isoformat()

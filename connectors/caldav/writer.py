"""Writes bookings into a person's CalDAV calendar (the first event calendar of the account), as the ICS
export writes them: the UID names the booking and X-DESKBRIDGE-BOOKING-ID marks the event as ours, so the
reader knows its own bookings when they come back (no echo)."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
from caldav.lib import error as dav_error

from connectors.caldav.account import CalDavAccount, answered, translated_errors
from connectors.ics import export
from connectors.records import BookingEntry

DOMAIN = "deskbridge.caldav"  # the right-hand side of the UIDs written here; fixed, so a booking keeps its event


class CalDavCalendarWriter:
    """A CalendarWriter: one resource per booking, addressed by its UID (idempotent by booking id)."""

    def __init__(self, account: CalDavAccount) -> None:
        self._account = account

    def put(self, entry: BookingEntry, event_id: str | None) -> str:
        calendar_data = icalendar.Calendar()
        calendar_data.add("PRODID", export.PRODID)
        calendar_data.add("VERSION", "2.0")
        calendar_data.add_component(export._event(entry, DOMAIN, datetime.now(UTC), cancelled=False))
        uid = event_id or export.uid(entry.booking_id, DOMAIN)
        with self._account.calendars() as calendars, translated_errors():
            calendars[0].save_event(calendar_data.to_ical().decode())  # a PUT to the UID's resource: made or replaced
        return uid

    def delete(self, event_id: str) -> None:
        with self._account.calendars() as calendars, translated_errors():
            try:
                answered(calendars[0].event_by_uid(event_id)).delete()
            except dav_error.NotFoundError:
                return  # already gone

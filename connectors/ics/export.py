"""Bookings as an ICS feed: the format behind `GET /v1/feeds/{secret}.ics` (the route and secrets live elsewhere).

One VEVENT per booking, in UTC (valid everywhere, no VTIMEZONE to keep right). The UID is
`booking-<id>@<domain>` and never changes, SEQUENCE comes from the booking (bumped on every change,
cancelling included), a cancelled booking stays in the feed as STATUS:CANCELLED so subscribers drop
it, and `X-DESKBRIDGE-BOOKING-ID` marks the event as ours when the feed comes back in through a
calendar (connectors.ics.translate reads it into `CalendarEvent.booking_id`). Events are TRANSPARENT:
a desk booking says where someone works, it does not make them busy.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta

import icalendar

from connectors.ics.translate import BOOKING_ID
from connectors.records import BookingEntry

PRODID = "-//deskbridge//bookings//EN"
REFRESH = timedelta(hours=1)


def uid(booking_id: int, domain: str) -> str:
    """The booking's UID in every feed and every calendar it reaches."""
    return f"booking-{booking_id}@{domain}"


def render(
    entries: Iterable[BookingEntry],
    *,
    name: str,
    domain: str,
    cancelled: Collection[int] = frozenset(),
    stamp: datetime | None = None,
    refresh: timedelta = REFRESH,
) -> bytes:
    """The feed's bytes (UTF-8, CRLF, lines folded at 75 octets).

    `domain`: the installation's public host name, the right-hand side of every UID; keep it fixed (a
    new domain makes every booking a new event for subscribers). `cancelled`: ids of the bookings
    among `entries` that are cancelled. `stamp`: the DTSTAMP (now by default; pass one for the same
    bytes from the same bookings). `refresh`: how often subscribers are asked to poll.
    """
    stamp = (stamp or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.add("X-WR-CALNAME", name)
    calendar.add("NAME", name)  # RFC 7986's name for what X-WR-CALNAME says
    calendar.add("REFRESH-INTERVAL", refresh, parameters={"VALUE": "DURATION"})
    # An X- property is text to icalendar: write the duration the way Outlook and Apple expect (PT1H).
    calendar.add("X-PUBLISHED-TTL", _duration(refresh))
    for entry in entries:
        calendar.add_component(_event(entry, domain, stamp, cancelled=entry.booking_id in cancelled))
    ical: bytes = calendar.to_ical()
    return ical


def _duration(value: timedelta) -> str:
    """An RFC 5545 duration ("PT1H"), for a property icalendar would otherwise write as text."""
    days, rest = divmod(int(value.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return text if text != "P" else "PT0S"


def _event(entry: BookingEntry, domain: str, stamp: datetime, *, cancelled: bool) -> icalendar.Event:
    if entry.start.tzinfo is None or entry.end.tzinfo is None:
        raise ValueError(f"booking {entry.booking_id}: start and end must be aware")
    event = icalendar.Event()
    event.add("UID", uid(entry.booking_id, domain))
    event.add("DTSTAMP", stamp)
    event.add("DTSTART", entry.start.astimezone(UTC))
    event.add("DTEND", entry.end.astimezone(UTC))
    event.add("SUMMARY", entry.title)
    if entry.location:
        event.add("LOCATION", entry.location)
    event.add("SEQUENCE", entry.sequence)
    event.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("TRANSP", "TRANSPARENT")
    event.add(BOOKING_ID, str(entry.booking_id))
    return event

"""What a peer platform says of attendance, on the bookings its events hold.

Kadence tracks attendance on its bookings (`checkedIn`, `checkedOut`, `completed`, `noCheckIn`,
`cancelled`); the booking a Kadence desk booking holds in deskbridge follows it through the same store
services as a manual check-in, so the same events go out (`booking.checked_in`, `booking.checked_out`,
`booking.cancelled`):

- checkedIn: the booking is checked in at Kadence's `checkedInDate`; checkedOut: checked in if it was
  not yet, then checked out at `checkedOutDate`. The check-in time is brought inside the window the
  store allows (30 minutes before the start until the end): Kadence's own window may be wider, and a
  check-in seen after the booking ended (the first sync of yesterday's bookings) is still one.
- noCheckIn (auto-released) and cancelled: the booking is cancelled, with `kadence_no_check_in` or
  `kadence_cancelled` as its reason, before the calendar engine sees the event (which would cancel it
  too, with a reason that says less).
- completed: the booking is kept; the check-in and check-out Kadence dated on it (if any) are
  mirrored as above, so a booking first seen completed still says whether its person came.
- booked: nothing changes.

Attendance only moves forward: a booking deskbridge already checked in is never checked out again or
put back because Kadence says less.

A booking checked out (or completed) is history: the calendar engine leaves it as it is while its
event keeps the booking's times (sync/calendar/engine.py `follow`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.kadence import KadenceEvent
from connectors.records import PersonEvent
from store.columns import utcnow
from store.models import LIVE_STATUSES, Booking, BookingStatus, ExternalEvent
from store.services import bookings
from sync.calendar import engine

# Kadence statuses that end the booking, with the cancellation reason they give it.
CANCELLING = {"noCheckIn": "kadence_no_check_in", "cancelled": "kadence_cancelled"}
ATTENDED = frozenset({"checkedIn", "checkedOut", "completed"})
_LATEST = timedelta(microseconds=1)  # check-in closes at the booking's end, exclusive


def held(session: Session, calendar_id: int, event_ids: Iterable[str]) -> dict[str, Booking]:
    """The bookings the calendar's stored events hold, by event id (calendar-made bookings only)."""
    wanted = sorted(set(event_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(ExternalEvent.event_id, Booking)
        .join(Booking, Booking.id == ExternalEvent.booking_id)
        .where(
            ExternalEvent.calendar_id == calendar_id,
            ExternalEvent.event_id.in_(wanted),
            Booking.source == engine.SOURCE,
        )
    )
    return {event_id: booking for event_id, booking in rows}


def release(session: Session, items: Sequence[PersonEvent], holding: dict[str, Booking], tally: engine.Tally) -> None:
    """Cancel the live bookings of Kadence bookings auto-released (noCheckIn) or cancelled there."""
    for item in items:
        if not isinstance(item, KadenceEvent) or item.status not in CANCELLING:
            continue
        booking = holding.get(item.event.event_id)
        if booking is not None and booking.status in LIVE_STATUSES:
            bookings.cancel(session, booking, reason=CANCELLING[item.status])
            tally.count("cancelled")


def mirror(
    session: Session,
    calendar_id: int,
    items: Sequence[PersonEvent],
    tally: engine.Tally,
    *,
    now: datetime | None = None,
) -> None:
    """Check in and out the bookings of Kadence bookings checked in or out there (after the engine booked them)."""
    checked = [item for item in items if isinstance(item, KadenceEvent) and item.status in ATTENDED]
    if not checked:
        return
    holding = held(session, calendar_id, (item.event.event_id for item in checked))
    moment = now or utcnow()
    for item in checked:
        booking = holding.get(item.event.event_id)
        if booking is not None:  # None: refused by the engine (a clash), or the person is not an active member
            _follow(session, booking, item, moment, tally)


def _follow(session: Session, booking: Booking, item: KadenceEvent, moment: datetime, tally: engine.Tally) -> None:
    completed = item.status == "completed"
    if booking.status is BookingStatus.BOOKED and not (completed and item.checked_in_at is None):
        bookings.check_in(session, booking, now=_check_in_time(booking, item.checked_in_at or moment))
        tally.count("checked_in")
    checked_out = item.status == "checkedOut" or (completed and item.checked_out_at is not None)
    if checked_out and booking.status is BookingStatus.CHECKED_IN:
        out = item.checked_out_at or moment
        bookings.check_out(session, booking, now=max(out, booking.checked_in_at or out))
        tally.count("checked_out")


def _check_in_time(booking: Booking, at: datetime) -> datetime:
    """`at`, moved inside the window the store takes check-ins in."""
    return min(max(at, booking.start_at - bookings.CHECK_IN_OPENS), booking.end_at - _LATEST)

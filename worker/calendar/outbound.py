"""Bookings written into their people's calendars: Outlook and Google (ICS feeds are read-only).

After a commit that recorded a booking event, `on_commit` queues `write_booking(booking_id)` (one job
per booking per commit). The commit also recorded the write it owes (a `follow_ups` row, when the
person has a calendar to write into), which the job clears when it finished and the scheduler's
follow-up sweep queues again if the job never ran (the broker was down). The job brings every
writable calendar of the booking's member in line:

- a live booking made in deskbridge is put (created or updated) in the calendar;
- a cancelled one is deleted from it; a finished one (checked out, completed) stays, as it took place;
- a booking made from the person's own office-day event (source `calendar`) is in their calendar
  already: it is never written back (the echo the other way is the reader's `booking_id`).

`calendar_entries` keeps the provider's event id and a fingerprint of what was written, so a job
delivered twice, or one for a change that does not show in the calendar (a check-in), writes
nothing. Writes of one booking into one calendar take turns on the entry's row lock (PostgreSQL). A
refused write is kept on the entry and raised, so the queue retries it; calendars already in line
are not written again by the retry.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import replace

from sqlalchemy.orm import Session

from connectors.records import BookingEntry, ConnectorError
from infra.redis_client import note_unsent
from store.columns import utcnow
from store.db import transaction
from store.models import Booking, BookingStatus, Calendar, ConnectionStatus, Desk, Organisation, OutboxEvent
from store.services import calendars, follow_ups
from sync.calendar import readers
from sync.calendar.engine import SOURCE
from worker import runtime as runtimes
from worker.queue import ActorName
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

# What may change a booking's place in a calendar. booking.checked_in changes nothing there, but is
# cheap to look at and keeps the rule simple: every booking event is looked at.
BOOKING_EVENTS = frozenset(
    {"booking.created", "booking.updated", "booking.cancelled", "booking.checked_in", "booking.checked_out"}
)
DELETED = "deleted"  # the fingerprint of an entry taken out of its calendar


class WriteFailed(Exception):
    """Some calendars refused the booking; the job is retried (the others are in line already)."""


def on_commit(events: list[OutboxEvent]) -> None:
    """A session listener: queue a calendar write for every booking the commit changed (not those
    made from calendar events: never written back). Never raises; the commit recorded the write it
    owes (`bookings` → `follow_ups.CALENDAR_WRITE`), so a job lost here is queued by the sweep."""
    booking_ids = sorted(
        {
            event.data["booking_id"]
            for event in events
            if event.type in BOOKING_EVENTS
            and isinstance(event.data.get("booking_id"), int)
            and event.data.get("source") != SOURCE
        }
    )
    if not booking_ids:
        return
    try:
        queue = runtimes.current().queue
    except Exception:
        logger.warning("could not enqueue the calendar writes of %d bookings; the sweep will", len(booking_ids))
        return
    for booking_id in booking_ids:
        try:  # a lost send: the change recorded the write it owes, which the follow-up sweep queues
            queue.send(ActorName.WRITE_BOOKING, booking_id)
        except Exception:
            note_unsent(logger, "could not enqueue the calendar write of booking %d", booking_id)


def write(runtime: Runtime, booking_id: int) -> int:
    """Bring the booking's calendars in line with it; returns how many calendars were written.

    Raises WriteFailed when a calendar refused (after recording why on its entry). Otherwise the
    write the booking was owed, as it was when this started, is done (`follow_ups.CALENDAR_WRITE`).
    """
    with transaction(runtime.session_factory) as session:
        # Read before the booking: a change committed after this is owed again, and stays owed.
        owed = follow_ups.seen(session, follow_ups.CALENDAR_WRITE, booking_id)
        booking = session.get(Booking, booking_id)
        if booking is None:
            targets: set[int] = set()
        else:
            targets = {calendar.id for calendar in calendars.writable_of_member(session, booking.member_id)}
            targets |= {entry.calendar_id for entry in calendars.entries_of(session, booking_id)}
    written = 0
    failures: list[str] = []
    for calendar_id in sorted(targets):
        try:
            written += _write_one(runtime, booking_id, calendar_id)
        except ConnectorError as error:
            failures.append(f"calendar {calendar_id}: {error.message}")
    if failures:
        # The queue retries the job for hours: the sweep is only there for when it gives up.
        with transaction(runtime.session_factory) as session:
            until = utcnow() + follow_ups.MAX_DELAY
            follow_ups.put_off(session, follow_ups.CALENDAR_WRITE, booking_id, owed, until)
        raise WriteFailed(f"booking {booking_id}: " + "; ".join(failures))
    if owed is not None:
        with transaction(runtime.session_factory) as session:
            follow_ups.done(session, follow_ups.CALENDAR_WRITE, booking_id, owed)
    return written


def _write_one(runtime: Runtime, booking_id: int, calendar_id: int) -> int:
    """Put or delete the booking's event in one calendar, under the entry's lock; 1 if it wrote."""
    with transaction(runtime.session_factory) as session:
        calendar = session.get(Calendar, calendar_id)
        booking = session.get(Booking, booking_id)
        if calendar is None or booking is None or calendar.status is ConnectionStatus.ACTION_REQUIRED:
            return 0
        wanted = _desired(session, booking)
        written_here = any(entry.calendar_id == calendar_id for entry in calendars.entries_of(session, booking_id))
        if wanted is None and not written_here:
            return 0  # never written here: nothing to take out
    if wanted is not None:
        with transaction(runtime.session_factory) as session:
            calendars.entry(session, booking_id, calendar_id)  # made in a short transaction of its own
    with transaction(runtime.session_factory) as session:
        entry = calendars.entry(session, booking_id, calendar_id)  # locked until this transaction ends
        # What the booking is now, read after the lock: a job that waited sees the latest change.
        booking = session.get_one(Booking, booking_id, populate_existing=True)
        wanted = _desired(session, booking)
        calendar = session.get_one(Calendar, calendar_id)
        source = readers.source_of(session, runtime.secret_box, calendar)
        writer = readers.make_writer(source, runtime.directory, runtime.webhook_client)
        if writer is None:
            return 0
        stored = None if entry.deleted else entry.provider_event_id
        try:
            if wanted is None:
                if stored is None:
                    return 0
                writer.delete(stored)
                calendars.written(entry, event_id=stored, sequence=entry.sequence, fingerprint=DELETED, deleted=True)
                return 1
            mark = fingerprint(wanted)
            if entry.written_hash == mark and stored is not None:
                return 0  # the calendar has this version already
            # SEQUENCE grows with every change: seconds since creation, or one more than last time.
            sequence = max(_age_seconds(booking), entry.written_sequence + 1)
            event_id = writer.put(replace(wanted, sequence=sequence), stored)
            calendars.written(entry, event_id=event_id, sequence=sequence, fingerprint=mark)
            return 1
        except ConnectorError as error:
            calendars.write_failed(entry, error.message)
            logger.warning("writing booking %d into calendar %d: %s", booking_id, calendar_id, error.message)
            failure = error
    raise failure


def _desired(session: Session, booking: Booking) -> BookingEntry | None:
    """The booking as its calendars should show it, or None when it should not be there."""
    if booking.source == SOURCE:
        return None  # made from the person's own calendar event: it is there already
    if booking.status is BookingStatus.CANCELLED:
        return None
    return _as_entry(session, booking)  # live, or history (checked out, completed): it took place


def _as_entry(session: Session, booking: Booking) -> BookingEntry:
    organisation = session.get_one(Organisation, booking.organisation_id)
    desk = session.get(Desk, booking.desk_id) if booking.desk_id else None
    if desk is None:
        title, where = "Office day (deskbridge)", [organisation.name]
        office = organisation.name
    else:
        title = f"Desk {desk.label} (deskbridge)"
        where = [f"Desk {desk.label}", f"Floor {desk.floor}" if desk.floor else "", desk.building]
        office = desk.building or organisation.name
    return BookingEntry(
        booking_id=booking.id,
        start=booking.start_at,
        end=booking.end_at,
        timezone=organisation.timezone,
        title=title,
        location=", ".join(part for part in where if part),
        office_label=office,
    )


def fingerprint(entry: BookingEntry) -> str:
    """What the calendar shows of an entry (its sequence aside): equal fingerprints need no write."""
    parts: Iterable[str] = (
        entry.start.isoformat(),
        entry.end.isoformat(),
        entry.timezone,
        entry.title,
        entry.location,
        entry.office_label,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _age_seconds(booking: Booking) -> int:
    return max(0, int((booking.updated_at - booking.created_at).total_seconds()))

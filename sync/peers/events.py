"""Everyone's events on a peer platform, into each person's calendar of the connection.

A peer platform lists everyone's events at once (When I Work shifts and time off, Kadence desk
bookings, Resource Guru bookings and downtimes), so one read of the window serves every calendar of
the connection (`calendars.ensure`: one per person, by the member's email). The whole window is read
before anything is applied: a malformed object or a refused request ends the round with nothing
applied. Each calendar is then applied in its own transaction through the calendar engine: an event
with a `booking_reason` holds a booking of that reason (a shift, a Kadence desk booking) instead of
going through the office rules, and every listing is complete, so a calendar's stored events the
listing left out are removed, their bookings cancelled.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session, sessionmaker

from connectors.records import (
    CalendarPage,
    ConnectorError,
    PeoplePage,
    PeopleReader,
    PersonEvent,
    RemovedEvent,
    Window,
)
from store.db import transaction
from store.models import Calendar, Connection, Organisation
from store.services import calendars, external_events
from sync.calendar import engine
from sync.peers import attendance


def window_of(factory: sessionmaker[Session], connection_id: int) -> Window:
    """The organisation's calendar window, as the calendar sync reads it."""
    with transaction(factory) as session:
        connection = session.get_one(Connection, connection_id)
        start, end = calendars.window(session.get_one(Organisation, connection.organisation_id))
    return Window(start, end)


def sync(factory: sessionmaker[Session], connection_id: int, reader: PeopleReader, tally: engine.Tally) -> str | None:
    """Read the window's events and apply them to every person's calendar; returns the round's cursor."""
    window = window_of(factory, connection_id)
    pages = list(reader.events(None, window))  # all of it first: nothing is applied from a round that fails
    if not pages or not pages[-1].last:
        raise ConnectorError("the platform's listing of events ended before its last page; it is read again")
    apply_listing(factory, connection_id, pages, window, tally)
    return pages[-1].cursor


def apply_listing(
    factory: sessionmaker[Session], connection_id: int, pages: list[PeoplePage], window: Window, tally: engine.Tally
) -> None:
    """Apply a complete listing of the window: each calendar gets its person's events, and only those."""
    with transaction(factory) as session:
        live = calendars.ensure(session, session.get_one(Connection, connection_id))
        by_person = {calendar.address.lower(): calendar.id for calendar in live}
    grouped: dict[int, list[PersonEvent]] = {calendar_id: [] for calendar_id in by_person.values()}
    strangers = 0
    for page in pages:
        for text in page.notes:
            tally.note(text)
        for item in page.events:
            calendar_id = by_person.get(item.person.lower())
            if calendar_id is None:
                strangers += 1  # not a member (yet): their events wait for the directory to bring them in
            else:
                grouped[calendar_id].append(item)
    if strangers:
        tally.note(f"skipped {strangers} events of people who are not members")
    # Every peer reader lists the whole window; were one ever to send changes only, nothing unlisted may go.
    full = all(page.full for page in pages)
    removed = [item for page in pages for item in page.removed]
    for calendar_id, items in grouped.items():
        mine = engine.Tally()  # each calendar keeps what its own sync did
        with transaction(factory) as session:
            apply_calendar(session, calendar_id, items, window, mine, full=full, removed=() if full else removed)
        for name, value in mine.counts.items():
            tally.count(name, value)


def apply_calendar(
    session: Session,
    calendar_id: int,
    items: Iterable[PersonEvent],
    window: Window,
    tally: engine.Tally,
    *,
    full: bool,
    removed: Iterable[RemovedEvent] = (),
) -> None:
    """One person's events into their calendar; `full`: they are all of the window's (the others go).

    Attendance (attendance.py): Kadence's released and cancelled bookings cancel ours first; then the
    engine applies the events (leaving a booking that is over as it is), and Kadence's check-ins and
    check-outs are mirrored on what it booked.
    """
    items = list(items)
    # Only events that are bookings in their own right are looked up: a query less per webhook delivery
    # for platforms without them (Resource Guru).
    holding = attendance.held(session, calendar_id, (item.event.event_id for item in items if item.booking_reason))
    attendance.release(session, items, holding, tally)
    page = CalendarPage(events=tuple(item.event for item in items), removed=tuple(removed), full=full, last=True)
    booked = {
        item.event.event_id: (item.event.working_location_label or "", item.booking_reason)
        for item in items
        if item.booking_reason and item.event.status != "cancelled"  # a cancelled one releases its booking
    }
    context = engine.Context.load(session, calendar_id)
    engine.apply_page(session, calendar_id, page, tally, context, booked=booked)
    attendance.mirror(session, calendar_id, items, tally)
    if not full:
        return
    # A complete listing: what it left out is gone, and the calendar is up to date as of now.
    listed = {item.event.event_id for item in items}
    engine.remove_unlisted(session, calendar_id, listed, window.start, window.end, tally)
    calendar = session.get_one(Calendar, calendar_id)
    external_events.forget_outside(session, calendar, window.start, window.end)
    calendars.finish(session, calendar, cursor=None, window_start=window.start.date(), counts=dict(tally.counts))

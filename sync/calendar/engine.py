"""The calendar engine: calendar pages in, external events and office-day bookings out.

Each page is staged as external events (store/services/external_events.py: only real changes are
written and emitted). For every event that changed, the office-day rules decide whether it places
its person in the office; if so the event holds a booking (reason WFO, source `calendar`), moved or
cancelled with it. A clash with another booking never overwrites anything: the calendar's booking
is refused, the reason kept on the event and emitted as `external_event.booking_refused`.

When the organisation turns `release_on_absence` on, an event that changed and says its person is out
of office for whole days (`rules.absent_days`) cancels their bookings not yet started or checked into
that lie within those days, whatever made them, with the reason `out_of_office`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.records import CalendarEvent, CalendarPage
from store import outbox
from store.columns import utcnow
from store.errors import StoreError
from store.models import (
    LIVE_STATUSES,
    Booking,
    BookingStatus,
    Calendar,
    Connection,
    Desk,
    ExternalEvent,
    Member,
    MemberStatus,
    Organisation,
)
from store.services import bookings, external_events
from sync import tally
from sync.calendar.rules import ABSENT, OfficeRules, absent_days, office_day

logger = logging.getLogger(__name__)

SOURCE = bookings.CALENDAR_SOURCE  # the source of bookings made from office-day events
_OVER = (BookingStatus.CHECKED_OUT, BookingStatus.COMPLETED)


class Tally(tally.Tally):
    """What a calendar sync did."""

    COUNTS = ("seen", "changed", "removed", "echoes", "booked", "moved", "cancelled", "refused")


@dataclass(frozen=True, slots=True)
class Context:
    """What applying a calendar's pages needs of the calendar, its connection and its organisation.

    Read once per sync (`load`), so a page's transaction is only its own statements: the calendar's
    first sync is a page or two, and three lookups a page were as many round trips as the page's own.
    Doubles as the calendar for `external_events` (`id`, `organisation_id`, `member_id`).
    """

    id: int
    organisation_id: int
    member_id: int | None
    provider: str
    busy_only: bool
    rules: OfficeRules
    # The organisation's zone when whole days out of office release bookings (`release_on_absence`); None: off.
    absence_zone: str | None = None

    @classmethod
    def load(cls, session: Session, calendar_id: int) -> Context:
        """The calendar's context as it is now."""
        calendar = session.get_one(Calendar, calendar_id)
        organisation = session.get_one(Organisation, calendar.organisation_id)
        return cls(
            id=calendar.id,
            organisation_id=calendar.organisation_id,
            member_id=calendar.member_id,
            provider=session.get_one(Connection, calendar.connection_id).kind.value,
            busy_only=organisation.calendar_busy_only,
            rules=OfficeRules.from_settings(organisation.office_rules),
            absence_zone=absence_zone(organisation),
        )


def absence_zone(organisation: Organisation) -> str | None:
    """What `Context.absence_zone` holds for an organisation: its zone when absences release bookings."""
    return organisation.timezone if organisation.release_on_absence else None


def apply_page(
    session: Session,
    calendar_id: int,
    page: CalendarPage,
    tally: Tally,
    context: Context | None = None,
    booked: Mapping[str, tuple[str, str]] | None = None,
    *,
    locked: bool = False,
) -> None:
    """Stage one page of a calendar and bring the bookings of the events it changed in line.

    `context`: the calendar's, read at the start of the sync (read here when not given). `booked`:
    events that are bookings in their own right (a peer platform's shift or desk booking), by event
    id → (office or desk label, booking reason); they skip the office rules. `locked`: the caller holds
    the calendar's row lock already (`external_events.lock`).
    """
    context = context or Context.load(session, calendar_id)
    booked = booked or {}
    offices = _offices(page, context, booked)
    applied = external_events.apply(
        session,
        context,
        context.provider,
        page.events,
        [removed.event_id for removed in page.removed],
        busy_only=context.busy_only,
        locked=locked,
    )
    _follow_up(session, page, tally, context, applied, offices, booked)


def apply_pages(session: Session, pages: Sequence[tuple[CalendarPage, Tally, Context]]) -> None:
    """`apply_page` for pages of several calendars at once (a batch's), whose row locks the caller holds
    (`external_events.lock`): their events staged together (`external_events.apply_many`: a few
    statements for all of them), then each calendar's bookings brought in line."""
    offices = [_offices(page, context, {}) for page, _, context in pages]
    staged = external_events.apply_many(
        session,
        [
            external_events.Staging(
                context,
                context.provider,
                page.events,
                [removed.event_id for removed in page.removed],
                context.busy_only,
            )
            for page, _, context in pages
        ],
    )
    for (page, counts, context), office, applied in zip(pages, offices, staged, strict=True):
        _follow_up(session, page, counts, context, applied, office, {})


def _offices(page: CalendarPage, context: Context, booked: Mapping[str, tuple[str, str]]) -> dict[str, str | None]:
    """The office day each event of the page places its person on (None: none), ours left out."""
    offices = {event.event_id: office_day(event, context.rules) for event in page.events if event.booking_id is None}
    offices.update((event_id, label) for event_id, (label, _) in booked.items() if event_id in offices)
    return offices


def _follow_up(
    session: Session,
    page: CalendarPage,
    tally: Tally,
    context: Context,
    applied: external_events.Applied,
    offices: Mapping[str, str | None],
    booked: Mapping[str, tuple[str, str]],
) -> None:
    """Count what staging the page did and bring the bookings of what it changed in line."""
    tally.count("seen", len(page.events))
    tally.count("changed", len(applied.changed))
    tally.count("removed", len(applied.removed))
    tally.count("echoes", applied.echoes)
    for text in page.notes:
        tally.note(text)
    for change in applied.changed:
        office = offices.get(change.event_id)
        if office is None and change.booking_id is None and change.booking_refused is None:
            continue  # no office day, and never was one: nothing to book, nothing to release or clear
        reason = booked[change.event_id][1] if change.event_id in booked else "WFO"
        follow(session, context, session.get_one(ExternalEvent, change.id), office, tally, reason=reason)
    for row in applied.removed:
        _release(session, row.booking_id, tally)
    if context.absence_zone is not None and context.member_id is not None and applied.changed:
        changed = {change.event_id for change in applied.changed}
        for event in page.events:
            if event.event_id in changed and event.booking_id is None:
                _release_absent(session, context.member_id, event, context.absence_zone, tally)


def _release_absent(session: Session, member_id: int, event: CalendarEvent, zone: str, tally: Tally) -> None:
    """Cancel the member's bookings that lie within the whole days `event` says they are out of office
    (not started yet and not checked into: a booking under way is theirs to end)."""
    days = absent_days(event, zone)
    if days is None:
        return
    start, end = days
    released = session.scalars(
        select(Booking)
        .where(
            Booking.member_id == member_id,
            Booking.status == BookingStatus.BOOKED,
            Booking.start_at >= max(start, utcnow()),
            Booking.end_at <= end,
        )
        .order_by(Booking.start_at)
    ).all()
    for booking in released:
        bookings.cancel(session, booking, reason=ABSENT)
        tally.count("released")
    if released:
        tally.note(f"released {len(released)} booking(s) from {start:%Y-%m-%d}: out of office")


def remove_unlisted(
    session: Session, calendar_id: int, listed: set[str], start: datetime, end: datetime, tally: Tally
) -> None:
    """After a complete listing of the window: events it did not list are gone, with their bookings."""
    calendar = session.get_one(Calendar, calendar_id)
    gone = external_events.remove(
        session, calendar, external_events.others_in_window(session, calendar, listed, start, end)
    )
    tally.count("removed", len(gone))
    for row in gone:
        _release(session, row.booking_id, tally)


def follow(
    session: Session,
    calendar: external_events.CalendarKeys,
    event: ExternalEvent,
    office: str | None,
    tally: Tally,
    *,
    reason: str = "WFO",
) -> None:
    """Make, move or cancel the booking an event holds, by whether it is an office day now.

    A booking that is over (checked out, completed) for the event's times is history: an edit of the
    event that keeps its times leaves it be instead of booking the slot again.
    """
    booking = session.get(Booking, event.booking_id) if event.booking_id else None
    if booking is not None and booking.status in _OVER:
        if office is not None and (booking.start_at, booking.end_at) == (event.start_at, event.end_at):
            event.booking_refused = None
            return
        booking = None
    if booking is not None and booking.status not in LIVE_STATUSES:
        booking = None
    if office is None:
        if booking is not None:
            _release(session, booking.id, tally)
        event.booking_refused = None
        return
    member = session.get(Member, calendar.member_id) if calendar.member_id else None
    if member is None or member.status is not MemberStatus.ACTIVE:
        _refuse(session, event, "the calendar's person is not an active member", tally)
        return
    desk_id = _desk_named(session, calendar.organisation_id, office)
    if booking is None:
        booking = _orphan(session, member.id, event)
    try:
        with session.begin_nested():
            if booking is None:
                booking = bookings.create(
                    session,
                    member,
                    start=event.start_at,
                    end=event.end_at,
                    desk_id=desk_id,
                    reason=reason,
                    source=SOURCE,
                    details=office,
                )
                tally.count("booked")
            elif (booking.start_at, booking.end_at, booking.desk_id) != (event.start_at, event.end_at, desk_id):
                bookings.update(session, booking, start=event.start_at, end=event.end_at, desk_id=desk_id)
                tally.count("moved")
    except StoreError as error:
        _refuse(session, event, error.message, tally)
        return
    event.booking_id = booking.id
    event.booking_refused = None


def _orphan(session: Session, member_id: int, event: ExternalEvent) -> Booking | None:
    """A live calendar booking of the member for exactly the event's times that no event holds any more.

    Left behind when its event was forgotten (the window narrowed, the calendar was switched off)
    and now seen again: the event takes it back, instead of being refused against it.
    """
    held = select(ExternalEvent.id).where(ExternalEvent.booking_id == Booking.id)
    return session.scalars(
        select(Booking)
        .where(
            Booking.member_id == member_id,
            Booking.source == SOURCE,
            Booking.status.in_(LIVE_STATUSES),
            Booking.start_at == event.start_at,
            Booking.end_at == event.end_at,
            ~held.exists(),
        )
        .limit(1)
    ).first()


def _desk_named(session: Session, organisation_id: int, label: str) -> int | None:
    """The active desk an office day names (by label, any case), if exactly one matches."""
    if not label.strip():
        return None
    found = session.scalars(
        select(Desk.id).where(
            Desk.organisation_id == organisation_id,
            Desk.active.is_(True),
            func.lower(Desk.label) == label.strip().lower(),
        )
    ).all()
    return found[0] if len(found) == 1 else None


def _release(session: Session, booking_id: int | None, tally: Tally) -> None:
    booking = session.get(Booking, booking_id) if booking_id else None
    if booking is not None and booking.status in LIVE_STATUSES and booking.source == SOURCE:
        bookings.cancel(session, booking, reason="calendar_event_changed")
        tally.count("cancelled")


def _refuse(session: Session, event: ExternalEvent, reason: str, tally: Tally) -> None:
    tally.count("refused")
    if event.booking_refused == reason[:200]:
        return  # refused for the same reason before: said once
    event.booking_refused = reason[:200]
    tally.note(f"an office day on {event.start_at:%Y-%m-%d} was not booked: {reason}")
    outbox.record(
        session,
        event.organisation_id,
        "external_event.booking_refused",
        {**external_events.describe(event), "reason": reason},
    )

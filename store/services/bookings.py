"""Bookings: create, change, cancel, check in and out; and the queries the API pages through."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.errors import Conflict, Invalid, NotAllowed, NotFound
from store.models import LIVE_STATUSES, Booking, BookingStatus, Desk, Member, MemberStatus, TeamMembership
from store.models.booking import DESK_OVERLAP, MEMBER_OVERLAP
from store.services import follow_ups

# Check-in opens this long before the booking starts.
CHECK_IN_OPENS = timedelta(minutes=30)
# The source of bookings made from a person's own calendar event (sync.calendar.engine makes them):
# they are in that calendar already, so they are never written back.
CALENDAR_SOURCE = "calendar"


def _describe(booking: Booking) -> dict[str, Any]:
    return {
        "booking_id": booking.id,
        "member_id": booking.member_id,
        "desk_id": booking.desk_id,
        "start": booking.start_at,
        "end": booking.end_at,
        "status": booking.status,
        "reason": booking.reason,
        "source": booking.source,
    }


def _check_times(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("times need a UTC offset", field="start")
    if end <= start:
        raise Invalid("end must be after start", field="end")


def _active_desk(session: Session, organisation_id: int, desk_id: int) -> Desk:
    desk = session.get(Desk, desk_id)
    if desk is None or desk.organisation_id != organisation_id:
        raise NotFound(f"no desk {desk_id}", field="desk_id")
    if not desk.active:
        raise NotAllowed(f"desk {desk.label!r} is not bookable", field="desk_id")
    return desk


# Namespaces of the advisory locks that queue up bookings of one desk or one member (PostgreSQL).
_DESK_LOCK, _MEMBER_LOCK = 1, 2


def _queue_up(session: Session, booking: Booking) -> None:
    """On PostgreSQL, wait for other transactions booking the same desk or member to finish first.

    Two inserts that clash on an exclusion constraint, both in flight, each wait for the other to
    end: PostgreSQL breaks that deadlock by failing one with "deadlock detected" instead of a clean
    violation. Queuing on advisory locks (desk first, then member: one order for everyone) means the
    later insert finds the earlier committed and fails with the violation, which becomes a Conflict.
    """
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite runs one writer at a time
    with session.no_autoflush:  # the booking is written after the locks, not by them
        if booking.desk_id is not None:
            session.execute(select(func.pg_advisory_xact_lock(_DESK_LOCK, booking.desk_id)))
        session.execute(select(func.pg_advisory_xact_lock(_MEMBER_LOCK, booking.member_id)))


def _flush_or_conflict(session: Session, booking: Booking) -> None:
    """Flush, turning the database's overlap guards into a Conflict that names the clash."""
    _queue_up(session, booking)
    try:
        session.flush()
    except IntegrityError as error:
        message = str(error.orig)
        if DESK_OVERLAP in message:
            raise Conflict("the desk is already booked for that time", code="desk_unavailable") from error
        if MEMBER_OVERLAP in message:
            raise Conflict("the member already has a booking at that time", code="member_busy") from error
        raise


def create(
    session: Session,
    member: Member,
    *,
    start: datetime,
    end: datetime,
    desk_id: int | None = None,
    details: str = "",
    reason: str = "WFO",
    source: str = "api",
) -> Booking:
    """Book a slot for an active member, with or without a desk."""
    _check_times(start, end)
    if member.status is not MemberStatus.ACTIVE:
        raise NotAllowed(f"{member.email} is {member.status.value} and cannot book", field="member_id")
    if desk_id is not None:
        _active_desk(session, member.organisation_id, desk_id)
    booking = Booking(
        organisation_id=member.organisation_id,
        member_id=member.id,
        desk_id=desk_id,
        start_at=start,
        end_at=end,
        details=details,
        reason=reason,
        source=source,
        status=BookingStatus.BOOKED,
    )
    session.add(booking)
    _flush_or_conflict(session, booking)
    outbox.record(session, booking.organisation_id, "booking.created", _describe(booking))
    _owe_calendar_write(session, booking)
    return booking


def get(session: Session, organisation_id: int, booking_id: int) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None or booking.organisation_id != organisation_id:
        raise NotFound(f"no booking {booking_id}")
    return booking


_UNSET: Any = object()


def update(
    session: Session,
    booking: Booking,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    desk_id: int | None = _UNSET,
    details: str | None = None,
    reason: str | None = None,
) -> Booking:
    """Move or edit a live booking; records `booking.updated` with what changed."""
    if booking.status not in LIVE_STATUSES:
        raise NotAllowed(f"a {booking.status.value} booking cannot be changed")
    new_start, new_end = start or booking.start_at, end or booking.end_at
    _check_times(new_start, new_end)
    changes: dict[str, Any] = {}
    if new_start != booking.start_at:
        booking.start_at = changes["start"] = new_start
    if new_end != booking.end_at:
        booking.end_at = changes["end"] = new_end
    if desk_id is not _UNSET and desk_id != booking.desk_id:
        if desk_id is not None:
            _active_desk(session, booking.organisation_id, desk_id)
        booking.desk_id = changes["desk_id"] = desk_id
    if details is not None and details != booking.details:
        booking.details = changes["details"] = details
    if reason is not None and reason != booking.reason:
        booking.reason = changes["reason"] = reason
    if changes:
        _flush_or_conflict(session, booking)
        outbox.record(session, booking.organisation_id, "booking.updated", {**_describe(booking), "changes": changes})
        _owe_calendar_write(session, booking)
    return booking


def cancel(
    session: Session, booking: Booking, *, reason: str = "cancelled_by_member", now: datetime | None = None
) -> Booking:
    """Cancel a live booking; the desk is free again."""
    if booking.status not in LIVE_STATUSES:
        raise NotAllowed(f"a {booking.status.value} booking cannot be cancelled")
    booking.status = BookingStatus.CANCELLED
    booking.cancellation_reason = reason
    booking.cancelled_at = now or utcnow()
    outbox.record(session, booking.organisation_id, "booking.cancelled", {**_describe(booking), "reason": reason})
    _owe_calendar_write(session, booking)
    return booking


def restore(session: Session, booking: Booking) -> Booking:
    """Make a cancelled booking live again as it was (checked in if it had been and not out), when its
    desk and its member are still free: the same guards as a new booking, so a restore racing a booking
    of that desk is a Conflict for one of them. For undoing a removal (store.services.restores)."""
    if booking.status is not BookingStatus.CANCELLED:
        raise NotAllowed(f"a {booking.status.value} booking cannot be restored")
    if booking.desk_id is not None:
        _active_desk(session, booking.organisation_id, booking.desk_id)
    checked_in = booking.checked_in_at is not None and booking.checked_out_at is None
    booking.status = BookingStatus.CHECKED_IN if checked_in else BookingStatus.BOOKED
    booking.cancellation_reason = None
    booking.cancelled_at = None
    _flush_or_conflict(session, booking)
    outbox.record(session, booking.organisation_id, "booking.restored", _describe(booking))
    _owe_calendar_write(session, booking)
    return booking


def _owe_calendar_write(session: Session, booking: Booking) -> None:
    """Record that the booking is owed a write into its person's Outlook, Google or CalDAV calendars (see
    store.services.follow_ups), when they have one. Check-ins and check-outs change nothing there."""
    if booking.source == CALENDAR_SOURCE:
        return
    from store.services import calendars  # calendars -> members -> this module

    if calendars.has_writable(session, booking.member_id):
        follow_ups.record(session, follow_ups.CALENDAR_WRITE, booking.id, booking.organisation_id)


def check_in(session: Session, booking: Booking, *, now: datetime | None = None) -> Booking:
    """Check in, from CHECK_IN_OPENS before the start until the end."""
    now = now or utcnow()
    if booking.status is not BookingStatus.BOOKED:
        raise NotAllowed(f"a {booking.status.value} booking cannot be checked in")
    if not booking.start_at - CHECK_IN_OPENS <= now < booking.end_at:
        raise NotAllowed("check-in opens 30 minutes before the booking starts and closes at its end")
    booking.status = BookingStatus.CHECKED_IN
    booking.checked_in_at = now
    outbox.record(session, booking.organisation_id, "booking.checked_in", _describe(booking))
    return booking


def check_out(session: Session, booking: Booking, *, now: datetime | None = None) -> Booking:
    """Check out of a checked-in booking; the desk is free for the rest of the slot."""
    if booking.status is not BookingStatus.CHECKED_IN:
        raise NotAllowed(f"a {booking.status.value} booking cannot be checked out")
    booking.status = BookingStatus.CHECKED_OUT
    booking.checked_out_at = now or utcnow()
    outbox.record(session, booking.organisation_id, "booking.checked_out", _describe(booking))
    return booking


@dataclass(frozen=True)
class BookingFilter:
    """What a booking listing may be narrowed by; every field is optional."""

    member_id: int | None = None
    team_id: int | None = None
    desk_id: int | None = None
    statuses: Sequence[BookingStatus] = ()
    ends_after: datetime | None = None
    starts_before: datetime | None = None

    def shape(self) -> FilterShape:
        """Which of the filters are set (and how many statuses): what the WHERE clauses depend on."""
        return FilterShape(
            self.member_id is not None,
            self.team_id is not None,
            self.desk_id is not None,
            len(self._distinct_statuses()),
            self.ends_after is not None,
            self.starts_before is not None,
        )

    def values(self, organisation_id: int) -> dict[str, Any]:
        """The parameters `bound_conditions(self.shape())` take."""
        values: dict[str, Any] = {"organisation_id": organisation_id}
        for name in ("member_id", "team_id", "desk_id", "ends_after", "starts_before"):
            if (value := getattr(self, name)) is not None:
                values[name] = value
        values.update({f"status_{index}": status for index, status in enumerate(self._distinct_statuses())})
        return values

    def _distinct_statuses(self) -> tuple[BookingStatus, ...]:
        # A status asked for twice is asked for once: so there are only so many shapes, whatever the request.
        return tuple(dict.fromkeys(self.statuses))


class FilterShape(NamedTuple):
    """Which of a `BookingFilter`'s filters are set."""

    member: bool
    team: bool
    desk: bool
    statuses: int
    ends_after: bool
    starts_before: bool


@functools.cache
def bound_conditions(shape: FilterShape) -> tuple[ColumnElement[bool], ...]:
    """The WHERE clauses of a booking listing of this shape, with named parameters (`BookingFilter.values`):
    built once per shape, so that a listing's statement can be compiled and prepared once."""
    clauses: list[ColumnElement[bool]] = [Booking.organisation_id == bindparam("organisation_id")]
    if shape.member:
        clauses.append(Booking.member_id == bindparam("member_id"))
    if shape.team:
        clauses.append(
            exists().where(
                TeamMembership.team_id == bindparam("team_id"), TeamMembership.member_id == Booking.member_id
            )
        )
    if shape.desk:
        clauses.append(Booking.desk_id == bindparam("desk_id"))
    if shape.statuses:
        clauses.append(Booking.status.in_([bindparam(f"status_{index}") for index in range(shape.statuses)]))
    if shape.ends_after:
        clauses.append(Booking.end_at > bindparam("ends_after"))
    if shape.starts_before:
        clauses.append(Booking.start_at < bindparam("starts_before"))
    return tuple(clauses)


Query = TypeVar("Query", bound=Select[*tuple[Any, ...]])


def filtered(query: Query, organisation_id: int, where: BookingFilter) -> Query:
    """`query` narrowed to the organisation's bookings that match `where`, its values bound."""
    return query.where(*bound_conditions(where.shape())).params(where.values(organisation_id))


def select_bookings(organisation_id: int, where: BookingFilter) -> Select[Booking]:
    """The bookings of an organisation matching `where`, unordered."""
    return filtered(select(Booking), organisation_id, where)

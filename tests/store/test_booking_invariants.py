"""The database itself, with no service in front, refuses bookings that break the invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Booking, BookingStatus
from store.models.booking import DESK_OVERLAP, MEMBER_OVERLAP
from tests.conftest import Org
from tests.store.conftest import hours, make_desk

START = datetime(2031, 3, 4, 9, tzinfo=UTC)
END = START + hours(8)


def _insert(
    factory: sessionmaker[Session],
    org: Org,
    start: datetime,
    end: datetime,
    *,
    desk_id: int | None = None,
    who: str = "member",
    status: BookingStatus = BookingStatus.BOOKED,
) -> int:
    with transaction(factory) as session:
        booking = Booking(
            organisation_id=org.organisation.id,
            member_id=getattr(org, who).id,
            desk_id=desk_id,
            start_at=start,
            end_at=end,
            status=status,
        )
        session.add(booking)
        session.flush()
        return booking.id


def _set(factory: sessionmaker[Session], booking_id: int, **values: Any) -> None:
    with transaction(factory) as session:
        session.execute(update(Booking).where(Booking.id == booking_id).values(**values))


@pytest.mark.parametrize("length", [hours(0), hours(-1)])
def test_end_must_follow_start(session_factory: sessionmaker[Session], acme: Org, length: timedelta) -> None:
    with pytest.raises(IntegrityError, match="end_after_start"):
        _insert(session_factory, acme, START, START + length)


def test_update_cannot_put_end_before_start(session_factory: sessionmaker[Session], acme: Org) -> None:
    booking_id = _insert(session_factory, acme, START, END)
    with pytest.raises(IntegrityError, match="end_after_start"):
        _set(session_factory, booking_id, end_at=START - hours(1))


def test_overlapping_live_bookings_on_a_desk_are_refused(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    _insert(session_factory, acme, START, END, desk_id=desk)
    for status in (BookingStatus.BOOKED, BookingStatus.CHECKED_IN):
        with pytest.raises(IntegrityError, match=DESK_OVERLAP):
            _insert(session_factory, acme, START + hours(1), START + hours(2), desk_id=desk, who="admin", status=status)


def test_overlapping_live_bookings_of_a_member_are_refused(session_factory: sessionmaker[Session], acme: Org) -> None:
    first, second = make_desk(session_factory, acme, "1"), make_desk(session_factory, acme, "2")
    _insert(session_factory, acme, START, END, desk_id=first, status=BookingStatus.CHECKED_IN)
    for desk in (second, None):
        with pytest.raises(IntegrityError, match=MEMBER_OVERLAP):
            _insert(session_factory, acme, START - hours(1), START + hours(1), desk_id=desk)


def test_history_does_not_block(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    for status in (BookingStatus.CANCELLED, BookingStatus.CHECKED_OUT, BookingStatus.COMPLETED):
        _insert(session_factory, acme, START, END, desk_id=desk, status=status)
    _insert(session_factory, acme, START, END, desk_id=desk)


def test_touching_intervals_are_allowed(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    _insert(session_factory, acme, START, END, desk_id=desk)
    _insert(session_factory, acme, END, END + hours(1), desk_id=desk)
    _insert(session_factory, acme, START - hours(1), START, desk_id=desk, who="admin")


def test_moving_into_a_taken_slot_is_refused(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    _insert(session_factory, acme, START, END, desk_id=desk, who="admin")
    later = _insert(session_factory, acme, END, END + hours(1), desk_id=desk)
    with pytest.raises(IntegrityError, match=DESK_OVERLAP):
        _set(session_factory, later, start_at=END - hours(1))


def test_moving_onto_a_taken_desk_is_refused(session_factory: sessionmaker[Session], acme: Org) -> None:
    first, second = make_desk(session_factory, acme, "1"), make_desk(session_factory, acme, "2")
    _insert(session_factory, acme, START, END, desk_id=first, who="admin")
    mine = _insert(session_factory, acme, START, END, desk_id=second)
    with pytest.raises(IntegrityError, match=DESK_OVERLAP):
        _set(session_factory, mine, desk_id=first)


def test_reviving_a_cancelled_booking_into_a_clash_is_refused(
    session_factory: sessionmaker[Session], acme: Org
) -> None:
    desk = make_desk(session_factory, acme)
    cancelled = _insert(session_factory, acme, START, END, desk_id=desk, status=BookingStatus.CANCELLED)
    _insert(session_factory, acme, START, END, desk_id=desk, who="admin")
    with pytest.raises(IntegrityError, match=DESK_OVERLAP):
        _set(session_factory, cancelled, status=BookingStatus.BOOKED)


def test_a_booking_may_be_moved_within_its_own_slot(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    booking_id = _insert(session_factory, acme, START, END, desk_id=desk)
    _set(session_factory, booking_id, start_at=START + hours(1), end_at=END + hours(1))

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.errors import Conflict, Invalid, NotAllowed, NotFound
from store.models import BookingStatus
from store.services import bookings, desks, members, teams
from store.services.bookings import BookingFilter
from tests.conftest import Org, make_org
from tests.store.conftest import Outbox, book, hours, load_booking, make_desk, member_in, refused

START = datetime(2031, 3, 4, 9, tzinfo=UTC)
END = START + hours(8)


def _create(session: Session, org: Org, start: datetime, end: datetime, **options: Any) -> None:
    bookings.create(session, member_in(session, org), start=start, end=end, **options)


def test_create_records_event_with_iso_times(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    desk = make_desk(session_factory, acme)
    outbox.skip()
    with transaction(session_factory) as session:
        booking = bookings.create(
            session, member_in(session, acme), start=START, end=END, desk_id=desk, details="Team day", reason="Other"
        )
    stored = load_booking(session_factory, booking.id)
    assert (stored.start_at, stored.end_at, stored.status) == (START, END, BookingStatus.BOOKED)
    assert (stored.details, stored.reason, stored.source, stored.desk_id) == ("Team day", "Other", "api", desk)
    assert outbox.only("booking.created") == {
        "booking_id": booking.id,
        "member_id": acme.member.id,
        "desk_id": desk,
        "start": "2031-03-04T09:00:00Z",
        "end": "2031-03-04T17:00:00Z",
        "status": "booked",
        "reason": "Other",
        "source": "api",
    }


def test_times_with_other_offsets_are_stored_in_utc(session_factory: sessionmaker[Session], acme: Org) -> None:
    paris = timezone(timedelta(hours=1))
    start = datetime(2031, 3, 4, 10, tzinfo=paris)
    booking_id = book(session_factory, acme, start, start + hours(8))
    stored = load_booking(session_factory, booking_id)
    assert (stored.start_at, stored.end_at) == (START, END)
    assert stored.start_at.utcoffset() == timedelta(0)


def test_naive_times_are_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    with refused(session_factory, Invalid) as attempt:
        _create(attempt.session, acme, START.replace(tzinfo=None), END.replace(tzinfo=None))
    assert attempt.error.field == "start"


@pytest.mark.parametrize("length", [timedelta(0), timedelta(hours=-1)])
def test_end_not_after_start_is_invalid(session_factory: sessionmaker[Session], acme: Org, length: timedelta) -> None:
    with refused(session_factory, Invalid) as attempt:
        _create(attempt.session, acme, START, START + length)
    assert attempt.error.field == "end"


def test_unknown_desk_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    with refused(session_factory, NotFound) as attempt:
        _create(attempt.session, acme, START, END, desk_id=desk + 100)
    assert attempt.error.field == "desk_id"


def test_desk_of_another_organisation_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    globex = make_org(session_factory, "Globex")
    foreign = make_desk(session_factory, globex)
    with refused(session_factory, NotFound) as attempt:
        _create(attempt.session, acme, START, END, desk_id=foreign)
    assert attempt.error.field == "desk_id"


def test_inactive_desk_cannot_be_booked(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    with transaction(session_factory) as session:
        desks.update(session, desks.get(session, acme.organisation.id, desk), active=False)
    with refused(session_factory, NotAllowed) as attempt:
        _create(attempt.session, acme, START, END, desk_id=desk)
    assert attempt.error.field == "desk_id"


def test_invited_member_cannot_book(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        members.invite(session, acme.organisation.id, "new@acme.example")
    with refused(session_factory, NotAllowed) as attempt:
        invited = members.get_by_email(attempt.session, acme.organisation.id, "new@acme.example")
        bookings.create(attempt.session, invited, start=START, end=END)
    assert attempt.error.field == "member_id"


def test_taken_desk_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    book(session_factory, acme, START, END, desk_id=desk, who="admin")
    with refused(session_factory, Conflict) as attempt:
        _create(attempt.session, acme, START + hours(7), END + hours(1), desk_id=desk)
    assert attempt.error.code == "desk_unavailable"


def test_busy_member_conflicts_with_or_without_desk(session_factory: sessionmaker[Session], acme: Org) -> None:
    first, second = make_desk(session_factory, acme, "1"), make_desk(session_factory, acme, "2")
    book(session_factory, acme, START, END, desk_id=first)
    for desk in (second, None):
        with refused(session_factory, Conflict) as attempt:
            _create(attempt.session, acme, START - hours(1), START + hours(1), desk_id=desk)
        assert attempt.error.code == "member_busy"


def test_deskless_bookings_of_different_members_may_overlap(session_factory: sessionmaker[Session], acme: Org) -> None:
    book(session_factory, acme, START, END)
    book(session_factory, acme, START, END, who="admin")


def test_touching_bookings_are_allowed(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    book(session_factory, acme, START, END, desk_id=desk)
    book(session_factory, acme, END, END + hours(2), desk_id=desk)
    book(session_factory, acme, START - hours(2), START, desk_id=desk, who="admin")


def test_cancelled_booking_frees_desk_and_member(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    booking_id = book(session_factory, acme, START, END, desk_id=desk)
    with transaction(session_factory) as session:
        bookings.cancel(session, bookings.get(session, acme.organisation.id, booking_id))
    book(session_factory, acme, START, END, desk_id=desk, who="admin")
    book(session_factory, acme, START, END)


def test_checked_out_booking_frees_the_desk(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    booking_id = book(session_factory, acme, START, END, desk_id=desk)
    with transaction(session_factory) as session:
        booking = bookings.get(session, acme.organisation.id, booking_id)
        bookings.check_in(session, booking, now=START)
        bookings.check_out(session, booking, now=START + hours(2))
    book(session_factory, acme, START + hours(3), END, desk_id=desk, who="admin")


def test_get_booking_of_another_organisation_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    globex = make_org(session_factory, "Globex")
    booking_id = book(session_factory, acme, START, END)
    with refused(session_factory, NotFound) as attempt:
        bookings.get(attempt.session, globex.organisation.id, booking_id)


def test_update_moves_booking_and_records_changes(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    first, second = make_desk(session_factory, acme, "1"), make_desk(session_factory, acme, "2")
    booking_id = book(session_factory, acme, START, END, desk_id=first)
    outbox.skip()
    with transaction(session_factory) as session:
        booking = bookings.get(session, acme.organisation.id, booking_id)
        bookings.update(session, booking, start=START + hours(1), desk_id=second, details="moved")
    stored = load_booking(session_factory, booking_id)
    assert (stored.start_at, stored.end_at, stored.desk_id, stored.details) == (START + hours(1), END, second, "moved")
    data = outbox.only("booking.updated")
    assert data["changes"] == {"start": "2031-03-04T10:00:00Z", "desk_id": second, "details": "moved"}
    assert (data["booking_id"], data["desk_id"], data["start"]) == (booking_id, second, "2031-03-04T10:00:00Z")


def test_update_can_drop_the_desk(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    desk = make_desk(session_factory, acme)
    booking_id = book(session_factory, acme, START, END, desk_id=desk)
    outbox.skip()
    with transaction(session_factory) as session:
        bookings.update(session, bookings.get(session, acme.organisation.id, booking_id), desk_id=None)
    assert load_booking(session_factory, booking_id).desk_id is None
    assert outbox.only("booking.updated")["changes"] == {"desk_id": None}


def test_update_without_change_records_nothing(
    session_factory: sessionmaker[Session], acme: Org, outbox: Outbox
) -> None:
    booking_id = book(session_factory, acme, START, END)
    outbox.skip()
    with transaction(session_factory) as session:
        booking = bookings.get(session, acme.organisation.id, booking_id)
        bookings.update(session, booking, start=START, end=END, desk_id=None, details="", reason="WFO")
    assert outbox.new() == []


def test_update_into_taken_desk_slot_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    book(session_factory, acme, START, END, desk_id=desk, who="admin")
    booking_id = book(session_factory, acme, END, END + hours(2), desk_id=desk)
    with refused(session_factory, Conflict) as attempt:
        booking = bookings.get(attempt.session, acme.organisation.id, booking_id)
        bookings.update(attempt.session, booking, start=END - hours(1))
    assert attempt.error.code == "desk_unavailable"


def test_update_onto_taken_desk_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    first, second = make_desk(session_factory, acme, "1"), make_desk(session_factory, acme, "2")
    book(session_factory, acme, START, END, desk_id=first, who="admin")
    booking_id = book(session_factory, acme, START, END, desk_id=second)
    with refused(session_factory, Conflict) as attempt:
        bookings.update(attempt.session, bookings.get(attempt.session, acme.organisation.id, booking_id), desk_id=first)
    assert attempt.error.code == "desk_unavailable"


def test_update_into_own_other_booking_conflicts(session_factory: sessionmaker[Session], acme: Org) -> None:
    book(session_factory, acme, START, END)
    booking_id = book(session_factory, acme, END + hours(1), END + hours(2))
    with refused(session_factory, Conflict) as attempt:
        booking = bookings.get(attempt.session, acme.organisation.id, booking_id)
        bookings.update(attempt.session, booking, start=END - hours(1))
    assert attempt.error.code == "member_busy"


def test_update_with_end_before_start_is_invalid(session_factory: sessionmaker[Session], acme: Org) -> None:
    booking_id = book(session_factory, acme, START, END)
    with refused(session_factory, Invalid) as attempt:
        bookings.update(attempt.session, bookings.get(attempt.session, acme.organisation.id, booking_id), end=START)
    assert attempt.error.field == "end"


def test_update_to_unknown_desk_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    booking_id = book(session_factory, acme, START, END)
    with refused(session_factory, NotFound) as attempt:
        bookings.update(attempt.session, bookings.get(attempt.session, acme.organisation.id, booking_id), desk_id=999)
    assert attempt.error.field == "desk_id"


def test_cancelled_booking_cannot_be_changed(session_factory: sessionmaker[Session], acme: Org) -> None:
    booking_id = book(session_factory, acme, START, END)
    with transaction(session_factory) as session:
        bookings.cancel(session, bookings.get(session, acme.organisation.id, booking_id))
    with refused(session_factory, NotAllowed) as attempt:
        booking = bookings.get(attempt.session, acme.organisation.id, booking_id)
        bookings.update(attempt.session, booking, details="again")
    with refused(session_factory, NotAllowed) as attempt:
        bookings.cancel(attempt.session, bookings.get(attempt.session, acme.organisation.id, booking_id))


def test_cancel_records_reason(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    booking_id = book(session_factory, acme, START, END)
    outbox.skip()
    with transaction(session_factory) as session:
        bookings.cancel(session, bookings.get(session, acme.organisation.id, booking_id), reason="sick")
    stored = load_booking(session_factory, booking_id)
    assert (stored.status, stored.cancellation_reason) == (BookingStatus.CANCELLED, "sick")
    assert stored.cancelled_at is not None
    data = outbox.only("booking.cancelled")
    assert (data["booking_id"], data["status"], data["reason"]) == (booking_id, "cancelled", "sick")


def test_check_in_window(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    booking_id = book(session_factory, acme, START, END)
    outbox.skip()
    for too_early_or_late in (START - timedelta(minutes=31), END):
        with refused(session_factory, NotAllowed) as attempt:
            booking = bookings.get(attempt.session, acme.organisation.id, booking_id)
            bookings.check_in(attempt.session, booking, now=too_early_or_late)
    opens = START - timedelta(minutes=30)
    with transaction(session_factory) as session:
        bookings.check_in(session, bookings.get(session, acme.organisation.id, booking_id), now=opens)
    stored = load_booking(session_factory, booking_id)
    assert (stored.status, stored.checked_in_at) == (BookingStatus.CHECKED_IN, opens)
    assert outbox.only("booking.checked_in")["status"] == "checked_in"


def test_check_in_twice_is_not_allowed(session_factory: sessionmaker[Session], acme: Org) -> None:
    booking_id = book(session_factory, acme, START, END)
    with transaction(session_factory) as session:
        bookings.check_in(session, bookings.get(session, acme.organisation.id, booking_id), now=START)
    with refused(session_factory, NotAllowed) as attempt:
        booking = bookings.get(attempt.session, acme.organisation.id, booking_id)
        bookings.check_in(attempt.session, booking, now=START)


def test_check_out(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    booking_id = book(session_factory, acme, START, END)
    with transaction(session_factory) as session:
        bookings.check_in(session, bookings.get(session, acme.organisation.id, booking_id), now=START)
    outbox.skip()
    with transaction(session_factory) as session:
        booking = bookings.get(session, acme.organisation.id, booking_id)
        bookings.check_out(session, booking, now=START + hours(4))
    stored = load_booking(session_factory, booking_id)
    assert (stored.status, stored.checked_out_at) == (BookingStatus.CHECKED_OUT, START + hours(4))
    assert outbox.only("booking.checked_out")["status"] == "checked_out"


def test_check_out_without_check_in_is_not_allowed(session_factory: sessionmaker[Session], acme: Org) -> None:
    booking_id = book(session_factory, acme, START, END)
    with refused(session_factory, NotAllowed) as attempt:
        bookings.check_out(attempt.session, bookings.get(attempt.session, acme.organisation.id, booking_id))


def test_select_bookings_filters(session_factory: sessionmaker[Session], acme: Org) -> None:
    desk = make_desk(session_factory, acme)
    mine = book(session_factory, acme, START, END, desk_id=desk)
    tomorrow = book(session_factory, acme, START + hours(24), END + hours(24))
    admins = book(session_factory, acme, START, END, who="admin")
    with transaction(session_factory) as session:
        bookings.cancel(session, bookings.get(session, acme.organisation.id, tomorrow))
        team = teams.create(session, acme.organisation.id, "Blue")
        teams.add_member(session, team, member_in(session, acme, "admin"))
        team_id = team.id
    make_org(session_factory, "Globex")

    def ids(where: BookingFilter) -> list[int]:
        with session_factory() as session:
            query = bookings.select_bookings(acme.organisation.id, where)
            return sorted(booking.id for booking in session.scalars(query))

    assert ids(BookingFilter()) == [mine, tomorrow, admins]
    assert ids(BookingFilter(member_id=acme.member.id)) == [mine, tomorrow]
    assert ids(BookingFilter(team_id=team_id)) == [admins]
    assert ids(BookingFilter(desk_id=desk)) == [mine]
    assert ids(BookingFilter(statuses=[BookingStatus.CANCELLED])) == [tomorrow]
    assert ids(BookingFilter(ends_after=END)) == [tomorrow]
    assert ids(BookingFilter(starts_before=START)) == []
    assert ids(BookingFilter(ends_after=START, starts_before=START + hours(1))) == [mine, admins]


def test_a_status_asked_for_twice_makes_no_new_shape() -> None:
    once = BookingFilter(statuses=[BookingStatus.BOOKED, BookingStatus.CANCELLED])
    often = BookingFilter(statuses=[BookingStatus.BOOKED, BookingStatus.CANCELLED, BookingStatus.BOOKED] * 50)

    assert often.shape() == once.shape()
    assert (
        often.values(1)
        == once.values(1)
        == {
            "organisation_id": 1,
            "status_0": BookingStatus.BOOKED,
            "status_1": BookingStatus.CANCELLED,
        }
    )

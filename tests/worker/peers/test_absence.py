"""Peer platforms' time off releases desks (issue 16, item 6) when the organisation's `release_on_absence`
is on: When I Work's approved time off and Resource Guru's downtime, through the real sync against the
fakes, cancel the bookings within the whole days they cover (a shift on such a day too) and no other."""

from __future__ import annotations

from store.db import transaction
from store.models import Booking, BookingStatus, ConnectionKind, ConnectionStatus, Organisation
from store.services import bookings, members, organisations
from tests.fakes.resourceguru import FakeResourceGuru
from tests.fakes.wheniwork import FakeWhenIWork
from tests.worker.peers.conftest import World, today_at
from tests.worker.peers.test_resourceguru import credentials
from tests.worker.peers.test_wheniwork import CREDENTIALS


def release_on(world: World) -> None:
    with transaction(world.factory) as session:
        organisations.update_settings(
            session, session.get_one(Organisation, world.organisation_id), release_on_absence=True
        )


def book(world: World, email: str, day: int) -> int:
    with transaction(world.factory) as session:
        member = members.get_by_email(session, world.organisation_id, email)
        return bookings.create(session, member, start=today_at(9, day), end=today_at(17, day)).id


def status(world: World, booking_id: int) -> tuple[BookingStatus, str | None]:
    with world.factory() as session:
        booking = session.get_one(Booking, booking_id)
        return booking.status, booking.cancellation_reason


def test_when_i_work_time_off_releases_the_days_it_covers(world: World, wheniwork: FakeWhenIWork) -> None:
    wheniwork.add_login("boss@example.com", "pw", user_id=1)
    wheniwork.add_location(136, "Downtown")
    wheniwork.add_user(1, "Goldie", "Wilson", "goldie@example.com", role=2, locations=(136,))
    connection_id = world.connect(ConnectionKind.WHENIWORK, {}, CREDENTIALS)
    assert world.sync(connection_id).status is ConnectionStatus.ACTIVE
    release_on(world)
    covered, after = book(world, "goldie@example.com", 3), book(world, "goldie@example.com", 5)
    wheniwork.add_shift(12, user_id=1, location_id=136, start=today_at(9, 4), end=today_at(17, 4))
    # Days 3 and 4, midnight to midnight in the account's zone (naive: local), as When I Work writes whole days.
    start, end = today_at(0, 3).replace(tzinfo=None), today_at(0, 5).replace(tzinfo=None)
    wheniwork.add_request(54, user_id=1, status=2, start=start, end=end)

    connection = world.sync(connection_id)

    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert status(world, covered) == (BookingStatus.CANCELLED, "out_of_office")
    assert status(world, after) == (BookingStatus.BOOKED, None)
    [shift] = [booking for booking in world.bookings() if booking.reason == "shift"]
    assert (shift.status, shift.cancellation_reason) == (BookingStatus.CANCELLED, "out_of_office")


def test_resource_guru_downtime_releases_the_days_it_covers(world: World, resourceguru: FakeResourceGuru) -> None:
    ada = resourceguru.add_resource("Ada", "Lovelace", "ada@example.com")
    connection_id = world.connect(
        ConnectionKind.RESOURCEGURU, {"account": resourceguru.account}, credentials(resourceguru)
    )
    assert world.sync(connection_id).status is ConnectionStatus.ACTIVE
    release_on(world)
    covered, before = book(world, "ada@example.com", 3), book(world, "ada@example.com", 2)
    half_day = book(world, "ada@example.com", 6)
    day = today_at(0, 3).date().isoformat()
    resourceguru.add_downtime([ada["id"]], day, day)  # all of day 3
    afternoon = today_at(0, 6).date().isoformat()
    resourceguru.add_downtime([ada["id"]], afternoon, afternoon, start_time=780, end_time=1020)  # 13:00-17:00

    assert world.sync(connection_id).status is ConnectionStatus.ACTIVE

    assert status(world, covered) == (BookingStatus.CANCELLED, "out_of_office")
    assert status(world, before) == (BookingStatus.BOOKED, None)
    assert status(world, half_day) == (BookingStatus.BOOKED, None)

"""When I Work through the worker: users become members, shifts bookings (reason shift), time off out of office."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.db import transaction
from store.models import Booking, BookingStatus, Connection, ConnectionKind, ConnectionStatus
from store.services import bookings, connections
from tests.fakes.wheniwork import DEVELOPER_KEY, FakeWhenIWork
from tests.worker.peers.conftest import World, today_at

CREDENTIALS = {"developer_key": DEVELOPER_KEY, "username": "boss@example.com", "password": "pw"}


def _connect(world: World, fake: FakeWhenIWork) -> int:
    fake.add_login("boss@example.com", "pw", user_id=1)
    fake.add_location(136, "Downtown")
    fake.add_user(1, "Goldie", "Wilson", "goldie@example.com", role=2, locations=(136,))
    fake.add_user(2, "Marty", "McFly", "marty@example.com", locations=(136,))
    fake.add_shift(10, user_id=2, location_id=136, start=today_at(9, 1), end=today_at(17, 1))
    fake.add_shift(11, user_id=0, location_id=136, start=today_at(9, 2), end=today_at(17, 2))  # open: skipped
    fake.add_request(54, user_id=1, status=2, start=today_at(0, 3), end=today_at(0, 5))
    return world.connect(ConnectionKind.WHENIWORK, {}, CREDENTIALS)


def test_first_sync_brings_people_shifts_and_time_off(world: World, wheniwork: FakeWhenIWork) -> None:
    connection_id = _connect(world, wheniwork)
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert world.members() == {"goldie@example.com": "active", "marty@example.com": "active"}
    events = world.events()
    assert set(events) == {"shift:10", "timeoff:54"}
    assert events["timeoff:54"].show_as == "oof"
    assert events["timeoff:54"].booking_id is None
    (booking,) = world.bookings()
    assert (booking.reason, booking.status, booking.source) == ("shift", BookingStatus.BOOKED, "calendar")
    assert booking.start_at == today_at(9, 1)
    assert events["shift:10"].booking_id == booking.id
    assert "booking.created" in world.types()


def test_a_moved_shift_moves_its_booking_and_a_deleted_one_cancels_it(world: World, wheniwork: FakeWhenIWork) -> None:
    connection_id = _connect(world, wheniwork)
    world.sync(connection_id)
    wheniwork.update_shift(10, start_time=today_at(10, 1))
    world.sync(connection_id)
    (booking,) = world.bookings()
    assert booking.start_at == today_at(10, 1)
    assert booking.status is BookingStatus.BOOKED
    del wheniwork.shifts[10]
    world.sync(connection_id)
    (booking,) = world.bookings()
    assert booking.status is BookingStatus.CANCELLED
    assert set(world.events()) == {"timeoff:54"}


def test_a_user_gone_from_when_i_work_is_removed(world: World, wheniwork: FakeWhenIWork) -> None:
    connection_id = _connect(world, wheniwork)
    world.sync(connection_id)
    del wheniwork.users[2]
    del wheniwork.shifts[10]
    world.sync(connection_id)
    assert world.members()["marty@example.com"] == "removed"


def test_an_expired_token_logs_in_again(world: World, wheniwork: FakeWhenIWork) -> None:
    connection_id = _connect(world, wheniwork)
    world.sync(connection_id)
    wheniwork.expire_tokens()
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error


def test_wrong_credentials_need_an_admin(world: World, wheniwork: FakeWhenIWork) -> None:
    wheniwork.add_login("boss@example.com", "other", user_id=1)
    connection_id = world.connect(ConnectionKind.WHENIWORK, {}, CREDENTIALS)
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTION_REQUIRED
    assert connection.last_error
    assert "pw" not in connection.last_error
    assert DEVELOPER_KEY not in connection.last_error
    assert world.members() == {}


def test_throttling_is_waited_out(world: World, wheniwork: FakeWhenIWork) -> None:
    connection_id = _connect(world, wheniwork)
    wheniwork.throttle(1, retry_after="0")
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert any("throttled" in note for note in connection.last_notes)


def test_a_malformed_shift_fails_the_sync_with_nothing_of_the_events_applied(
    world: World, wheniwork: FakeWhenIWork
) -> None:
    connection_id = _connect(world, wheniwork)
    world.sync(connection_id)
    wheniwork.update_shift(10, start_time=today_at(11, 1))
    wheniwork.shifts[11]["start_time"] = "yesterday-ish"
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ERROR
    assert "shift" in (connection.last_error or "")
    (booking,) = world.bookings()
    assert booking.start_at == today_at(9, 1)  # the move in the same listing was not applied either


def test_only_office_locations_book_and_a_change_applies_at_the_next_poll(
    world: World, wheniwork: FakeWhenIWork
) -> None:
    wheniwork.add_location(137, "Uptown")
    wheniwork.add_shift(12, user_id=1, location_id=137, start=today_at(9, 2), end=today_at(17, 2))
    connection_id = _connect(world, wheniwork)
    with transaction(world.factory) as session:
        row = session.get_one(Connection, connection_id)
        connections.update_connection(session, world.runtime.secret_box, row, settings={"office_locations": [136]})
    connection = world.sync(connection_id)
    assert "skipped 1 shifts at locations that are not offices" in connection.last_notes
    (booking,) = world.bookings()
    assert booking.start_at == today_at(9, 1)  # shift 10, at Downtown

    with transaction(world.factory) as session:
        row = session.get_one(Connection, connection_id)
        connections.update_connection(session, world.runtime.secret_box, row, settings={"office_locations": ["uptown"]})
    connection = world.sync(connection_id)
    assert "skipped 1 shifts at locations that are not offices" in connection.last_notes
    by_start = {booking.start_at: booking for booking in world.bookings()}
    assert by_start[today_at(9, 1)].status is BookingStatus.CANCELLED  # Downtown is no office any more
    assert by_start[today_at(9, 2)].status is BookingStatus.BOOKED
    assert "shift:10" not in world.events()

    with transaction(world.factory) as session:
        row = session.get_one(Connection, connection_id)
        connections.update_connection(session, world.runtime.secret_box, row, settings={"office_locations": None})
    world.sync(connection_id)  # every location again: shift 10 books anew
    live = [booking.start_at for booking in world.bookings() if booking.status is BookingStatus.BOOKED]
    assert sorted(live) == [today_at(9, 1), today_at(9, 2)]


def test_a_shift_checked_out_here_is_not_booked_again_when_the_shift_is_edited(
    world: World, wheniwork: FakeWhenIWork
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    wheniwork.add_login("boss@example.com", "pw", user_id=1)
    wheniwork.add_location(136, "Downtown")
    wheniwork.add_user(2, "Marty", "McFly", "marty@example.com", locations=(136,))
    wheniwork.add_shift(20, user_id=2, location_id=136, start=now - timedelta(hours=1), end=now + timedelta(hours=7))
    connection_id = world.connect(ConnectionKind.WHENIWORK, {}, CREDENTIALS)
    world.sync(connection_id)
    (booking,) = world.bookings()
    with transaction(world.factory) as session:
        mine = session.get_one(Booking, booking.id)
        bookings.check_in(session, mine)
        bookings.check_out(session, mine)
    wheniwork.update_shift(20, notes="bring the keys")  # updated_at moves, the times do not
    world.sync(connection_id)
    (after,) = world.bookings()
    assert (after.id, after.status) == (booking.id, BookingStatus.CHECKED_OUT)
    wheniwork.update_shift(20, start_time=now + timedelta(hours=1))  # moved: a new slot is a new booking
    world.sync(connection_id)
    statuses = sorted(booking.status.value for booking in world.bookings())
    assert statuses == ["booked", "checked_out"]

"""Kadence through the worker: users become members, desk bookings bookings (reason WFO) on the desk they name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store.db import transaction
from store.models import Booking, BookingStatus, ConnectionKind, ConnectionStatus, Desk, Member, OutboxEvent
from store.services import bookings
from tests.fakes.kadence import FakeKadence
from tests.worker.peers.conftest import World, today_at


def _connect(world: World, fake: FakeKadence, *, import_desks: bool = True) -> tuple[int, str]:
    ada = fake.add_user("ada@example.com", "Ada", "Lovelace")
    fake.add_user("bob@example.com", "Bob", "Builder")
    desk = fake.add_space("Desk 01", building=fake.add_building("London"), floor="Floor 1")
    booking = fake.add_booking(ada, desk, today_at(8, 1), today_at(17, 1))
    settings = {"import_desks": import_desks}
    credentials = {"client_id": fake.client_id, "client_secret": fake.secret}
    return world.connect(ConnectionKind.KADENCE, settings, credentials), booking


def _desks(world: World) -> dict[str, int]:
    with world.factory() as session:
        return {row.label: row.id for row in session.scalars(select(Desk))}


def test_first_sync_imports_desks_and_books_the_desk_booked(world: World, kadence: FakeKadence) -> None:
    connection_id, _ = _connect(world, kadence)
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert world.members() == {"ada@example.com": "active", "bob@example.com": "active"}
    assert connection.last_counts["desks_imported"] == 1
    (booking,) = world.bookings()
    assert booking.reason == "WFO"
    assert booking.desk_id == _desks(world)["Desk 01"]
    assert world.sync(connection_id).last_counts["desks_imported"] == 0  # imported once


def test_desks_are_left_alone_unless_asked_for(world: World, kadence: FakeKadence) -> None:
    connection_id, _ = _connect(world, kadence, import_desks=False)
    world.sync(connection_id)
    assert _desks(world) == {}
    (booking,) = world.bookings()
    assert booking.desk_id is None


def test_a_cancelled_or_deleted_booking_cancels_ours(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid = _connect(world, kadence)
    world.sync(connection_id)
    kadence.cancel_booking(ulid)
    world.sync(connection_id)
    (booking,) = world.bookings()
    assert booking.status is BookingStatus.CANCELLED


def test_refused_credentials_need_an_admin(world: World, kadence: FakeKadence) -> None:
    kadence.add_user("ada@example.com")
    connection_id = world.connect(ConnectionKind.KADENCE, {}, {"client_id": kadence.client_id, "client_secret": "no"})
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTION_REQUIRED
    assert world.members() == {}


def test_a_malformed_booking_applies_nothing_of_the_events(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid = _connect(world, kadence)
    kadence.override("bookings", ulid, status="exploded")
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ERROR
    assert "status" in (connection.last_error or "")
    assert world.bookings() == []
    assert world.events() == {}


def test_throttling_is_waited_out_and_noted(world: World, kadence: FakeKadence) -> None:
    connection_id, _ = _connect(world, kadence)
    kadence.throttle(1, retry_after="0")
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert any("throttled" in note for note in connection.last_notes)
    assert len(world.bookings()) == 1


def test_each_sync_signs_in_afresh_after_tokens_expired(world: World, kadence: FakeKadence) -> None:
    connection_id, _ = _connect(world, kadence)
    world.sync(connection_id)
    kadence.expire_tokens()
    assert world.sync(connection_id).status is ConnectionStatus.ACTIVE


# --- attendance: Kadence's statuses on the booking ------------------------------------------------


def _now_booking(world: World, fake: FakeKadence) -> tuple[int, str, datetime]:
    """A connection whose one Kadence booking runs now (started an hour ago); its ULID and start."""
    ada = fake.add_user("ada@example.com", "Ada", "Lovelace")
    desk = fake.add_space("Desk 01", building=fake.add_building("London"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    ulid = fake.add_booking(ada, desk, start, start + timedelta(hours=8))
    credentials = {"client_id": fake.client_id, "client_secret": fake.secret}
    return world.connect(ConnectionKind.KADENCE, {}, credentials), ulid, start


def _events_of(world: World, booking_id: int) -> list[str]:
    with world.factory() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))
        return [row.type for row in rows if row.data.get("booking_id") == booking_id]


def test_a_check_in_and_out_in_kadence_is_mirrored_with_kadence_times(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid, start = _now_booking(world, kadence)
    world.sync(connection_id)
    kadence.check_in(ulid, start + timedelta(minutes=5))
    connection = world.sync(connection_id)
    assert connection.last_counts["events_checked_in"] == 1
    (booking,) = world.bookings()
    assert (booking.status, booking.checked_in_at) == (BookingStatus.CHECKED_IN, start + timedelta(minutes=5))

    kadence.check_out(ulid, start + timedelta(hours=3))
    connection = world.sync(connection_id)
    assert connection.last_counts["events_checked_out"] == 1
    (booking,) = world.bookings()
    assert (booking.status, booking.checked_out_at) == (BookingStatus.CHECKED_OUT, start + timedelta(hours=3))
    assert _events_of(world, booking.id) == ["booking.created", "booking.checked_in", "booking.checked_out"]


def test_a_checked_out_booking_completed_later_is_not_booked_again(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid, start = _now_booking(world, kadence)
    kadence.check_in(ulid, start)
    kadence.check_out(ulid, start + timedelta(hours=1))
    world.sync(connection_id)  # seen checked out at once: checked in, then out
    (booking,) = world.bookings()
    assert booking.status is BookingStatus.CHECKED_OUT
    kadence.complete(ulid)
    world.sync(connection_id)
    (again,) = world.bookings()  # the engine would otherwise book the free slot anew
    assert (again.id, again.status) == (booking.id, BookingStatus.CHECKED_OUT)
    assert world.events()[f"booking:{ulid}"].categories == ["kadence:completed"]
    assert _events_of(world, booking.id) == ["booking.created", "booking.checked_in", "booking.checked_out"]


def test_a_check_in_outside_the_stores_window_is_brought_inside_it(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid, start = _now_booking(world, kadence)
    kadence.check_in(ulid, start - timedelta(hours=2))  # Kadence's window is the building's to choose
    world.sync(connection_id)
    (booking,) = world.bookings()
    assert (booking.status, booking.checked_in_at) == (BookingStatus.CHECKED_IN, start - timedelta(minutes=30))


def test_a_check_in_without_its_date_is_dated_by_the_sync(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid, start = _now_booking(world, kadence)
    kadence.change_booking(ulid, status="checkedIn")  # no checkedInDate sent
    world.sync(connection_id)
    (booking,) = world.bookings()
    assert booking.status is BookingStatus.CHECKED_IN
    assert booking.checked_in_at is not None
    assert start < booking.checked_in_at <= datetime.now(UTC)


def test_completed_bookings_read_the_first_time_say_whether_their_person_came(
    world: World, kadence: FakeKadence
) -> None:
    ada = kadence.add_user("ada@example.com")
    desk = kadence.add_space("Desk 01", building=kadence.add_building("London"))
    came = kadence.add_booking(ada, desk, today_at(8, -1), today_at(12, -1))
    kadence.check_in(came, today_at(9, -1))
    kadence.check_out(came, today_at(11, -1))
    kadence.complete(came)
    kadence.add_booking(ada, desk, today_at(13, -1), today_at(17, -1), status="completed")  # never checked in
    credentials = {"client_id": kadence.client_id, "client_secret": kadence.secret}
    world.sync(world.connect(ConnectionKind.KADENCE, {}, credentials))
    by_slot = {booking.start_at: booking for booking in world.bookings()}
    attended = by_slot[today_at(8, -1)]
    assert (attended.status, attended.checked_in_at, attended.checked_out_at) == (
        BookingStatus.CHECKED_OUT,
        today_at(9, -1),
        today_at(11, -1),
    )
    assert by_slot[today_at(13, -1)].status is BookingStatus.BOOKED  # completed keeps it as it was


def test_no_check_in_and_cancelled_cancel_ours_with_kadences_reason(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid, start = _now_booking(world, kadence)
    other = kadence.add_booking(next(iter(kadence.users)), next(iter(kadence.spaces)), today_at(8, 2), today_at(17, 2))
    world.sync(connection_id)
    kadence.release(ulid, start + timedelta(minutes=30))
    kadence.cancel_booking(other)
    connection = world.sync(connection_id)
    assert connection.last_counts["events_cancelled"] == 2
    reasons = {booking.start_at: (booking.status, booking.cancellation_reason) for booking in world.bookings()}
    assert reasons == {
        start: (BookingStatus.CANCELLED, "kadence_no_check_in"),
        today_at(8, 2): (BookingStatus.CANCELLED, "kadence_cancelled"),
    }


def test_completed_keeps_a_booking_and_a_check_in_made_here_is_not_undone(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid, _ = _now_booking(world, kadence)
    world.sync(connection_id)
    (booking,) = world.bookings()
    with transaction(world.factory) as session:
        bookings.check_in(session, session.get_one(Booking, booking.id))  # at the desk, in deskbridge
    kadence.change_booking(ulid)  # an edit in Kadence: updatedAt moves, the status is still booked
    world.sync(connection_id)
    (booking,) = world.bookings()
    assert booking.status is BookingStatus.CHECKED_IN
    kadence.complete(ulid)
    world.sync(connection_id)
    (booking,) = world.bookings()
    assert booking.status is BookingStatus.CHECKED_IN


def test_a_check_in_of_a_booking_the_engine_refused_changes_nothing(world: World, kadence: FakeKadence) -> None:
    connection_id, ulid, start = _now_booking(world, kadence)
    world.sync(connection_id)  # ada is a member now
    with transaction(world.factory) as session:
        member = session.scalars(select(Member).where(Member.email == "ada@example.com")).one()
        (mine,) = session.scalars(select(Booking)).all()
        bookings.cancel(session, mine)
        bookings.create(session, member, start=start, end=start + timedelta(hours=8))  # booked by hand meanwhile
    kadence.check_in(ulid, start + timedelta(minutes=1))
    connection = world.sync(connection_id)
    assert connection.status is ConnectionStatus.ACTIVE, connection.last_error
    assert connection.last_counts["events_refused"] == 1
    assert connection.last_counts.get("events_checked_in", 0) == 0
    assert {booking.source: booking.status for booking in world.bookings()} == {
        "calendar": BookingStatus.CANCELLED,
        "api": BookingStatus.BOOKED,
    }

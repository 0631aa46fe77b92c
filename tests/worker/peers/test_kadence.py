"""Kadence through the worker: users become members, desk bookings bookings (reason WFO) on the desk they name."""

from __future__ import annotations

from sqlalchemy import select

from store.models import BookingStatus, ConnectionKind, ConnectionStatus, Desk
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

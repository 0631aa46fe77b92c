"""Migration 0010: bookings get a revision the database bumps on every change; the old SEQUENCE carries over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text, update

from store.db import make_session_factory, transaction
from store.migrate import upgrade
from store.models import Booking
from store.services import bookings, members, organisations
from tests.store.test_migrations import downgrade, empty, guards  # noqa: F401 (the fixture)


def test_existing_bookings_keep_the_sequence_they_showed_and_every_change_adds_one(empty: Engine) -> None:  # noqa: F811
    upgrade(empty)
    factory = make_session_factory(empty)
    start = datetime.now(UTC) + timedelta(days=1)
    with transaction(factory) as session:
        organisation = organisations.create(session, "Acme")
        member = members.add(session, organisation.id, "ada@acme.example")
        booking_id = bookings.create(session, member, start=start, end=start + timedelta(hours=2)).id
    guarded = guards(empty)
    downgrade(empty, "0009")
    made = datetime(2026, 1, 1, tzinfo=UTC)
    with empty.begin() as connection:
        connection.execute(
            text("UPDATE bookings SET created_at = :made, updated_at = :changed"),
            {"made": made, "changed": made + timedelta(hours=1)},
        )

    upgrade(empty)

    assert guards(empty) == guarded  # the overlap guards survive (no table copy on SQLite)
    with factory() as session:
        assert session.get_one(Booking, booking_id).revision == 3600
    with transaction(factory) as session:
        session.execute(update(Booking).where(Booking.id == booking_id).values(details="Moved"))
        session.get_one(Booking, booking_id).details = "Moved again"
    with factory() as session:
        assert session.get_one(Booking, booking_id).revision == 3602

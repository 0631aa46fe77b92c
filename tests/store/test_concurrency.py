"""Concurrent bookings of one slot: the database lets exactly one through, the rest get a clean Conflict."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from store.db import make_engine, make_session_factory, transaction
from store.errors import Conflict
from store.models import LIVE_STATUSES, Booking, OutboxEvent
from store.services import bookings, desks, members
from tests.conftest import Org, make_org
from tests.store.conftest import hours

RACERS = 20
START = datetime(2031, 3, 4, 9, tzinfo=UTC)
END = START + hours(8)


@pytest.fixture
def racing(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test database with a connection for every racer, so all really start together."""
    pooled = make_engine(engine.url.render_as_string(hide_password=False), pool_size=RACERS, max_overflow=0)
    if pooled.dialect.name == "sqlite":
        with pooled.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert pooled.url.database not in (None, "", ":memory:")
    yield make_session_factory(pooled)
    pooled.dispose()


def _race(factory: sessionmaker[Session], org: Org, member_ids: list[int], desk_ids: list[int]) -> list[str]:
    barrier = threading.Barrier(RACERS)

    def attempt(index: int) -> str:
        with factory() as session:
            member = members.get(session, org.organisation.id, member_ids[index])
            barrier.wait(timeout=60)
            try:
                bookings.create(session, member, start=START, end=END, desk_id=desk_ids[index])
                session.commit()
            except Conflict as conflict:
                session.rollback()
                return conflict.code
            return "booked"

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(attempt, range(RACERS)))


def _setup(factory: sessionmaker[Session]) -> tuple[Org, list[int], list[int]]:
    org = make_org(factory)
    with transaction(factory) as session:
        member_ids = [members.add(session, org.organisation.id, f"racer{n}@acme.example").id for n in range(RACERS)]
        desk_ids = [desks.create(session, org.organisation.id, f"D{n}").id for n in range(RACERS)]
    return org, member_ids, desk_ids


def _live_bookings(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Booking).where(Booking.status.in_(LIVE_STATUSES))) or 0


def _booking_events(factory: sessionmaker[Session], org: Org) -> list[int]:
    with factory() as session:
        seqs = session.scalars(select(OutboxEvent.seq).where(OutboxEvent.organisation_id == org.organisation.id))
        all_seqs = sorted(seqs)
        assert all_seqs == list(range(1, len(all_seqs) + 1))
        return list(
            session.scalars(
                select(OutboxEvent.seq).where(
                    OutboxEvent.organisation_id == org.organisation.id, OutboxEvent.type == "booking.created"
                )
            )
        )


def test_twenty_members_race_for_one_desk(racing: sessionmaker[Session]) -> None:
    org, member_ids, desk_ids = _setup(racing)
    outcomes = _race(racing, org, member_ids, [desk_ids[0]] * RACERS)
    assert Counter(outcomes) == {"booked": 1, "desk_unavailable": RACERS - 1}
    assert _live_bookings(racing) == 1
    assert len(_booking_events(racing, org)) == 1


def test_one_member_races_for_twenty_desks(racing: sessionmaker[Session]) -> None:
    org, member_ids, desk_ids = _setup(racing)
    outcomes = _race(racing, org, [member_ids[0]] * RACERS, desk_ids)
    assert Counter(outcomes) == {"booked": 1, "member_busy": RACERS - 1}
    assert _live_bookings(racing) == 1
    assert len(_booking_events(racing, org)) == 1

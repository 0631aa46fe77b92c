"""Reads on the event loop (store.reads): the rows SQLAlchemy would give, on both stores; and on
PostgreSQL, a pool that survives a read cut off, a connection the server ended (idle, or in the middle
of a read), and a new event loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import Booking, BookingStatus, Desk, Member, Role
from store.reads import PostgresReads, Reads, SessionReads, reads_for
from store.services import bookings, desks, tokens
from store.services.members import hash_secret
from tests.conftest import make_org

START = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
# Enum columns, a UTC time column, a scalar subquery, a bound time, and a constant list (an expanding IN).
BOOKINGS = (
    select(
        Booking.id,
        Booking.start_at,
        Booking.status,
        select(Desk.label).where(Desk.id == Booking.desk_id).scalar_subquery().label("label"),
        Member.role,
    )
    .join(Member, Member.id == Booking.member_id)
    .where(
        Booking.organisation_id == bindparam("organisation_id"),
        Booking.end_at > bindparam("after"),
        Booking.status.in_([BookingStatus.BOOKED, BookingStatus.CANCELLED]),
    )
    .order_by(Booking.start_at)
)


def _seed(factory: sessionmaker[Session]) -> tuple[int, list[int]]:
    org = make_org(factory)
    with transaction(factory) as session:
        desk = desks.create(session, org.organisation.id, "D-1")
        member = session.get_one(Member, org.member.id)
        made = [
            bookings.create(session, member, start=start, end=start + timedelta(hours=8), desk_id=desk.id)
            for start in (START + timedelta(days=day) for day in range(3))
        ]
        bookings.cancel(session, made[1], reason="test")
        return org.organisation.id, [booking.id for booking in made]


def test_reads_give_the_rows_sqlalchemy_gives(session_factory: sessionmaker[Session]) -> None:
    organisation_id, ids = _seed(session_factory)
    params = {"organisation_id": organisation_id, "after": START}
    with session_factory() as session:
        expected = [tuple(row) for row in session.execute(BOOKINGS, params)]

    async def read() -> list[object]:
        reads = reads_for(session_factory)
        try:
            return await reads.all(BOOKINGS, params)
        finally:
            await reads.close()

    rows = asyncio.run(read())

    assert [tuple(row) for row in rows] == expected
    assert [(row.id, row.status, row.label, row.role) for row in rows] == [
        (ids[0], BookingStatus.BOOKED, "D-1", Role.MEMBER),
        (ids[1], BookingStatus.CANCELLED, "D-1", Role.MEMBER),
        (ids[2], BookingStatus.BOOKED, "D-1", Role.MEMBER),
    ]
    assert rows[0].start_at == START
    assert all(row.start_at.tzinfo is UTC for row in rows)  # aware, in UTC, as UTCDateTime gives them


def test_a_token_authenticates_through_reads_as_through_a_session(session_factory: sessionmaker[Session]) -> None:
    org = make_org(session_factory)

    async def read(secret: str) -> object:
        reads = reads_for(session_factory)
        try:
            return await reads.first(tokens.AUTHENTICATE, {"token_hash": hash_secret(secret)})
        finally:
            await reads.close()

    with session_factory() as session:
        assert tokens.caller_of(asyncio.run(read(org.admin_token))) == tokens.authenticate(session, org.admin_token)  # type: ignore[arg-type]
    assert asyncio.run(read("dsk_unknown")) is None


def test_the_store_chooses_its_reads(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    expected = PostgresReads if engine.dialect.name == "postgresql" else SessionReads
    assert isinstance(reads_for(session_factory), expected)


def _postgres_reads(engine: Engine) -> PostgresReads:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgresReads is PostgreSQL's")
    return PostgresReads.of(engine, size=2)


def _backends(engine: Engine, running: str = "") -> set[int]:
    """The reads' backends on this test's database (others' are not ours to end); only those running a
    statement that contains `running`, if given."""
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = 'deskbridge-api-reads'"
    query += " AND datname = current_database()"
    if running:
        query += " AND state = 'active' AND strpos(query, :running) > 0"
    with engine.connect() as connection:
        return {pid for (pid,) in connection.execute(text(query), {"running": running})}


def _terminate(engine: Engine, pids: set[int]) -> None:
    """End the backends `pids` as an operator would (pg_terminate_backend), waiting until they are gone."""
    with engine.connect() as connection:
        for pid in pids:
            connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})


def test_a_read_cut_off_leaves_no_busy_connection_behind(engine: Engine) -> None:
    reads = _postgres_reads(engine)
    backend = select(func.pg_backend_pid())

    async def scenario() -> tuple[int, int, int]:
        first = (await reads.first(backend, {}))[0]
        with pytest.raises(TimeoutError):  # the client went away in the middle of a read
            await asyncio.wait_for(reads.all(select(func.pg_sleep(0.5)), {}), timeout=0.1)
        after = (await reads.first(backend, {}))[0]
        again = (await reads.first(backend, {}))[0]
        await reads.close()
        return first, after, again

    first, after, again = asyncio.run(scenario())
    assert after != first  # the cut-off connection was not handed out again
    assert again == after  # and the new one is kept


def test_a_connection_the_server_ended_is_replaced_at_once(engine: Engine) -> None:
    reads = _postgres_reads(engine)
    one = select(func.count()).select_from(Member)

    async def scenario() -> int:
        await reads.first(one, {})  # a connection idle in the pool
        with engine.connect() as connection:  # the server ends it, as a restart would
            for pid in _backends(engine):
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        counted = await reads.first(one, {})
        await reads.close()
        return int(counted[0])

    assert asyncio.run(scenario()) == 0


def test_reads_follow_a_new_event_loop(engine: Engine) -> None:
    reads: Reads = _postgres_reads(engine)
    one = select(func.count()).select_from(Member)

    assert asyncio.run(reads.first(one, {}))[0] == 0
    assert asyncio.run(reads.first(one, {}))[0] == 0  # another loop: the first one's connection is let go
    asyncio.run(reads.close())


@pytest.mark.parametrize("turns", range(6))
def test_a_connection_the_server_ended_is_replaced_whenever_the_next_read_comes(engine: Engine, turns: int) -> None:
    # asyncpg learns of the end in steps as the loop turns (the server's word, then the close): each
    # step fails a read differently (InternalClientError once the word is in but not the close).
    reads = _postgres_reads(engine)
    one = select(func.count()).select_from(Member)

    async def scenario() -> int:
        await reads.first(one, {})
        _terminate(engine, _backends(engine))
        for _ in range(turns):
            await asyncio.sleep(0)
        counted = await reads.first(one, {})
        await reads.close()
        return int(counted[0])

    assert asyncio.run(scenario()) == 0


def test_a_read_the_server_ends_midway_is_read_again_on_a_new_connection(engine: Engine) -> None:
    reads = _postgres_reads(engine)
    slow = select(func.pg_sleep(0.3), func.pg_backend_pid())
    ended: set[int] = set()

    def end_the_read() -> None:
        while not ended:
            ended.update(_backends(engine, "pg_sleep"))
        _terminate(engine, ended)

    async def scenario() -> int:
        read = asyncio.ensure_future(reads.first(slow, {}))
        await asyncio.to_thread(end_the_read)
        row = await read
        await reads.close()
        return int(row[1])

    assert asyncio.run(scenario()) not in ended

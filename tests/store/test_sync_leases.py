"""The sync lifecycle connections and calendars share (store/services/sync_leases.py), run through each
store's own functions: asked for once, claimed by one sync at a time (racing claims too), finished, failed,
due again, and forgotten requests found."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import make_engine, make_session_factory, transaction
from store.models import Calendar, Connection, ConnectionKind, ConnectionStatus
from store.secret_box import SecretBox
from store.services import calendars, connections
from tests.conftest import Org

BOX = SecretBox([SecretBox.generate_key()])
RACERS = 8
ACTIVE, ERROR = ConnectionStatus.ACTIVE, ConnectionStatus.ERROR


@dataclass(frozen=True)
class Store:
    """One store's lifecycle functions, and a row of it to sync."""

    model: type[Connection] | type[Calendar]
    row_id: int
    lease: timedelta
    request: Callable[..., bool]
    claim: Callable[..., bool]
    forgotten: Callable[..., list[int]]
    due: Callable[..., list[int]]
    finish: Callable[[Session, Connection | Calendar], None]
    fail: Callable[[Session, Connection | Calendar, str, bool], None]


def _feed(factory: sessionmaker[Session], org: Org) -> tuple[int, int]:
    """An ICS feed connection and its one calendar."""
    with transaction(factory) as session:
        connection, _ = connections.create(
            session,
            BOX,
            org.organisation.id,
            ConnectionKind.ICS,
            "Rooms",
            credentials={"url": "https://x.example/a.ics"},
        )
        [calendar] = calendars.ensure(session, connection)
        return connection.id, calendar.id


def _connection_store(connection_id: int) -> Store:
    return Store(
        Connection,
        connection_id,
        connections.SYNC_LEASE,
        connections.request_sync,
        connections.claim,
        connections.forgotten_requests,
        lambda session, every, now: connections.due_for_sync(
            session, every=every, now=now, capability="reads_calendars"
        ),
        lambda session, row: connections.finish(session, row, counts={"read": 3}, notes=["n"], cursor="c2"),  # type: ignore[arg-type]
        lambda session, row, message, action: connections.fail(
            session,
            row,  # type: ignore[arg-type]
            message,
            action_required=action,
            notes=["why"],
        ),
    )


def _calendar_store(calendar_id: int) -> Store:
    return Store(
        Calendar,
        calendar_id,
        calendars.SYNC_LEASE,
        calendars.request_sync,
        calendars.claim,
        calendars.forgotten_requests,
        lambda session, every, now: calendars.due_for_sync(session, every=every, now=now),
        lambda session, row: calendars.finish(
            session,
            row,  # type: ignore[arg-type]
            cursor="c2",
            window_start=utcnow().date(),
            counts={"read": 3},
            notes=["n"],
        ),
        lambda session, row, message, action: calendars.fail(
            session,
            row,  # type: ignore[arg-type]
            message,
            action_required=action,
            notes=["why"],
        ),
    )


@pytest.fixture(params=["connection", "calendar"])
def store(request: pytest.FixtureRequest, session_factory: sessionmaker[Session], acme: Org) -> Store:
    connection_id, calendar_id = _feed(session_factory, acme)
    return _connection_store(connection_id) if request.param == "connection" else _calendar_store(calendar_id)


def _row(factory: sessionmaker[Session], store: Store) -> Connection | Calendar:
    with factory() as session:
        return session.get_one(store.model, store.row_id)


def test_a_burst_of_requests_asks_once_and_a_claim_clears_it(
    session_factory: sessionmaker[Session], store: Store
) -> None:
    with transaction(session_factory) as session:
        assert store.request(session, store.row_id)
        assert not store.request(session, store.row_id)  # already asked for: covered
    with transaction(session_factory) as session:
        assert store.claim(session, store.row_id)
        assert not store.claim(session, store.row_id)  # one sync at a time
    row = _row(session_factory, store)
    assert row.status is ConnectionStatus.SYNCING
    assert row.sync_requested_at is None
    assert row.sync_lease_until is not None
    with transaction(session_factory) as session:
        assert store.request(session, store.row_id)  # asked during the sync: for the next one


def test_a_lapsed_lease_can_be_claimed_again(session_factory: sessionmaker[Session], store: Store) -> None:
    start = utcnow()
    with transaction(session_factory) as session:
        assert store.claim(session, store.row_id, start)
        assert not store.claim(session, store.row_id, start + store.lease - timedelta(seconds=1))
        assert store.claim(session, store.row_id, start + store.lease + timedelta(seconds=1))  # the first crashed


def test_finish_keeps_the_cursor_and_lets_go(session_factory: sessionmaker[Session], store: Store) -> None:
    with transaction(session_factory) as session:
        store.claim(session, store.row_id)
        store.finish(session, session.get_one(store.model, store.row_id))
    row = _row(session_factory, store)
    assert (row.status, row.cursor, row.last_counts, row.last_notes) == (ACTIVE, "c2", {"read": 3}, ["n"])
    assert row.last_synced_at is not None
    assert (row.last_error, row.sync_lease_until) == (None, None)
    with transaction(session_factory) as session:
        assert store.claim(session, store.row_id)


@pytest.mark.parametrize(
    ("action", "status"), [(False, ConnectionStatus.ERROR), (True, ConnectionStatus.ACTION_REQUIRED)]
)
def test_fail_keeps_the_reason_and_the_cursor(
    session_factory: sessionmaker[Session], store: Store, action: bool, status: ConnectionStatus
) -> None:
    with transaction(session_factory) as session:
        store.claim(session, store.row_id)
        store.finish(session, session.get_one(store.model, store.row_id))
    with transaction(session_factory) as session:
        store.claim(session, store.row_id)
        store.fail(session, session.get_one(store.model, store.row_id), "the server said no", action)
    row = _row(session_factory, store)
    assert (row.status, row.last_error, row.cursor, row.last_notes) == (status, "the server said no", "c2", ["why"])
    assert row.sync_lease_until is None


def test_due_leaves_out_held_recent_and_waiting_for_an_admin(
    session_factory: sessionmaker[Session], store: Store
) -> None:
    every, now = timedelta(minutes=30), utcnow()
    with session_factory() as session:
        assert store.row_id in store.due(session, every, now)  # never synced
    with transaction(session_factory) as session:
        store.claim(session, store.row_id, now)
    with session_factory() as session:
        assert store.row_id not in store.due(session, every, now)  # a sync holds it
    with transaction(session_factory) as session:
        store.finish(session, session.get_one(store.model, store.row_id))
    with session_factory() as session:
        assert store.row_id not in store.due(session, every, now)  # synced just now
        assert store.row_id in store.due(session, every, now + every + timedelta(minutes=1))
    with transaction(session_factory) as session:
        store.fail(session, session.get_one(store.model, store.row_id), "credentials expired", True)
    with session_factory() as session:
        assert store.row_id not in store.due(session, every, now + every + timedelta(minutes=1))


def test_forgotten_requests_are_old_and_unclaimed(session_factory: sessionmaker[Session], store: Store) -> None:
    now = utcnow()
    with transaction(session_factory) as session:
        store.request(session, store.row_id, now - timedelta(minutes=10))
    with session_factory() as session:
        assert store.forgotten(session, older_than=timedelta(minutes=5), now=now) == [store.row_id]
        assert store.forgotten(session, older_than=timedelta(minutes=15), now=now) == []
    with transaction(session_factory) as session:  # a sync holds it although its request is old
        session.execute(
            update(store.model)
            .where(store.model.id == store.row_id)
            .values(sync_lease_until=now + timedelta(minutes=1))
        )
    with session_factory() as session:
        assert store.forgotten(session, older_than=timedelta(minutes=5), now=now) == []


@pytest.fixture
def racing(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions with a connection for every racer, so all really start together."""
    pooled = make_engine(engine.url.render_as_string(hide_password=False), pool_size=RACERS, max_overflow=0)
    yield make_session_factory(pooled)
    pooled.dispose()


def test_racing_claims_let_one_sync_through(racing: sessionmaker[Session], store: Store) -> None:
    barrier = threading.Barrier(RACERS)

    def attempt(_: int) -> bool:
        with racing() as session:
            barrier.wait(timeout=60)
            taken = store.claim(session, store.row_id)
            session.commit()
            return taken

    with ThreadPoolExecutor(RACERS) as pool:
        assert sorted(pool.map(attempt, range(RACERS))) == [False] * (RACERS - 1) + [True]


def test_racing_requests_enqueue_once(racing: sessionmaker[Session], store: Store) -> None:
    barrier = threading.Barrier(RACERS)

    def attempt(_: int) -> bool:
        with racing() as session:
            barrier.wait(timeout=60)
            asked = store.request(session, store.row_id)
            session.commit()
            return asked

    with ThreadPoolExecutor(RACERS) as pool:
        assert sorted(pool.map(attempt, range(RACERS))) == [False] * (RACERS - 1) + [True]

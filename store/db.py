"""Engines and sessions for SQLite (the embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from store import outbox


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for `url`, with SQLite set up for concurrent use (WAL, foreign keys, busy wait)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # As many pooled connections as an API process runs requests at once (its thread pool), so a
    # busy process does not open and close connections; recycled rather than pinged before each use.
    options.setdefault("pool_size", 20)
    options.setdefault("max_overflow", 20)
    options.setdefault("pool_recycle", 300)
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_session_factory(engine: Engine, listeners: Iterable[outbox.EventListener] = ()) -> sessionmaker[Session]:
    """Sessions whose commits write the outbox; `listeners` hear about events after commit."""
    factory = sessionmaker(engine, expire_on_commit=False)
    outbox.install(factory, listeners)
    return factory


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def one_statement(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for work that is one statement, which is a transaction by itself: on PostgreSQL it runs
    in autocommit (no BEGIN and COMMIT round trips, which cost as much as a small statement); elsewhere
    as `transaction`. The statement must record no event (the outbox writes them at commit)."""
    with factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            with session.begin():
                yield session
            return
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session

"""Reads on the event loop, for the API's busiest routes.

Those routes are reads whose cost was mostly the path around their query: a trip to the thread pool,
a session, and SQLAlchemy's execution of a statement it had already compiled. `Reads` runs such a
statement (a SQLAlchemy Core `Select`, so that the query has one definition) from a coroutine:

- on PostgreSQL, `PostgresReads` compiles it once for asyncpg and runs it on an asyncpg connection of
  its own small pool: no transaction (no BEGIN or ROLLBACK round trips), prepared on each connection at
  its first use and planned once there (generic plans), with SQLAlchemy's bind and result processing
  kept (UTC times, enums). asyncpg, not psycopg, because per query it costs the API process about half
  the CPU (measured: 0.09 against 0.17 ms for the listing's page);
- elsewhere (SQLite, the embedded store) `SessionReads` runs it on a store session in the thread pool,
  where a blocking driver belongs.

Rows come back as named tuples, in the statement's column order (a repeated column name gets `_N`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
import asyncpg
from sqlalchemy import Engine, Select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeEngine

from store.columns import UTCDateTime

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
# Connections each API process keeps for reads on the loop: its requests hold one only while their
# statements run, so a few serve many requests at once.
POOL_SIZE = 8
CONNECT_TIMEOUT_SECONDS = 5.0
# Generic plans: each statement is planned once per connection. PostgreSQL would otherwise plan these
# short index reads at every execution, which costs it more than running them.
SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan", "application_name": "deskbridge-api-reads"}

Processor = Callable[[Any], Any] | None
# What a read on a connection the server ended raises, by when asyncpg learns of it: a closed connection
# (InterfaceError, ConnectionDoesNotExistError, OSError), the server's word that it ends this backend
# (pg_terminate_backend: AdminShutdownError; a crash: CrashShutdownError), or, when that word came in while
# the connection was idle and the close not yet, a protocol still busy with it (InternalClientError).
LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    OSError,
)


class Reads(Protocol):
    """Runs read-only statements for coroutines."""

    async def all(self, statement: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> list[Any]:
        """Every row of `statement` with `params` bound."""

    async def first(self, statement: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> Any | None:
        """The first row of `statement` with `params` bound, or None."""

    async def close(self) -> None:
        """Let go of what the reads hold (connections)."""


class SessionReads:
    """Reads on the store's sessions, in the thread pool: any store, SQLite among them."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    async def all(self, statement: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> list[Any]:
        # AnyIO's worker threads, as the API's other routes use (asyncio's own pool has only cores + 4).
        return await anyio.to_thread.run_sync(self._run, statement, params)

    async def first(self, statement: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> Any | None:
        rows = await self.all(statement, params)
        return rows[0] if rows else None

    def _run(self, statement: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> list[Any]:
        with self._factory() as session:
            connection = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return list(connection.execute(statement, dict(params)).all())

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Prepared:
    """A statement compiled once for asyncpg: its SQL, where each value goes ($1, $2…) and how it is
    processed, the constants compiled into it, how each result column is processed, and the row type."""

    sql: str
    order: tuple[str, ...]
    constants: dict[str, Any]
    binds: dict[str, Processor]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, processor) of the columns that have one
    row: type[tuple[Any, ...]]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The values to send, in order: `params` processed as SQLAlchemy would, the constants between."""
        values = []
        for name in self.order:
            if name in self.constants:
                values.append(self.constants[name])
                continue
            value, process = params[name], self.binds.get(name)
            values.append(process(value) if process is not None and value is not None else value)
        return values

    def rows(self, raw: Iterable[Iterable[Any]]) -> list[Any]:
        """The driver's rows, processed as SQLAlchemy would, as named tuples."""
        make: Callable[[Iterable[Any]], Any] = self.row._make  # type: ignore[attr-defined]
        if not self.results:
            return [make(values) for values in raw]
        rows = []
        for record in raw:
            values = list(record)
            for index, process in self.results:
                if values[index] is not None:
                    values[index] = process(values[index])
            rows.append(make(values))
        return rows


@functools.cache
def prepare(statement: Select[*tuple[Any, ...]]) -> Prepared:
    """`statement` compiled for asyncpg (statements are module constants, so each is compiled once)."""
    compiled = statement.compile(dialect=_DIALECT)
    named = dict(compiled.binds)  # by the names the SQL uses
    unset = {
        key: None for key, bind in named.items() if bind.value is None and bind.callable is None and not bind.expanding
    }
    expanded = compiled.construct_expanded_state(unset)
    origin = {name: key for key, names in expanded.parameter_expansion.items() for name in names}
    constants = {}
    for name, value in expanded.parameters.items():
        if name in unset:
            continue
        process = named[origin.get(name, name)].type.bind_processor(_DIALECT)
        constants[name] = process(value) if process is not None and value is not None else value
    binds: dict[str, Processor] = {key: named[key].type.bind_processor(_DIALECT) for key in unset}
    columns = list(statement.selected_columns)
    processors = [_result_processor(column.type) for column in columns]
    results = tuple((index, process) for index, process in enumerate(processors) if process is not None)
    row = namedtuple("Row", [column.key or f"c{index}" for index, column in enumerate(columns)], rename=True)  # type: ignore[misc]
    order = tuple(expanded.positiontup or ())
    return Prepared(expanded.statement, order, constants, binds, results, row)


def _result_processor(column_type: TypeEngine[Any]) -> Processor:
    # asyncpg reads a `timestamptz` as an aware time in UTC already: what UTCDateTime would make of it, so a
    # page's times (five a booking) need no call each.
    if isinstance(column_type, UTCDateTime):
        return None
    return column_type.result_processor(_DIALECT, None)


class PostgresReads:
    """Reads on asyncpg connections of a small pool of its own (see the module's docstring).

    The pool belongs to one event loop, as a server process has; should the loop change (a test
    client that starts one per request), the idle connections are closed and new ones made.
    """

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self._dsn = dsn
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(size)

    @classmethod
    def of(cls, engine: Engine, size: int = POOL_SIZE) -> PostgresReads:
        """Reads on the database `engine` connects to, as the same user."""
        return cls(engine.url.set(drivername="postgresql").render_as_string(hide_password=False), size)

    async def all(self, statement: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> list[Any]:
        prepared = prepare(statement)
        arguments = prepared.arguments(params)
        self._follow_loop()
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._connect()
            try:
                return prepared.rows(await self._fetch(connection, prepared.sql, arguments))
            except LOST:
                # The server ended the connection, idle in the pool or in the middle of this read (a restart,
                # pg_terminate_backend): a read is safe to repeat, once, on a new connection.
                return prepared.rows(await self._fetch(await self._connect(), prepared.sql, arguments))

    async def first(self, statement: Select[*tuple[Any, ...]], params: Mapping[str, Any]) -> Any | None:
        rows = await self.all(statement, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        self._follow_loop()
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def _connect(self) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            self._dsn, timeout=CONNECT_TIMEOUT_SECONDS, server_settings=SERVER_SETTINGS
        )
        return connection

    async def _fetch(self, connection: asyncpg.Connection, sql: str, arguments: list[Any]) -> list[Any]:
        """The rows, the connection back in the pool; a connection whose read failed or was cut off (the
        client went away) may be busy or broken, so it is closed instead."""
        try:
            raw: list[Any] = await connection.fetch(sql, *arguments)
        except BaseException:
            connection.terminate()
            raise
        self._idle.append(connection)
        return raw

    def _follow_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        for connection in self._idle:
            with contextlib.suppress(RuntimeError):  # its loop is closed: its socket goes with the object
                connection.terminate()
        self._idle, self._loop, self._slots = [], loop, asyncio.Semaphore(self._size)


def reads_for(factory: sessionmaker[Session]) -> Reads:
    """The reads that suit the store `factory` opens sessions on."""
    engine = factory.kw["bind"]
    if isinstance(engine, Engine) and engine.dialect.name == "postgresql":
        return PostgresReads.of(engine)
    return SessionReads(factory)

"""Fills a PostgreSQL database with a large organisation, fast: COPY, not the ORM.

One organisation (API on) with 10,000 active members, each with API access and a token, 500 desks
and 1,000,000 bookings. The bookings keep every invariant the store enforces, so the database's own
constraints are rebuilt over them after the load and prove it:

- time is cut into half-day slots (08:00-12:00 and 13:00-17:00 UTC), 900 days back to 100 ahead;
- members are split into 20 groups of 500; slot `s` belongs to group `s % 20`, whose 500 members
  each book one of the 500 desks in it (a shuffled, one-to-one assignment). So a member holds one
  booking every 20 slots (100 in all, about 10 of them upcoming), never two at once, and no desk is
  held twice in a slot;
- past bookings are completed (some checked out or cancelled), upcoming ones booked (some cancelled).

Token secrets are derived from the member's number, so a loaded database can be reused as it is.
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

MEMBERS = 10_000
DESKS = 500
BOOKINGS_PER_MEMBER = 100
GROUPS = MEMBERS // DESKS  # members booking the same slot: one group fills every desk
SLOTS = BOOKINGS_PER_MEMBER * GROUPS  # half-day slots the bookings spread over
FUTURE_SLOTS = 200  # the last 100 days are ahead of now
ORGANISATION_SLUG = "bench"
TIMEZONE = "Europe/London"
SEED = 20_241_121
# Written into the organisation's name so a reused database is known to hold this very data set.
DATA_VERSION = f"bench v1: {MEMBERS} members, {DESKS} desks, {MEMBERS * BOOKINGS_PER_MEMBER} bookings"


@dataclass(frozen=True)
class Caller:
    """A member the load generator speaks for: their id and the secret of their token."""

    member_id: int
    secret: str


def token_secret(number: int) -> str:
    """The token of member `number` (1-based): deterministic, so a reused database still matches."""
    return "dsk_bench_" + hashlib.sha256(f"deskbridge-bench-{number}".encode()).hexdigest()[:40]


def hash_secret(secret: str) -> str:
    """As store.services.members.hash_secret: the SHA-256 hex the api_tokens table keeps."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _copy(cursor: psycopg.Cursor[tuple[object, ...]], table: str, columns: list[str], lines: Iterator[str]) -> None:
    """COPY text-format `lines` into `table`, in large chunks."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.copy(statement) as copy:
        buffer = io.StringIO()
        for count, line in enumerate(lines, 1):
            buffer.write(line)
            if count % 50_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S+00")


def _slot_times(now: datetime) -> list[tuple[str, str]]:
    """(start, end) of each slot, the last FUTURE_SLOTS of them from tomorrow on."""
    first_day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day -= timedelta(days=(SLOTS - FUTURE_SLOTS) // 2)
    times = []
    for slot in range(SLOTS):
        day = first_day + timedelta(days=slot // 2)
        start = day + (timedelta(hours=8) if slot % 2 == 0 else timedelta(hours=13))
        times.append((_stamp(start), _stamp(start + timedelta(hours=4))))
    return times


def _booking_lines(organisation_id: int, member_ids: list[int], desk_ids: list[int], now: datetime) -> Iterator[str]:
    rng = random.Random(SEED)
    groups = [member_ids[g * DESKS : (g + 1) * DESKS] for g in range(GROUPS)]
    # Each group sits at the desks in its own shuffled order, the same every time it comes round.
    seating = [rng.sample(desk_ids, len(desk_ids)) for _ in range(GROUPS)]
    times = _slot_times(now)
    booking_id = 0
    for slot, (start, end) in enumerate(times):
        group = slot % GROUPS
        upcoming = slot >= SLOTS - FUTURE_SLOTS
        created = _stamp(datetime.strptime(start, "%Y-%m-%d %H:%M:%S+00").replace(tzinfo=UTC) - timedelta(days=7))
        if upcoming:
            created = _stamp(now - timedelta(days=1))
        for member_id, desk_id in zip(groups[group], seating[group], strict=True):
            booking_id += 1
            roll = rng.random()
            cancelled_at = checked_in = checked_out = reason = "\\N"
            if roll < 0.05:
                status, reason, cancelled_at = "cancelled", "cancelled_by_member", created
            elif upcoming:
                status = "booked"
            elif roll < 0.15:
                status, checked_in, checked_out = "checked_out", start, end
            else:
                status = "completed"
            yield (
                f"{booking_id}\t{organisation_id}\t{member_id}\t{desk_id}\t{start}\t{end}\t\tWFO\t{status}\tbench\t"
                f"{reason}\t{cancelled_at}\t{checked_in}\t{checked_out}\t{created}\t{created}\n"
            )


def _table_constraints(cursor: psycopg.Cursor[tuple[object, ...]], table: str) -> list[tuple[str, str]]:
    """(name, definition) of every constraint of `table` but its primary key."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype <> 'p' ORDER BY conname",
        (table,),
    )
    return [(str(name), str(definition)) for name, definition in cursor.fetchall()]


def _table_indexes(cursor: psycopg.Cursor[tuple[object, ...]], table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes of `table` that no constraint owns."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname",
        (table,),
    )
    return [(str(name), str(definition)) for name, definition in cursor.fetchall()]


def load(url: str, log: bool = True) -> float:
    """Fill the empty, migrated database at `url`; returns the seconds it took."""
    began = time.perf_counter()
    now = datetime.now(UTC)
    stamp = _stamp(now)

    def say(message: str) -> None:
        if log:
            print(f"  {time.perf_counter() - began:6.1f}s  {message}", flush=True)

    with psycopg.connect(url, autocommit=False) as connection, connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(
            "INSERT INTO organisations (name, slug, timezone, api_enabled, last_event_seq, created_at, updated_at) "
            "VALUES (%s, %s, %s, true, 0, %s, %s) RETURNING id",
            (DATA_VERSION, ORGANISATION_SLUG, TIMEZONE, now, now),
        )
        row = cursor.fetchone()
        assert row is not None
        organisation_id = int(str(row[0]))

        _copy(
            cursor,
            "desks",
            ["organisation_id", "label", "building", "floor", "zone", "kind", "active", "created_at", "updated_at"],
            (
                f"{organisation_id}\t{n}\tHQ\t{1 + (n - 1) // 100}\t{'ABCDE'[(n - 1) // 100]}\tdesk\tt\t"
                f"{stamp}\t{stamp}\n"
                for n in range(1, DESKS + 1)
            ),
        )
        _copy(
            cursor,
            "members",
            [
                "organisation_id",
                "email",
                "display_name",
                "role",
                "status",
                "api_access",
                "created_at",
                "updated_at",
            ],
            (
                f"{organisation_id}\tmember{n:05d}@bench.example\tBench Member {n:05d}\t"
                f"{'admin' if n == 1 else 'member'}\tactive\tt\t{stamp}\t{stamp}\n"
                for n in range(1, MEMBERS + 1)
            ),
        )
        cursor.execute("SELECT id FROM members WHERE organisation_id = %s ORDER BY email", (organisation_id,))
        member_ids = [int(str(r[0])) for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM desks WHERE organisation_id = %s ORDER BY id", (organisation_id,))
        desk_ids = [int(str(r[0])) for r in cursor.fetchall()]
        _copy(
            cursor,
            "api_tokens",
            ["organisation_id", "member_id", "name", "prefix", "token_hash", "created_at", "updated_at"],
            (
                f"{organisation_id}\t{member_id}\tbench\t{token_secret(n)[:12]}\t{hash_secret(token_secret(n))}\t"
                f"{stamp}\t{stamp}\n"
                for n, member_id in enumerate(member_ids, 1)
            ),
        )
        say(f"organisation {organisation_id}: {len(desk_ids)} desks, {len(member_ids)} members with tokens")

        # Bulk-load practice: drop the bookings' indexes and constraints (foreign keys, checks, the
        # no-overlap exclusions), COPY, then rebuild each from its own definition, which re-checks
        # every row against it.
        constraints = _table_constraints(cursor, "bookings")
        indexes = _table_indexes(cursor, "bookings")
        for name, _ in constraints:
            cursor.execute(sql.SQL("ALTER TABLE bookings DROP CONSTRAINT {}").format(sql.Identifier(name)))
        for name, _ in indexes:
            cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        columns = [
            "id",
            "organisation_id",
            "member_id",
            "desk_id",
            "start_at",
            "end_at",
            "details",
            "reason",
            "status",
            "source",
            "cancellation_reason",
            "cancelled_at",
            "checked_in_at",
            "checked_out_at",
            "created_at",
            "updated_at",
        ]
        _copy(cursor, "bookings", columns, _booking_lines(organisation_id, member_ids, desk_ids, now))
        cursor.execute("SELECT setval(pg_get_serial_sequence('bookings', 'id'), (SELECT max(id) FROM bookings))")
        say(f"COPY of {MEMBERS * BOOKINGS_PER_MEMBER:,} bookings done")
        for _, definition in indexes:
            cursor.execute(definition)  # type: ignore[arg-type]  # our own catalogue's DDL
        say(f"rebuilt {len(indexes)} indexes")
        for name, definition in constraints:
            cursor.execute(
                sql.SQL("ALTER TABLE bookings ADD CONSTRAINT {} {}").format(
                    sql.Identifier(name),
                    sql.SQL(definition),  # type: ignore[arg-type]  # our own catalogue's DDL
                )
            )
        say(f"re-added {len(constraints)} constraints: {', '.join(name for name, _ in constraints)}")
        connection.commit()

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    say("vacuumed and analysed")
    return time.perf_counter() - began


def read_callers(url: str) -> list[Caller]:
    """The members of the bench organisation with their (derived) token secrets."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT m.id, m.email FROM members m JOIN organisations o ON o.id = m.organisation_id "
            "WHERE o.slug = %s ORDER BY m.email",
            (ORGANISATION_SLUG,),
        ).fetchall()
    return [Caller(int(member_id), token_secret(n)) for n, (member_id, _) in enumerate(rows, 1)]


def is_loaded(url: str) -> bool:
    """Whether the database at `url` holds this data set, complete (the load is one transaction)."""
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute(
                "SELECT o.name, (SELECT count(*) FROM bookings b WHERE b.organisation_id = o.id) "
                "FROM organisations o WHERE o.slug = %s",
                (ORGANISATION_SLUG,),
            ).fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == DATA_VERSION and row[1] == MEMBERS * BOOKINGS_PER_MEMBER


def stagger_token_use(url: str) -> None:
    """Give every token a last use spread evenly over the past minute.

    `tokens.authenticate` writes `last_used_at` at most once a minute per token. A continuously
    loaded server is in that steady state: each token refreshes once a minute at a random moment,
    so about MEMBERS/60 writes a second. Without this the first minute of a run would be almost
    all writes, measuring a cold start rather than the service.
    """
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("UPDATE api_tokens SET last_used_at = now() - random() * interval '59 seconds'")

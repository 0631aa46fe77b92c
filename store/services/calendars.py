"""The calendars deskbridge reads: which exist, who may sync one now, and how the last sync ended.

A Microsoft or Google connection with `calendars` on has one calendar per person it brought in
(their primary calendar, read and written as them); an ICS connection has one calendar, its feed;
a peer platform (When I Work, Kadence, Resource Guru) one per person, read-only, synced all at once
with its connection.
Syncing works as for connections (`sync_leases.py`): ask (coalesced), claim (a lease), finish or fail.
A calendar's push channel (a Graph subscription or Google watch channel on the person's events) is a
`push_channels` row with `calendar_id` set (`push_channels.py`); bookings written into a calendar are
`calendar_entries`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import BindParameter, Select, bindparam, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import kinds
from store.columns import utcnow
from store.errors import NotFound
from store.models import (
    Calendar,
    CalendarEntry,
    Connection,
    ConnectionStatus,
    DirectoryUser,
    Member,
    MemberStatus,
    Organisation,
)
from store.services.connections import reads_calendars as reads_calendars
from store.services.sync_leases import SyncLease

SYNC_LEASE = timedelta(minutes=10)
LEASE = SyncLease(Calendar, SYNC_LEASE)


def window(organisation: Organisation, today: date | None = None) -> tuple[datetime, datetime]:
    """The stretch calendars are read for: from a day back to `calendar_window_days` ahead (UTC days)."""
    today = today or utcnow().date()
    start = datetime.combine(today - timedelta(days=1), time(), tzinfo=UTC)
    return start, start + timedelta(days=organisation.calendar_window_days + 1)


def ensure(session: Session, connection: Connection) -> list[Calendar]:
    """Bring the connection's calendars in line with who it covers; returns the live ones.

    Microsoft/Google: one per active or invited member the directory brought in, addressed by their
    sign-in name (what Graph and Google take as the user); members who left lose theirs (with its
    events). ICS: the one feed calendar, for the member named in the settings if any.
    """
    existing = {
        row.member_id: row for row in session.scalars(select(Calendar).where(Calendar.connection_id == connection.id))
    }
    wanted: dict[int | None, str] = {}
    if kinds.rules().can(connection.kind, kinds.ONE_CALENDAR):
        email = (connection.settings.get("member_email") or "").lower()
        member = (
            session.scalar(
                select(Member).where(Member.organisation_id == connection.organisation_id, Member.email == email)
            )
            if email
            else None
        )
        wanted[member.id if member else None] = ""
    elif kinds.rules().can(connection.kind, kinds.PEER_PLATFORM):
        # A peer platform lists everyone's events at once; each person's land in their own calendar,
        # addressed by the member's email (what the platform's events name them by).
        rows = session.execute(
            select(DirectoryUser.member_id, Member.email)
            .join(Member, Member.id == DirectoryUser.member_id)
            .where(
                DirectoryUser.connection_id == connection.id,
                DirectoryUser.in_scope.is_(True),
                Member.status != MemberStatus.REMOVED,
            )
        )
        wanted = {member_id: email for member_id, email in rows}
    elif reads_calendars(connection):
        rows = session.execute(
            select(DirectoryUser.member_id, DirectoryUser.username)
            .join(Member, Member.id == DirectoryUser.member_id)
            .where(
                DirectoryUser.connection_id == connection.id,
                DirectoryUser.in_scope.is_(True),
                Member.status != MemberStatus.REMOVED,
            )
        )
        wanted = {member_id: username for member_id, username in rows}
    for member_id, stale in existing.items():
        if member_id not in wanted:
            session.delete(stale)
    live = []
    for member_id, address in wanted.items():
        row = existing.get(member_id)
        if row is None:
            row = Calendar(
                organisation_id=connection.organisation_id,
                connection_id=connection.id,
                member_id=member_id,
                address=address,
            )
            session.add(row)
        row.address = address
        live.append(row)
    session.flush()
    return live


def get(session: Session, organisation_id: int, calendar_id: int) -> Calendar:
    calendar = session.get(Calendar, calendar_id)
    if calendar is None or calendar.organisation_id != organisation_id:
        raise NotFound(f"no calendar {calendar_id}")
    return calendar


def select_calendars(connection_id: int) -> Select[Calendar]:
    return select(Calendar).where(Calendar.connection_id == connection_id)


# Syncing: ask, claim, finish (the lifecycle connections share: store/services/sync_leases.py).


def request_sync(session: Session, calendar_id: int, now: datetime | None = None) -> bool:
    """Ask for a sync; True when this request must enqueue it (one is not already waiting)."""
    return LEASE.request(session, calendar_id, now)


def request_many(session: Session, calendar_ids: Sequence[int], now: datetime | None = None) -> list[int]:
    """`request_sync` for many calendars in one statement; returns those whose request must be enqueued."""
    return LEASE.request_many(session, calendar_ids, now)


def claim(session: Session, calendar_id: int, now: datetime | None = None) -> bool:
    """Take the calendar for one sync; False while another holds it. Clears the pending request."""
    return LEASE.claim(session, calendar_id, now)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A calendar taken for a sync by `claim_many`: what its sync needs of the row."""

    id: int
    organisation_id: int
    member_id: int | None
    address: str
    cursor: str | None


def claim_many(
    session: Session, connection_id: int, calendar_ids: Sequence[int], now: datetime | None = None
) -> list[Claimed]:
    """`claim` for several calendars of one connection in one statement; returns those taken, by id.

    Calendars another sync holds, of another connection, or gone are left out (and keep their
    request): the same rule as `claim`, so two workers never sync one calendar at once.
    """
    if not calendar_ids:
        return []
    rows = session.execute(
        LEASE.claiming(calendar_ids, now or utcnow())
        .where(Calendar.connection_id == connection_id)
        .returning(Calendar.id, Calendar.organisation_id, Calendar.member_id, Calendar.address, Calendar.cursor)
        .execution_options(synchronize_session=False)
    )
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


@dataclass(frozen=True, slots=True)
class Finished:
    """How one calendar's sync ended well, for `finish_many`."""

    id: int
    cursor: str | None
    counts: dict[str, int]
    notes: list[str]


_FINISH = (
    update(Calendar)
    .where(Calendar.id == bindparam("calendar_id"))
    .values(
        {
            **SyncLease.finished_values(),
            "cursor": bindparam("new_cursor"),
            "window_start": bindparam("new_window_start"),
            "last_synced_at": bindparam("now"),
            "last_counts": bindparam("counts"),
            "last_notes": bindparam("notes"),
            "updated_at": bindparam("now"),
        }
    )
    .execution_options(synchronize_session=False)
)


_FINISH_MANY = text(
    """
    UPDATE calendars SET cursor = done.cursor, window_start = :window_start, status = :status,
           last_synced_at = :now, last_error = NULL, sync_lease_until = NULL, last_counts = done.counts,
           last_notes = done.notes, updated_at = :now
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS done (id integer, cursor text, counts jsonb, notes jsonb)
    WHERE calendars.id = done.id
    """
)


def finish_many(session: Session, finished: Sequence[Finished], *, window_start: date) -> None:
    """`finish` for many calendars at once, in one statement (PostgreSQL: the calendars as one JSON
    document taken apart by `jsonb_to_recordset`; elsewhere one statement executed for each).

    Rows of these calendars the session holds are expired: they were written past the ORM.
    """
    if not finished:
        return
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        document = [
            {"id": item.id, "cursor": item.cursor, "counts": dict(item.counts), "notes": list(item.notes)}
            for item in finished
        ]
        session.execute(
            _FINISH_MANY,
            {
                "rows": json.dumps(document),
                "window_start": window_start,
                "status": ConnectionStatus.ACTIVE.value,
                "now": now,
            },
        )
    else:
        session.connection().execute(
            _FINISH,
            [
                {
                    "calendar_id": item.id,
                    "new_cursor": item.cursor,
                    "new_window_start": window_start,
                    "now": now,
                    "counts": dict(item.counts),
                    "notes": list(item.notes),
                }
                for item in finished
            ],
        )
    ids = {item.id for item in finished}
    for held in list(session.identity_map.values()):
        if isinstance(held, Calendar) and held.id in ids:
            session.expire(held)


def finish(
    session: Session,
    calendar: Calendar,
    *,
    cursor: str | None,
    window_start: date,
    counts: dict[str, int] | None = None,
    notes: list[str] | None = None,
) -> None:
    """A sync ended well: keep where the next one starts, what it did and what it met on the way."""
    LEASE.finished(calendar, cursor=cursor, counts=counts or {}, notes=notes or [])
    calendar.window_start = window_start


def fail(
    session: Session, calendar: Calendar, message: str, *, action_required: bool, notes: list[str] | None = None
) -> None:
    """A sync failed: keep the reason an admin can act on; the cursor stays (the poll tries again later)."""
    LEASE.failed(calendar, message, action_required=action_required, notes=notes)


def retry(session: Session, connection_id: int) -> None:
    """An admin changed the connection (credentials, feed address): its calendars may work again."""
    session.execute(
        update(Calendar)
        .where(Calendar.connection_id == connection_id, Calendar.status == ConnectionStatus.ACTION_REQUIRED)
        .values(status=ConnectionStatus.ERROR)
    )


def due_for_sync(session: Session, *, every: timedelta, now: datetime | None = None) -> list[int]:
    """Calendars whose last sync is older than `every` and that are not waiting for an admin.

    One whose last sync failed waits `every` after the failure too (its row changed then), so a feed
    that is down is asked again at the interval, not at every poll.
    """
    now = now or utcnow()
    return list(
        session.scalars(
            select(Calendar.id)
            .join(Connection, Connection.id == Calendar.connection_id)
            .where(
                # Peer platforms' are synced with their connection (worker/peers), not alone.
                Connection.kind.not_in(kinds.that(kinds.PEER_PLATFORM)),
                *LEASE.due(every=every, now=now),
                or_(Calendar.status != ConnectionStatus.ERROR, Calendar.updated_at < now - every),
            )
            .order_by(Calendar.id)
        )
    )


def due_by_connection(
    session: Session, *, every: timedelta, forgotten_after: timedelta, now: datetime | None = None
) -> dict[int, list[int]]:
    """What the poll queues, by connection: calendars `due_for_sync` (asked for here, coalesced with
    requests already waiting) and requests whose job was lost (`forgotten_requests`)."""
    now = now or utcnow()
    wanted = request_many(session, due_for_sync(session, every=every, now=now), now)
    wanted += forgotten_requests(session, older_than=forgotten_after, now=now)
    if not wanted:
        return {}
    grouped: dict[int, list[int]] = {}
    for calendar_id, connection_id in session.execute(
        select(Calendar.id, Calendar.connection_id).where(Calendar.id.in_(sorted(set(wanted)))).order_by(Calendar.id)
    ):
        grouped.setdefault(connection_id, []).append(calendar_id)
    return grouped


def forgotten_requests(session: Session, *, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Syncs asked for long ago and never started (their job was lost with a broker outage)."""
    return LEASE.forgotten(session, older_than=older_than, now=now)


def of_member(session: Session, member_id: int) -> list[Calendar]:
    """The calendars of a person (where their bookings are written)."""
    return list(session.scalars(select(Calendar).where(Calendar.member_id == member_id).order_by(Calendar.id)))


def writable_of_member(session: Session, member_id: int) -> list[Calendar]:
    """The calendars a person's bookings are written into: Microsoft and Google ones (ICS feeds are read-only)."""
    return list(session.scalars(_writable(member_id).order_by(Calendar.id)))


def has_writable(session: Session, member_id: int) -> bool:
    """Whether the person has a calendar their bookings are written into (`writable_of_member`): one
    indexed lookup, asked with most bookings."""
    return session.scalar(_has_writable(), {"member_id": member_id}) is not None


def _writable(member_id: int | BindParameter[int]) -> Select[Calendar]:
    return (
        select(Calendar)
        .join(Connection, Connection.id == Calendar.connection_id)
        .where(Calendar.member_id == member_id, Connection.kind.in_(kinds.that(kinds.WRITES_CALENDARS)))
    )


@functools.cache
def _has_writable() -> Select[int]:
    """Built once, on first use: the kind registry is installed by then (store/kinds.py)."""
    return _writable(bindparam("member_id")).with_only_columns(Calendar.id).limit(1)


# Bookings written into calendars.


def entry(session: Session, booking_id: int, calendar_id: int) -> CalendarEntry:
    """The booking's entry in a calendar, made if missing, locked until the transaction ends.

    The lock makes writes of one booking into one calendar take turns: a second job waits for the
    first to record what it wrote, then finds nothing left to do. It is taken by writing the row
    (PostgreSQL: a row lock; SQLite: the database's write lock, since SQLite has no row locks and a
    SELECT takes none), so it holds on both stores.
    """
    found = _locked_entry(session, booking_id, calendar_id)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            session.add(CalendarEntry(booking_id=booking_id, calendar_id=calendar_id))
    except IntegrityError:
        pass  # made by a job running alongside: take theirs
    found = _locked_entry(session, booking_id, calendar_id)
    assert found is not None
    return found


def _locked_entry(session: Session, booking_id: int, calendar_id: int) -> CalendarEntry | None:
    where = (CalendarEntry.booking_id == booking_id, CalendarEntry.calendar_id == calendar_id)
    session.execute(
        update(CalendarEntry).where(*where).values(updated_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return session.scalar(select(CalendarEntry).where(*where).execution_options(populate_existing=True))


def entries_of(session: Session, booking_id: int) -> list[CalendarEntry]:
    """Where a booking was written (its calendars may have gone since: then its entries went with them)."""
    return list(
        session.scalars(select(CalendarEntry).where(CalendarEntry.booking_id == booking_id).order_by(CalendarEntry.id))
    )


def written(
    entry: CalendarEntry, *, event_id: str | None, sequence: int, fingerprint: str, deleted: bool = False
) -> None:
    """Record what the calendar now holds for the booking."""
    entry.provider_event_id = event_id
    entry.sequence = entry.written_sequence = sequence
    entry.written_hash = fingerprint
    entry.deleted = deleted
    entry.last_error = None
    entry.written_at = utcnow()


def write_failed(entry: CalendarEntry, message: str) -> None:
    """Keep why the last write failed (it is retried by the queue)."""
    entry.last_error = message[:500]

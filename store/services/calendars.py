"""The calendars deskbridge reads: which exist, who may sync one now, and how the last sync ended.

A Microsoft or Google connection with `calendars` on has one calendar per person it brought in
(their primary calendar, read and written as them); an ICS connection has one calendar, its feed.
Syncing works as for connections: ask (coalesced), claim (a lease), finish or fail.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from store.columns import utcnow
from store.errors import NotFound
from store.models import (
    Calendar,
    Connection,
    ConnectionKind,
    ConnectionStatus,
    DirectoryUser,
    Member,
    MemberStatus,
    Organisation,
)

SYNC_LEASE = timedelta(minutes=10)
READING_KINDS = (ConnectionKind.MICROSOFT, ConnectionKind.GOOGLE)


def reads_calendars(connection: Connection) -> bool:
    """Whether a connection's calendars are synced: an ICS feed always, Microsoft/Google when opted in."""
    if connection.kind is ConnectionKind.ICS:
        return True
    return connection.kind in READING_KINDS and bool(connection.settings.get("calendars"))


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
    if connection.kind is ConnectionKind.ICS:
        email = (connection.settings.get("member_email") or "").lower()
        member = (
            session.scalar(
                select(Member).where(Member.organisation_id == connection.organisation_id, Member.email == email)
            )
            if email
            else None
        )
        wanted[member.id if member else None] = ""
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


def request_sync(session: Session, calendar_id: int, now: datetime | None = None) -> bool:
    """Ask for a sync; True when this request must enqueue it (one is not already waiting)."""
    result = session.execute(
        update(Calendar)
        .where(Calendar.id == calendar_id, Calendar.sync_requested_at.is_(None))
        .values(sync_requested_at=now or utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, calendar_id: int, now: datetime | None = None) -> bool:
    """Take the calendar for one sync; False while another holds it. Clears the pending request."""
    now = now or utcnow()
    result = session.execute(
        update(Calendar)
        .where(Calendar.id == calendar_id, or_(Calendar.sync_lease_until.is_(None), Calendar.sync_lease_until < now))
        .values(sync_lease_until=now + SYNC_LEASE, sync_requested_at=None, status=ConnectionStatus.SYNCING)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, calendar: Calendar, *, cursor: str | None, window_start: date) -> None:
    """A sync ended well: keep where the next one starts."""
    calendar.cursor = cursor
    calendar.window_start = window_start
    calendar.status = ConnectionStatus.ACTIVE
    calendar.last_synced_at = utcnow()
    calendar.last_error = None
    calendar.sync_lease_until = None


def fail(session: Session, calendar: Calendar, message: str, *, action_required: bool) -> None:
    """A sync failed: keep the reason an admin can act on; the cursor stays."""
    calendar.status = ConnectionStatus.ACTION_REQUIRED if action_required else ConnectionStatus.ERROR
    calendar.last_error = message
    calendar.sync_lease_until = None


def due_for_sync(session: Session, *, every: timedelta, now: datetime | None = None) -> list[int]:
    """Calendars whose last sync is older than `every` and that are not waiting for an admin."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Calendar.id)
            .where(
                Calendar.status != ConnectionStatus.ACTION_REQUIRED,
                or_(Calendar.last_synced_at.is_(None), Calendar.last_synced_at < now - every),
                or_(Calendar.sync_lease_until.is_(None), Calendar.sync_lease_until < now),
            )
            .order_by(Calendar.id)
        )
    )


def of_member(session: Session, member_id: int) -> list[Calendar]:
    """The calendars of a person (where their bookings are written)."""
    return list(session.scalars(select(Calendar).where(Calendar.member_id == member_id).order_by(Calendar.id)))

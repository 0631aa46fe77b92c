"""The sync lifecycle connections and calendars share, over their `SyncState` columns.

Ask for a sync (coalesced: a burst of requests makes one sync), claim it (a lease, so one sync at a time,
which a crashed worker lets go of when it runs out), then finish (the new cursor, what it did) or fail (an
admin-readable reason; the cursor stays). The poll asks for rows whose last sync is old (`due`) and again
for requests whose job was lost (`forgotten`). `store/services/connections.py` and `calendars.py` each hold
one `SyncLease` and add what is theirs (a connection's events, a calendar's window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, or_, select, update
from sqlalchemy.orm import Session

from store.columns import utcnow
from store.models import Calendar, Connection, ConnectionStatus

Synced = Connection | Calendar


@dataclass(frozen=True)
class SyncLease:
    """The lifecycle of one table's syncs; `duration` is how long a claim holds before it lapses."""

    model: type[Connection] | type[Calendar]
    duration: timedelta

    def free(self, now: datetime) -> ColumnElement[bool]:
        """No sync holds the row (never claimed, finished, failed, or its lease ran out)."""
        return or_(self.model.sync_lease_until.is_(None), self.model.sync_lease_until < now)

    def request(self, session: Session, row_id: int, now: datetime | None = None) -> bool:
        """Ask for a sync; True when this request is the one that should enqueue it.

        A sync already asked for and not yet started covers this request too.
        """
        result = session.execute(
            update(self.model)
            .where(self.model.id == row_id, self.model.sync_requested_at.is_(None))
            .values(sync_requested_at=now or utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def request_many(self, session: Session, row_ids: Sequence[int], now: datetime | None = None) -> list[int]:
        """`request` for many rows in one statement; returns those whose request must be enqueued, by id."""
        if not row_ids:
            return []
        result = session.execute(
            update(self.model)
            .where(self.model.id.in_(sorted(set(row_ids))), self.model.sync_requested_at.is_(None))
            .values(sync_requested_at=now or utcnow())
            .returning(self.model.id)
            .execution_options(synchronize_session=False)
        )
        return sorted(result.scalars())

    def claiming(self, row_ids: Sequence[int], now: datetime) -> Update:
        """The statement that takes these rows for a sync where no other holds them, and clears their
        request (those arriving from now on ask for the next sync); the caller may narrow and return."""
        return (
            update(self.model)
            .where(self.model.id.in_(sorted(set(row_ids))), self.free(now))
            .values(sync_lease_until=now + self.duration, sync_requested_at=None, status=ConnectionStatus.SYNCING)
        )

    def claim(self, session: Session, row_id: int, now: datetime | None = None) -> bool:
        """Take the row for one sync; False while another sync holds it."""
        result = session.execute(self.claiming([row_id], now or utcnow()))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def finished(row: Synced, *, cursor: str | None, counts: dict[str, int], notes: list[str]) -> None:
        """A sync ended well: keep where the next one starts and what it did, and let go of the lease."""
        row.cursor = cursor
        row.status = ConnectionStatus.ACTIVE
        row.last_synced_at = utcnow()
        row.last_error = None
        row.last_counts = dict(counts)
        row.last_notes = list(notes)
        row.sync_lease_until = None

    @staticmethod
    def finished_values() -> dict[str, Any]:
        """What `finished` sets alike on every row, for statements that finish many rows at once."""
        return {"status": ConnectionStatus.ACTIVE, "last_error": None, "sync_lease_until": None}

    @staticmethod
    def failed(row: Synced, message: str, *, action_required: bool, notes: list[str] | None) -> None:
        """A sync failed: keep the reason an admin can read (and `notes` when given); the cursor stays."""
        row.status = ConnectionStatus.ACTION_REQUIRED if action_required else ConnectionStatus.ERROR
        row.last_error = message
        if notes is not None:
            row.last_notes = list(notes)
        row.sync_lease_until = None

    def due(self, *, every: timedelta, now: datetime) -> list[ColumnElement[bool]]:
        """Rows whose last sync is older than `every`, not waiting for an admin, and that no sync holds."""
        return [
            self.model.status != ConnectionStatus.ACTION_REQUIRED,
            or_(self.model.last_synced_at.is_(None), self.model.last_synced_at < now - every),
            self.free(now),
        ]

    def forgotten(self, session: Session, *, older_than: timedelta, now: datetime | None = None) -> list[int]:
        """Syncs asked for long ago and never started (their job was lost with a broker outage)."""
        now = now or utcnow()
        return list(
            session.scalars(
                select(self.model.id)
                .where(self.model.sync_requested_at < now - older_than, self.free(now))
                .order_by(self.model.id)
            )
        )

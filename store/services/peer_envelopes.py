"""Webhook deliveries from peer platforms (Resource Guru): the secret they are checked with, and each
envelope kept once by its id, so a replayed or retried delivery is acknowledged and changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.columns import utcnow
from store.models import Connection, ConnectionKind, ConnectionStatus, PeerEnvelope
from store.secret_box import SecretBox
from store.services.connections import DELIVERY, credentials, note_failure


def webhook_secret(session: Session, box: SecretBox, connection_id: int) -> str | None:
    """The secret a Resource Guru connection's webhooks are signed with; None without one (or no such connection)."""
    connection = session.get(Connection, connection_id)
    if connection is None or connection.kind is not ConnectionKind.RESOURCEGURU:
        return None
    secret = credentials(box, connection).get("webhook_secret")
    return secret if isinstance(secret, str) and secret else None


def _insert_statement(dialect: Any) -> Any:
    # Built once per dialect: making the statement costs more than running it. The table, not the
    # entity: a Core INSERT skips the ORM's bulk-insert machinery.
    table: Table = PeerEnvelope.__table__  # type: ignore[assignment]
    columns = ("connection_id", "envelope_id", "body", "subject", "created_at", "updated_at")
    return (
        dialect.insert(table)
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_nothing(index_elements=[table.c.connection_id, table.c.envelope_id])
        .returning(table.c.id)
    )


_INSERTS = {"postgresql": _insert_statement(postgresql), "sqlite": _insert_statement(sqlite)}
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


@dataclass(frozen=True, slots=True)
class Received:
    """A verified delivery, as the API keeps it: its envelope id, body and what it is about ("booking:12")."""

    connection_id: int
    envelope_id: int
    body: str
    subject: str = ""


def receive(session: Session, connection_id: int, envelope_id: int, body: str, subject: str = "") -> int | None:
    """Keep a verified delivery; its row id, or None when this envelope was received before (a replay).

    One statement (`INSERT … ON CONFLICT DO NOTHING RETURNING id`), so two copies of a delivery
    received at once keep one row without a savepoint. `subject` is what it is about, so an older
    delivery never undoes a newer one. Raises IntegrityError when the connection is gone.
    """
    _commit_without_flush(session)
    return _insert(session, Received(connection_id, envelope_id, body, subject))


def receive_many(session: Session, deliveries: Sequence[Received]) -> list[bool | None]:
    """Keep verified deliveries in the caller's transaction: for each, True when new, False when
    received before, None when its connection is gone (nothing kept)."""
    wanted = sorted({item.connection_id for item in deliveries})
    live = set(session.scalars(select(Connection.id).where(Connection.id.in_(wanted))))
    fresh = {(item.connection_id, item.envelope_id): item for item in deliveries if item.connection_id in live}
    # In one order whoever inserts, so two batches holding the same deliveries never deadlock.
    rows = [fresh[key] for key in sorted(fresh)]
    _commit_without_flush(session)
    if session.get_bind().dialect.name == "postgresql":
        inserted = _insert_all(session, rows)
    else:
        inserted = {(row.connection_id, row.envelope_id) for row in rows if _insert(session, row) is not None}
    kept: list[bool | None] = []
    for item in deliveries:
        key = (item.connection_id, item.envelope_id)
        kept.append(None if item.connection_id not in live else key in inserted and fresh.pop(key, None) is not None)
    return kept


# One statement with an array a column, whatever the number of deliveries.
_INSERT_ALL = text(
    """
    INSERT INTO peer_envelopes (connection_id, envelope_id, body, subject, created_at, updated_at)
    SELECT new.connection_id, new.envelope_id, new.body, new.subject, :now, :now
    FROM unnest(CAST(:connection_ids AS bigint[]), CAST(:envelope_ids AS bigint[]), CAST(:bodies AS text[]),
                CAST(:subjects AS text[])) AS new (connection_id, envelope_id, body, subject)
    ON CONFLICT (connection_id, envelope_id) DO NOTHING
    RETURNING connection_id, envelope_id
    """
)


def _insert_all(session: Session, rows: list[Received]) -> set[tuple[int, int]]:
    if not rows:
        return set()
    found = session.execute(
        _INSERT_ALL,
        {
            "connection_ids": [row.connection_id for row in rows],
            "envelope_ids": [row.envelope_id for row in rows],
            "bodies": [row.body for row in rows],
            "subjects": [row.subject[:64] for row in rows],
            "now": utcnow(),
        },
    )
    return {(int(connection_id), int(envelope_id)) for connection_id, envelope_id in found}


def _commit_without_flush(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # The sender waits for our answer, and a delivery is not worth waiting for a disk flush:
        # should the server crash in the next moment, the reconciling poll brings in what was lost.
        session.execute(_ASYNC_COMMIT)


def _insert(session: Session, delivery: Received) -> int | None:
    now = utcnow()
    row_id: int | None = session.scalar(
        _INSERTS[session.get_bind().dialect.name],
        {
            "connection_id": delivery.connection_id,
            "envelope_id": delivery.envelope_id,
            "body": delivery.body,
            "subject": delivery.subject[:64],
            "created_at": now,
            "updated_at": now,
        },
    )
    return row_id


# Namespace of the advisory lock that lets one job at a time apply a connection's deliveries (PostgreSQL;
# bookings use 1 and 2, see store/services/bookings.py).
_APPLY_LOCK = 3


def waiting(session: Session, connection_id: int, limit: int, *, only: int | None = None) -> list[PeerEnvelope]:
    """The connection's deliveries still to apply, oldest envelope first (`only`: just that row, if waiting).

    On PostgreSQL the caller's transaction first waits for any other applying the same connection's
    deliveries to end, so deliveries about one object are applied in the order they were sent.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_APPLY_LOCK, connection_id)))
    query = select(PeerEnvelope).where(PeerEnvelope.connection_id == connection_id, PeerEnvelope.applied_at.is_(None))
    if only is not None:
        query = query.where(PeerEnvelope.id == only)
    return list(session.scalars(query.order_by(PeerEnvelope.envelope_id).limit(limit)))


def stalled(session: Session, *, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Connections with a delivery waiting to be applied for longer than `older_than` (its job was lost)."""
    cutoff = (now or utcnow()) - older_than
    query = select(PeerEnvelope.connection_id).where(
        PeerEnvelope.applied_at.is_(None), PeerEnvelope.created_at < cutoff
    )
    return list(session.scalars(query.distinct().order_by(PeerEnvelope.connection_id)))


def latest_applied(session: Session, connection_id: int, subjects: set[str]) -> dict[str, int]:
    """The newest envelope id applied about each of `subjects` (deliveries older than it are out of order)."""
    if not subjects:
        return {}
    rows = session.execute(
        select(PeerEnvelope.subject, func.max(PeerEnvelope.envelope_id))
        .where(
            PeerEnvelope.connection_id == connection_id,
            PeerEnvelope.subject.in_(sorted(subjects)),
            PeerEnvelope.applied_at.is_not(None),
            PeerEnvelope.error.is_(None),
        )
        .group_by(PeerEnvelope.subject)
    )
    return {subject: int(newest) for subject, newest in rows}


def applied(row: PeerEnvelope, *, error: str | None = None) -> None:
    """The delivery is done with (applied, or refused with `error`): it is never applied again."""
    row.applied_at = utcnow()
    row.body = ""  # the platform's data lives in the store now, not in a copy of the delivery
    row.error = error


def refuse(session: Session, connection: Connection, message: str) -> None:
    """A delivery that cannot be read: the admin sees why on the connection (`connection.failed`, when it
    was not failing already).

    Unlike `connections.fail` it leaves the sync lease alone: a sync running meanwhile keeps it.
    """
    connection.status = ConnectionStatus.ERROR
    connection.last_error = message
    note_failure(session, connection, message, action_required=False, part=DELIVERY)


def prune(session: Session, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget deliveries done with, or received, longer ago than `older_than` (Resource Guru retries
    within hours; one never applied, its connection refused meanwhile, was reconciled by the polls since)."""
    cutoff = (now or utcnow()) - older_than
    result = session.execute(
        delete(PeerEnvelope).where(or_(PeerEnvelope.applied_at < cutoff, PeerEnvelope.created_at < cutoff))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

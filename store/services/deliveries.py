"""Deliveries, one per (endpoint, event): made once however often they are asked for, found when due,
leased to the job that sends them, and listed with their attempts.

Bookkeeping only: nothing here records an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from store.errors import Invalid
from store.models import Delivery, DeliveryAttempt, DeliveryStatus, OutboxEvent, WebhookEndpoint


def new_delivery(
    event: OutboxEvent | Row[Any], endpoint: WebhookEndpoint | Row[Any], now: datetime, *, due: datetime | None = None
) -> dict[str, Any]:
    """The row of a new pending delivery of `event` to `endpoint`, due at `due` (default: `now`)."""
    return {
        "organisation_id": event.organisation_id,
        "endpoint_id": endpoint.id,
        "event_id": event.id,
        "event_seq": event.seq,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now if due is None else due,
        "due_at": now,
        "created_at": now,
    }


_INSERT_DELIVERIES = text(
    """
    INSERT INTO deliveries
        (organisation_id, endpoint_id, event_id, event_seq, status, attempts, next_attempt_at, due_at, created_at)
    SELECT organisation_id, endpoint_id, event_id, event_seq, 'pending', 0, next_attempt_at, created_at, created_at
    FROM unnest(
        CAST(:organisation_ids AS bigint[]), CAST(:endpoint_ids AS bigint[]), CAST(:event_ids AS text[]),
        CAST(:event_seqs AS bigint[]), CAST(:next_attempt_ats AS timestamptz[]), CAST(:created_ats AS timestamptz[])
    ) AS new (organisation_id, endpoint_id, event_id, event_seq, next_attempt_at, created_at)
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    RETURNING id, endpoint_id, event_id
    """
)


def insert_missing(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """Insert the deliveries that do not exist yet; (id, endpoint_id, event_id) of those inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # One statement with one array a column, whatever the number of rows (the relay makes hundreds).
        found = session.execute(
            _INSERT_DELIVERIES,
            {
                "organisation_ids": [row["organisation_id"] for row in rows],
                "endpoint_ids": [row["endpoint_id"] for row in rows],
                "event_ids": [row["event_id"] for row in rows],
                "event_seqs": [row["event_seq"] for row in rows],
                "next_attempt_ats": [row["next_attempt_at"] for row in rows],
                "created_ats": [row["created_at"] for row in rows],
            },
        )
        return [(row[0], row[1], row[2]) for row in found]
    statement = (
        sqlite.insert(Delivery)
        .on_conflict_do_nothing(index_elements=[Delivery.endpoint_id, Delivery.event_id])
        .returning(Delivery.id, Delivery.endpoint_id, Delivery.event_id)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(statement, rows)]


def due_deliveries(session: Session, *, now: datetime, limit: int = 1000) -> list[int]:
    """Pending deliveries due by `now` whose endpoint is neither paused nor disabled, soonest first.

    The scheduler's safety net for deliveries whose job was lost or whose retry is far off. Whoever
    enqueues a delivery `lease`s it, so that the sweep leaves it to its job meanwhile.
    """
    return [delivery_id for _, delivery_id in due_deliveries_of_endpoints(session, now=now, limit=limit)]


def due_deliveries_of_endpoints(session: Session, *, now: datetime, limit: int = 1000) -> list[tuple[int, int]]:
    """As `due_deliveries`, as (endpoint id, delivery id)."""
    return [
        (row[0], row[1])
        for row in session.execute(
            select(Delivery.endpoint_id, Delivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
                WebhookEndpoint.paused.is_(False),
                WebhookEndpoint.disabled_at.is_(None),
            )
            .order_by(Delivery.next_attempt_at.asc().nulls_first(), Delivery.event_seq, Delivery.id)
            .limit(limit)
            # Two sweeps at once (a scheduler handing over) take different deliveries.
            .with_for_update(of=Delivery, skip_locked=True)
        )
    ]


def lease(session: Session, delivery_ids: Sequence[int], *, until: datetime) -> None:
    """Hold pending deliveries away from `due_deliveries` until `until` (bookkeeping: no event).

    For deliveries just enqueued: if their job is lost (a worker killed, a broker emptied), the
    sweep finds them again once the lease runs out. An attempt's outcome sets the next time anew.
    """
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PENDING)
            .values(next_attempt_at=until)
        )


def select_deliveries(
    organisation_id: int,
    *,
    endpoint_id: int | None = None,
    event_id: str | None = None,
    status: str | None = None,
) -> Select[Delivery]:
    """The organisation's deliveries, narrowed to one endpoint, one event and one status, unordered."""
    query = select(Delivery).where(Delivery.organisation_id == organisation_id)
    if endpoint_id is not None:
        query = query.where(Delivery.endpoint_id == endpoint_id)
    if event_id is not None:
        query = query.where(Delivery.event_id == event_id)
    if status is not None:
        try:
            wanted = DeliveryStatus(status)
        except ValueError:
            names = ", ".join(member.value for member in DeliveryStatus)
            raise Invalid(f"status must be one of {names}", field="status") from None
        query = query.where(Delivery.status == wanted)
    return query


def attempts_of(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[DeliveryAttempt]]:
    """Each delivery's attempts, oldest first (an empty list for one never attempted)."""
    found: dict[int, list[DeliveryAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if found:
        query = (
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(found))
            .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
        )
        for attempt in session.scalars(query):
            found[attempt.delivery_id].append(attempt)
    return found

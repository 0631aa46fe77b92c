"""Stored sync plans, removals held for an admin, and the removals a connection applied.

What a plan holds is the sync layer's (sync/directory/plans.py); this module keeps the rows: a plan
made (`create`), found for an admin (`get`: another organisation's, another connection's or an expired
one is not found), held (`hold`: the connection says so, `connection.removals_held` is recorded and
its admins are owed an email) and settled (`settle`). `removed_since`/`note_removed` count the
removals a connection applied, for its removal limit over a rolling hour.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store import outbox
from store.columns import utcnow
from store.errors import Conflict, NotFound
from store.models import Connection, ConnectionRemoval, ConnectionStatus, PlanStatus, SyncPlan
from store.services import directory, follow_ups
from store.services.connections import describe

PLAN_LIFETIME = timedelta(hours=1)
PLAN_PREFIX = "plan_"
REMOVAL_WINDOW = timedelta(hours=1)
SHOWN_IN_EVENT = 100  # addresses a `connection.removals_held` event names; the plan has them all


def create(
    session: Session,
    connection: Connection,
    *,
    changes: dict[str, Any],
    counts: dict[str, int],
    notes: list[str],
    fingerprint: str,
    cursor: str | None,
    round_: int,
    source: dict[str, Any] | None = None,
    status: PlanStatus = PlanStatus.OPEN,
    now: datetime | None = None,
) -> SyncPlan:
    """Keep a plan of `connection`; an open one expires after PLAN_LIFETIME, a held one waits for an admin."""
    now = now or utcnow()
    plan = SyncPlan(
        public_id=PLAN_PREFIX + secrets.token_urlsafe(12),
        organisation_id=connection.organisation_id,
        connection_id=connection.id,
        status=status,
        cursor=cursor,
        round=round_,
        fingerprint=fingerprint,
        changes=changes,
        counts=counts,
        notes=notes,
        source=source,
        created_at=now,
        expires_at=now + PLAN_LIFETIME if status is PlanStatus.OPEN else None,
    )
    session.add(plan)
    session.flush()
    return plan


def get(
    session: Session, organisation_id: int, connection_id: int, public_id: str, *, now: datetime | None = None
) -> SyncPlan:
    """The connection's plan by its id; NotFound for another organisation's or connection's, or an expired one."""
    plan = session.scalar(select(SyncPlan).where(SyncPlan.public_id == public_id))
    if plan is None or plan.organisation_id != organisation_id or plan.connection_id != connection_id:
        raise NotFound(f"no plan {public_id} of connection {connection_id}")
    if expired(plan, now):
        raise NotFound(f"plan {public_id} expired; make a new one")
    return plan


def expired(plan: SyncPlan, now: datetime | None = None) -> bool:
    """Whether an open plan is past its expiry (held and settled plans never expire)."""
    return plan.status is PlanStatus.OPEN and plan.expires_at is not None and plan.expires_at <= (now or utcnow())


def check_open(plan: SyncPlan) -> None:
    """Conflict unless the plan can still be applied (open, or held for an admin)."""
    if plan.status not in (PlanStatus.OPEN, PlanStatus.HELD):
        detail = f"; plan {plan.replaced_by} replaced it" if plan.replaced_by else ""
        raise Conflict(f"plan {plan.public_id} was {plan.status.value}{detail}", code=f"plan_{plan.status.value}")


def lock_connection(session: Session, connection_id: int) -> Connection:
    """The connection, locked until the transaction ends (SQLite: the database's write lock), so a sync
    holding removals and an admin deciding on them never both act on the held plan they read."""
    directory.hold_writes(session)
    return session.scalars(
        select(Connection)
        .where(Connection.id == connection_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def held_plan(session: Session, connection: Connection) -> SyncPlan | None:
    """The plan holding the connection's removals for an admin, if any."""
    if connection.held_plan_id is None:
        return None
    return session.scalar(select(SyncPlan).where(SyncPlan.public_id == connection.held_plan_id))


def hold(session: Session, connection: Connection, plan: SyncPlan, *, limit: int, removed_last_hour: int) -> None:
    """`plan` now holds the connection's removals: its status says so, `connection.removals_held` carries
    the plan, and its admins are owed an email (a follow-up, so a broker outage cannot lose it) unless
    it held removals already: a plan held before is replaced (its removals are in the new one)."""
    previous = held_plan(session, connection)
    if previous is not None and previous.id != plan.id:
        previous.status, previous.replaced_by, previous.decided_at = PlanStatus.STALE, plan.public_id, utcnow()
    else:  # admins are emailed when removals start waiting, not each time more join them
        follow_ups.record(session, follow_ups.REMOVALS_HELD_MAIL, connection.id, connection.organisation_id)
    plan.status = PlanStatus.HELD
    plan.expires_at = None
    connection.held_plan_id = plan.public_id
    if connection.status is not ConnectionStatus.SYNCING:
        connection.status = ConnectionStatus.REMOVALS_HELD
    removals = plan.changes.get("people", {}).get("removed", [])
    outbox.record(
        session,
        connection.organisation_id,
        "connection.removals_held",
        {
            **describe(connection),
            "plan_id": plan.public_id,
            "removals": len(removals),
            "limit": limit,
            "removed_last_hour": removed_last_hour,
            "people": [person["email"] for person in removals[:SHOWN_IN_EVENT]],
        },
    )


def settle(session: Session, connection: Connection, plan: SyncPlan, status: PlanStatus) -> None:
    """The plan is done with (applied, rejected, or replaced by a fresh one); a held one lets the connection go."""
    plan.status = status
    plan.decided_at = utcnow()
    if connection.held_plan_id == plan.public_id:
        connection.held_plan_id = None
        if connection.status is ConnectionStatus.REMOVALS_HELD:
            connection.status = ConnectionStatus.ACTIVE


def removed_since(session: Session, connection_id: int, since: datetime) -> int:
    """How many people the connection's syncs removed since `since`."""
    total = session.scalar(
        select(func.sum(ConnectionRemoval.people)).where(
            ConnectionRemoval.connection_id == connection_id, ConnectionRemoval.removed_at > since
        )
    )
    return int(total or 0)


def note_removed(session: Session, connection_id: int, people: int, now: datetime | None = None) -> None:
    """Count removals a sync applied (for the rolling hour); rows older than a day are dropped as it goes."""
    if people <= 0:
        return
    now = now or utcnow()
    session.execute(
        delete(ConnectionRemoval).where(
            ConnectionRemoval.connection_id == connection_id, ConnectionRemoval.removed_at < now - timedelta(days=1)
        )
    )
    session.add(ConnectionRemoval(connection_id=connection_id, removed_at=now, people=people))

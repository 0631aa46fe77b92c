from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.columns import utcnow
from store.models.base import Base, JSONDocument, enum_column


class PlanStatus(enum.StrEnum):
    OPEN = "open"  # read and stored; applied on request while the directory has not moved on
    HELD = "held"  # removals a sync held back (over the connection's removal limit), waiting for an admin
    APPLIED = "applied"  # applied (a held plan: approved)
    REJECTED = "rejected"  # a held plan an admin rejected: its people stay
    STALE = "stale"  # the directory moved on before it was applied: a fresh plan replaced it


class SyncPlan(Base):
    """What a directory sync of a connection would do (or, held, the removals it held back).

    `changes` lists it person by person and team by team (sync/directory/plans.py shapes it);
    `fingerprint` is the hash of those changes, `cursor`/`round` where the connection stood when it
    was read: applying it reads again and applies only when both still match. A CSV plan keeps the
    file's records in `source`, so the file is applied as it was planned.
    """

    __tablename__ = "sync_plans"
    __table_args__ = (Index("ix_sync_plans_connection_id", "connection_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # plan_…, the id the API shows
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    status: Mapped[PlanStatus] = mapped_column(enum_column(PlanStatus), default=PlanStatus.OPEN)
    cursor: Mapped[str | None] = mapped_column(Text)
    round: Mapped[int] = mapped_column(default=0)
    fingerprint: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    counts: Mapped[dict[str, int]] = mapped_column(JSONDocument, default=dict)
    notes: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    source: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]  # None: a held plan, kept until an admin decides
    decided_at: Mapped[datetime | None]
    replaced_by: Mapped[str | None] = mapped_column(String(40))  # a stale plan: the fresh one's id


class ConnectionRemoval(Base):
    """Removals a connection's syncs applied, with when: the removal limit counts the last hour's."""

    __tablename__ = "connection_removals"
    __table_args__ = (Index("ix_connection_removals_connection_id_removed_at", "connection_id", "removed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    removed_at: Mapped[datetime] = mapped_column(default=utcnow)
    people: Mapped[int]

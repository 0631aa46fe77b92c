from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from store.columns import BigId, utcnow
from store.models.base import Base, JSONDocument


class OutboxEvent(Base):
    """One change, written in the transaction that made it. `id` is stable (the webhook-id);
    `seq` orders an organisation's events and is the pull API's cursor. `relayed_at` is set once
    the webhook relay has made the event's deliveries; the partial index finds the ones it has not."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("organisation_id", "seq"),
        Index(
            "ix_outbox_events_unrelayed",
            "created_at",
            postgresql_where=text("relayed_at IS NULL"),
            sqlite_where=text("relayed_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigId)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    relayed_at: Mapped[datetime | None]

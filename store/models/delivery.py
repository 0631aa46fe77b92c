from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.columns import BigId, utcnow
from store.models.base import Base, enum_column


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or for its endpoint to be resumed)
    SUCCEEDED = "succeeded"
    EXHAUSTED = "exhausted"  # every retry failed, or the endpoint answered 410 Gone


class Delivery(Base):
    """One event on its way to one endpoint: created by the outbox relay, finished by an attempt.

    Bookkeeping, not domain state: changing a delivery records no outbox event.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_deliveries_endpoint_id_event_seq", "endpoint_id", "event_seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True)
    # A copy of the event's seq, so an endpoint's deliveries sort in event order without a join.
    event_seq: Mapped[int] = mapped_column(BigId)
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus), default=DeliveryStatus.PENDING)
    # Attempts in the current round: a replay starts a new round, the attempt log keeps them all.
    attempts: Mapped[int] = mapped_column(default=0)
    # When the sweep may take it: the next attempt, or later while a job holds it (`deliveries.lease`).
    next_attempt_at: Mapped[datetime | None]
    # When its next attempt is due (what the log shows), whatever lease a job holds; None once finished.
    due_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    """One HTTP attempt of a delivery, as the deliveries log shows it."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    succeeded: Mapped[bool]

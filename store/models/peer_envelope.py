from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps


class PeerEnvelope(Timestamps, Base):
    """A verified webhook delivery from a peer platform (Resource Guru), kept by its envelope id.

    The signature says nothing about freshness, so a replayed delivery verifies: the unique
    (connection, envelope id) pair is what makes it change nothing. `body` is the raw delivery until
    the worker applied it (then emptied); `error` says why it could not be (it is never retried then:
    the reconciling poll brings the platform's state in anyway).
    """

    __tablename__ = "peer_envelopes"
    __table_args__ = (
        UniqueConstraint("connection_id", "envelope_id"),
        Index("ix_peer_envelopes_subject", "connection_id", "subject"),
        # The worker drains a connection's deliveries still waiting, oldest envelope first.
        Index(
            "ix_peer_envelopes_waiting",
            "connection_id",
            "envelope_id",
            postgresql_where=text("applied_at IS NULL"),
            sqlite_where=text("applied_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    envelope_id: Mapped[int] = mapped_column(BigInteger)
    # What the delivery is about ("booking:12"): deliveries can arrive out of order, and one older
    # than a delivery about the same object already applied must not undo it.
    subject: Mapped[str] = mapped_column(String(64), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    applied_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

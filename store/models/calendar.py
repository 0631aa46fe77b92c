from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONDocument, Timestamps, enum_column
from store.models.connection import ConnectionStatus


class Calendar(Timestamps, Base):
    """A calendar deskbridge reads (and, for a person's own, writes bookings into).

    A person's primary calendar at a Microsoft or Google connection (`member_id` set,
    `address` their mailbox), or an ICS feed (`member_id` set for a person's feed, empty for an
    organisation resource). `cursor` is the connector's position (sync token, delta link, ETag),
    kept only when a round completes; `window_start` is the first day the cursor covers.
    `last_counts` and `last_notes` say what the last sync did and met on the way, for an admin.
    """

    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("connection_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320), default="")
    status: Mapped[ConnectionStatus] = mapped_column(enum_column(ConnectionStatus), default=ConnectionStatus.ACTIVE)
    cursor: Mapped[str | None] = mapped_column(Text)
    window_start: Mapped[date | None]
    last_synced_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sync_requested_at: Mapped[datetime | None]
    sync_lease_until: Mapped[datetime | None]
    last_counts: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    last_notes: Mapped[list[str]] = mapped_column(JSONDocument, default=list)

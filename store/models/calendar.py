from __future__ import annotations

from datetime import date

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps
from store.models.connection import SyncState


class Calendar(SyncState, Timestamps, Base):
    """A calendar deskbridge reads (and, for a person's own, writes bookings into).

    A person's primary calendar at a Microsoft or Google connection (`member_id` set,
    `address` their mailbox), or an ICS feed (`member_id` set for a person's feed, empty for an
    organisation resource). Its sync state is a connection's (`SyncState`); `window_start` is the
    first day the cursor covers.
    """

    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("connection_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320), default="")
    window_start: Mapped[date | None]

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps


class CalendarEntry(Timestamps, Base):
    """A booking as written into its person's calendar: the provider's event id and the version sent.

    `written_hash` fingerprints what the calendar holds (the entry as written, or its deletion), so a
    job delivered twice, or one for a change that does not show in the calendar, writes nothing.
    `sequence` grows with every change written (Outlook's transactionId carries it).
    """

    __tablename__ = "calendar_entries"
    __table_args__ = (UniqueConstraint("booking_id", "calendar_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"), index=True)
    provider_event_id: Mapped[str | None] = mapped_column(String(512))
    # Bumped on every change of the booking; `written_sequence` is what the calendar has.
    sequence: Mapped[int] = mapped_column(default=0)
    written_sequence: Mapped[int] = mapped_column(default=-1)
    written_hash: Mapped[str | None] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(default=False)
    last_error: Mapped[str | None] = mapped_column(String(500))
    written_at: Mapped[datetime | None]

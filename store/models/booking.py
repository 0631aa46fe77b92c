from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps, enum_column


class BookingStatus(enum.StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


# A live booking holds its desk and its member; the others are history.
LIVE_STATUSES = (BookingStatus.BOOKED, BookingStatus.CHECKED_IN)
_LIVE_SQL = "status IN ('booked', 'checked_in')"

DESK_OVERLAP = "bookings_desk_no_overlap"
MEMBER_OVERLAP = "bookings_member_no_overlap"


class Booking(Timestamps, Base):
    """A member's claim on a time slot, with or without a desk. Times are UTC, end after start.

    No two live bookings overlap on one desk or one member: PostgreSQL holds that with exclusion
    constraints, SQLite with triggers (both created by the initial migration), and the store maps
    either violation to a Conflict.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="end_after_start"),
        Index("ix_bookings_member_end", "member_id", "end_at"),
        Index("ix_bookings_org_start_id", "organisation_id", "start_at", "id"),  # the listings' keyset
        Index("ix_bookings_desk_start", "desk_id", "start_at"),
        ExcludeConstraint(
            ("desk_id", "="),
            (func.tstzrange(text("start_at"), text("end_at")), "&&"),
            name=DESK_OVERLAP,
            using="gist",
            where=text(f"desk_id IS NOT NULL AND {_LIVE_SQL}"),
        ).ddl_if(dialect="postgresql"),
        ExcludeConstraint(
            ("member_id", "="),
            (func.tstzrange(text("start_at"), text("end_at")), "&&"),
            name=MEMBER_OVERLAP,
            using="gist",
            where=text(_LIVE_SQL),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id", ondelete="RESTRICT"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    details: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(32), default="WFO")
    status: Mapped[BookingStatus] = mapped_column(enum_column(BookingStatus), default=BookingStatus.BOOKED)
    source: Mapped[str] = mapped_column(String(32), default="api")
    cancellation_reason: Mapped[str | None] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    checked_out_at: Mapped[datetime | None]
    # One more on every UPDATE of the row, by the database (so bulk updates count too): the feed's SEQUENCE.
    revision: Mapped[int] = mapped_column(default=0, server_default=text("0"), onupdate=text("revision + 1"))

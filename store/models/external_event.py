from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONDocument, Timestamps, enum_column


class ShowAs(enum.StrEnum):
    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "workingElsewhere"
    UNKNOWN = "unknown"


class WorkingLocation(enum.StrEnum):
    HOME = "home"
    OFFICE = "office"
    CUSTOM = "custom"


class ExternalEvent(Timestamps, Base):
    """An event of a person's calendar (or one instance of a series), as the calendar last said.

    With the organisation's privacy setting on, `title`, `location` and `attendees` stay empty:
    only when someone is busy is kept. `booking_id` is the booking this event made (an office day).
    """

    __tablename__ = "external_events"
    __table_args__ = (
        UniqueConstraint("calendar_id", "event_id"),
        Index("ix_external_events_member_start", "member_id", "start_at"),
        Index("ix_external_events_org_start", "organisation_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(512))
    ical_uid: Mapped[str | None] = mapped_column(String(512))
    recurrence_id: Mapped[str | None] = mapped_column(String(40))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    timezone: Mapped[str | None] = mapped_column(String(64))
    all_day: Mapped[bool] = mapped_column(default=False)
    show_as: Mapped[ShowAs] = mapped_column(enum_column(ShowAs), default=ShowAs.BUSY)
    working_location: Mapped[WorkingLocation | None] = mapped_column(enum_column(WorkingLocation))
    working_location_label: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    title: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(Text, default="")
    categories: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    attendees: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    etag: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[datetime | None]
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    # Why an office day did not become a booking (a clash), shown on the event and in the API.
    booking_refused: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)

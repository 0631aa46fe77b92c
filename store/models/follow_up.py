from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base


class FollowUp(Base):
    """Work a commit owes after it (a booking written into calendars, stored events judged again…),
    recorded in that commit's transaction so that a broker outage cannot lose it.

    One row per (kind, target): asking again while one waits bumps `generation` and makes it due
    again, so a burst of changes is one row. The job that does the work deletes the row when it
    finished, but only the generation it saw when it started (a request made meanwhile stays). The
    scheduler's sweep queues rows still there at `due_at` (their job was lost) and pushes `due_at`
    back by a growing delay, counting `attempts` (store/services/follow_ups.py).
    """

    __tablename__ = "follow_ups"
    __table_args__ = (
        UniqueConstraint("kind", "target_id"),
        # The sweep reads only what is due, oldest first.
        Index("ix_follow_ups_due_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int]
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(default=1)
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)

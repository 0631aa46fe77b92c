from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
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
    # Two indexes only (every booking change may write a row): the key, and `due_at` for the sweep,
    # which reads only what is due, oldest first. None on the organisation: rows live minutes, so an
    # organisation's deletion scans a small table.
    __table_args__ = (Index("ix_follow_ups_due_at", "due_at"),)

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    target_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    generation: Mapped[int] = mapped_column(default=1)
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)

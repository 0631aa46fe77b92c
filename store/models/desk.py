from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps


class Desk(Timestamps, Base):
    """A bookable place: a desk such as "11", a room, a parking space."""

    __tablename__ = "desks"
    __table_args__ = (UniqueConstraint("organisation_id", "building", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(100))
    building: Mapped[str] = mapped_column(String(100), default="")
    floor: Mapped[str] = mapped_column(String(50), default="")
    zone: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(32), default="desk")
    active: Mapped[bool] = mapped_column(default=True)

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps, enum_column


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class MemberStatus(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    REMOVED = "removed"


class Member(Timestamps, Base):
    """A person's membership of one organisation. Removal keeps the row and its history."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("organisation_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    # Stored lower-cased: addresses are compared case-insensitively everywhere.
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(enum_column(Role), default=Role.MEMBER)
    status: Mapped[MemberStatus] = mapped_column(enum_column(MemberStatus), default=MemberStatus.INVITED)
    api_access: Mapped[bool] = mapped_column(default=False)
    removed_at: Mapped[datetime | None]

    @property
    def username(self) -> str:
        """What WiggleDesk calls the user: the display name, else the address's local part."""
        return self.display_name or self.email.split("@", 1)[0]

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONDocument, enum_column
from store.models.member import MemberStatus


class MemberRemoval(Base):
    """What one removal of a member took away, written in the removal's transaction, so that it can be
    undone (store.services.restores) within the organisation's `offboarding_undo_days`.

    Ids, not copies: the bookings and tokens keep their rows (cancelled, revoked), so a restore reads
    them as they are then. Teams are kept with their names, since a team may be deleted meanwhile.
    """

    __tablename__ = "member_removals"
    __table_args__ = (Index("ix_member_removals_member_removed", "member_id", "removed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    removed_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(64))
    # The membership as it was: invited or active, with or without API access.
    status_before: Mapped[MemberStatus] = mapped_column(enum_column(MemberStatus))
    api_access: Mapped[bool]
    # [{"id": team id, "name": its name then}], the teams they were in.
    teams: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    token_ids: Mapped[list[int]] = mapped_column(JSONDocument)  # the tokens the removal revoked
    booking_ids: Mapped[list[int]] = mapped_column(JSONDocument)  # the bookings the removal cancelled
    restored_at: Mapped[datetime | None]

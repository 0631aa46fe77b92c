from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONDocument


class DirectoryGroup(Base):
    """A group of a connection's directory; opted-in groups are mirrored as a team."""

    __tablename__ = "directory_groups"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    deleted: Mapped[bool] = mapped_column(default=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    seen_round: Mapped[int] = mapped_column(default=0)
    # The resource as a pushing client (SCIM) last sent it, given back on reads; None for pulled directories.
    document: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class DirectoryMembership(Base):
    """A user's membership of a group, by the directory's own ids (either may arrive first)."""

    __tablename__ = "directory_memberships"

    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True)
    group_external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_external_id: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    seen_round: Mapped[int] = mapped_column(default=0)

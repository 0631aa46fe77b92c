from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONDocument


class DirectoryUser(Base):
    """A person as a connection's directory last described them, and the member they feed.

    Kept even when the person is gone (`deleted`), so a replayed or reordered change finds the
    link and changes nothing twice.
    """

    __tablename__ = "directory_users"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(320), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    guest: Mapped[bool] = mapped_column(default=False)
    org_unit: Mapped[str | None] = mapped_column(String(500))
    deleted: Mapped[bool] = mapped_column(default=False)
    # The scope decision last applied; the sync engine acts only when it changes.
    in_scope: Mapped[bool] = mapped_column(default=False)
    # An admin rejected this person's removal: not proposed again until the directory changes them.
    removal_rejected: Mapped[bool] = mapped_column(default=False, server_default=false())
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    seen_round: Mapped[int] = mapped_column(default=0)
    changed_at: Mapped[datetime | None]
    # The resource as a pushing client (SCIM) last sent it, given back on reads; None for pulled directories.
    document: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)

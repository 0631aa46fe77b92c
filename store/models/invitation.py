from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps, enum_column


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Invitation(Timestamps, Base):
    """An invitation to join. The accept token is made when the email is sent (so no secret waits
    in a queue) and only its hash is kept. One pending invitation per address at a time: concurrent
    invitations of one address meet the partial unique index, and all but one answer a conflict."""

    __tablename__ = "invitations"
    __table_args__ = (
        Index(
            "uq_invitations_pending_email",
            "organisation_id",
            "email",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[InvitationStatus] = mapped_column(enum_column(InvitationStatus), default=InvitationStatus.PENDING)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(32), default="api")
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

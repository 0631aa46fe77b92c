from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, Timestamps


class PushChannel(Timestamps, Base):
    """A live push channel at a provider (Graph subscription, Google watch channel) for a connection.

    Only a hash of the channel's secret (Graph clientState, Google channel token) is kept: a
    notification is genuine when its secret hashes to it (compared in constant time).
    """

    __tablename__ = "push_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    # Set for a calendar's channel (a person's events); empty for the directory's own.
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[str] = mapped_column(String(255), unique=True)
    resource: Mapped[str] = mapped_column(String(500))
    resource_id: Mapped[str | None] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import String, false
from sqlalchemy.orm import Mapped, mapped_column

from store.columns import BigId
from store.models.base import Base, JSONDocument, Timestamps, enum_column


class DirectoryPolicy(enum.StrEnum):
    INVITE = "invite"  # people a directory brings in get an invitation email
    AUTO_ACCEPT = "auto_accept"  # they become members at once (organisations that sign in with SSO)


class Organisation(Timestamps, Base):
    """A customer: every other row belongs to exactly one organisation."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Off by default, as WiggleDesk ships it: an admin turns the API on for the organisation.
    api_enabled: Mapped[bool] = mapped_column(default=False)
    # Outbox sequence counter; bumping it row-locks the organisation until commit, so events
    # become visible to the pull API in sequence order.
    last_event_seq: Mapped[int] = mapped_column(BigId, default=0)
    directory_policy: Mapped[DirectoryPolicy] = mapped_column(
        enum_column(DirectoryPolicy), default=DirectoryPolicy.INVITE, server_default=DirectoryPolicy.INVITE.value
    )
    # Calendars: keep only when people are busy (no titles, locations or attendees), how many days
    # ahead they are read, and which events count as office days (see sync/calendar/rules.py).
    calendar_busy_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    calendar_window_days: Mapped[int] = mapped_column(default=60, server_default="60")
    office_rules: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict, server_default="{}")
    # How many days a removed member can be brought back as they were (store.services.restores); 0: never.
    offboarding_undo_days: Mapped[int] = mapped_column(default=30, server_default="30")
    # A whole day out of office (a calendar's or a peer platform's time off) cancels that day's desk bookings.
    release_on_absence: Mapped[bool] = mapped_column(default=False, server_default=false())

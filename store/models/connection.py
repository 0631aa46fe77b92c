from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, JSONDocument, Timestamps, enum_column


class ConnectionKind(enum.StrEnum):
    MICROSOFT = "microsoft"
    GOOGLE = "google"
    SCIM = "scim"
    CSV = "csv"
    ICS = "ics"  # a calendar feed (a person's, or an organisation resource's)
    # Peer platforms: people read as a directory, everyone's events polled into per-person calendars.
    WHENIWORK = "wheniwork"
    KADENCE = "kadence"
    RESOURCEGURU = "resourceguru"
    CALDAV = "caldav"  # one person's CalDAV account: calendars read and written (connectors/caldav)


class ConnectionStatus(enum.StrEnum):
    ACTIVE = "active"
    SYNCING = "syncing"
    ERROR = "error"  # the last sync failed; it is retried
    ACTION_REQUIRED = "action_required"  # only an admin can fix it (credentials, permissions)
    REMOVALS_HELD = "removals_held"  # syncs go on, but removals over the limit wait for an admin (held_plan_id)


class SyncState:
    """What a thing synced on its own keeps about its syncs: connections and calendars alike.

    `cursor` is the connector's opaque position (a delta link, a sync token, an ETag), saved only when a
    round completes; `last_counts` and `last_notes` say what the last sync did and met, for an admin.
    The lifecycle over these columns (ask, claim, finish, fail) is `store/services/sync_leases.py`.
    """

    status: Mapped[ConnectionStatus] = mapped_column(enum_column(ConnectionStatus), default=ConnectionStatus.ACTIVE)
    cursor: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_counts: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    last_notes: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    # Coalescing: a sync is queued when this goes from empty to set; the sync clears it as it starts.
    sync_requested_at: Mapped[datetime | None]
    # One sync at a time: a running sync holds the row until then (a crashed one lets go).
    sync_lease_until: Mapped[datetime | None]


class Connection(SyncState, Timestamps, Base):
    """A directory an organisation syncs people from, with its credentials and where the last sync ended.

    `credentials_encrypted` holds the connector's secrets (a client secret, a service-account key,
    a SCIM bearer token's hash lives in `token_hash` instead) encrypted with the secret box.
    `settings` holds the connector's plain options and the scope; its sync state is `SyncState`'s.
    """

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ConnectionKind] = mapped_column(enum_column(ConnectionKind))
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Marks what a full round saw: rows not marked with the round's number by its end are gone.
    round: Mapped[int] = mapped_column(default=0)
    # The failing state the last outcome left it in (error or action_required; None after a good sync).
    # A sync's claim overwrites `status` with syncing, so this is what tells a failure that is news (an
    # admin is told: connection.failed, connection.action_required) from a retry failing again.
    failing: Mapped[ConnectionStatus | None] = mapped_column(enum_column(ConnectionStatus))
    # Why its push channels could not be opened or renewed; None while they work (polling still syncs it).
    channel_error: Mapped[str | None] = mapped_column(Text)
    # New settings (a scope): the next sync decides everyone again, not only whom the directory changed.
    decide_everyone: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The plan (its public id, plan_…) holding removals over the connection's removal limit for an admin.
    held_plan_id: Mapped[str | None] = mapped_column(String(40))

"""Directory connections: their settings, encrypted credentials, sync state and push channels.

What a sync *does* with a directory's records is the worker's sync engine (worker/directory);
this module keeps the connection itself: who may sync it now (a lease), whether a sync is
already asked for (so a burst of notifications makes one sync), and how the last one ended.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from store import kinds, outbox
from store.columns import utcnow
from store.errors import Invalid, NotFound
from store.models import Connection, ConnectionKind, ConnectionStatus, PushChannel
from store.secret_box import SecretBox
from store.services import follow_ups
from store.services.members import hash_secret

SYNC_LEASE = timedelta(minutes=15)
SCIM_TOKEN_PREFIX = "dbscim_"  # noqa: S105 (a prefix that makes leaked tokens recognisable, not a secret)


@dataclass(frozen=True, slots=True)
class Scope:
    """Who of a directory belongs in the organisation.

    Nothing given: every enabled user with a mailbox who is not a guest. Each kind of criterion
    given narrows it (a user must match one group, one org unit and one domain of those given).
    """

    groups: frozenset[str] = frozenset()  # group ids (Graph) or addresses (Google), case-insensitive
    org_units: tuple[str, ...] = ()  # Google orgUnitPath prefixes
    domains: frozenset[str] = frozenset()
    include_guests: bool = False
    include_without_mailbox: bool = False
    team_groups: frozenset[str] = field(default=frozenset())  # groups mirrored as teams; "*" for all

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Scope:
        """The scope kept in a connection's settings (already validated)."""
        scope = settings.get("scope") or {}
        return cls(
            groups=frozenset(item.lower() for item in scope.get("groups", ())),
            org_units=tuple(scope.get("org_units", ())),
            domains=frozenset(item.lower() for item in scope.get("domains", ())),
            include_guests=bool(scope.get("include_guests", False)),
            include_without_mailbox=bool(scope.get("include_without_mailbox", False)),
            team_groups=frozenset(item.lower() for item in settings.get("team_groups", ())),
        )


def validate_settings(kind: ConnectionKind, settings: dict[str, Any]) -> dict[str, Any]:
    """A clean copy of `settings` as the kind's descriptor takes them, or Invalid naming the first thing wrong."""
    try:
        return kinds.rules().clean_settings(kind, settings)
    except ValueError as error:
        raise Invalid(str(error), field=getattr(error, "field", "settings")) from None


def reads_calendars(connection: Connection) -> bool:
    """Whether a connection's calendars are synced (its kind reads calendars; some only when opted in)."""
    return kinds.rules().reads_calendars(connection.kind, connection.settings)


def _owe_calendars(session: Session, connection: Connection) -> None:
    """Record that the connection's calendars are owed being brought in line with it (made, dropped,
    retried, synced: worker.calendar.jobs `follow`), whatever queues that job after the commit."""
    follow_ups.record(session, follow_ups.CONNECTION_CALENDARS, connection.id, connection.organisation_id)


def _check_credentials(kind: ConnectionKind, credentials: dict[str, Any]) -> None:
    try:
        kinds.rules().check_credentials(kind, credentials)
    except ValueError as error:
        raise Invalid(str(error), field=getattr(error, "field", "credentials")) from None


def create(
    session: Session,
    box: SecretBox,
    organisation_id: int,
    kind: ConnectionKind,
    name: str,
    *,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> tuple[Connection, str | None]:
    """Add a connection; returns it and, for SCIM, the bearer token (shown once, only its hash is kept)."""
    name = " ".join(name.split())
    if not name:
        raise Invalid("a connection needs a name", field="name")
    clean = validate_settings(kind, settings or {})
    credentials = credentials or {}
    _check_credentials(kind, credentials)
    connection = Connection(organisation_id=organisation_id, kind=kind, name=name, settings=clean)
    if credentials:
        connection.credentials_encrypted = box.encrypt(json.dumps(credentials))
    token = None
    if kind is ConnectionKind.SCIM:
        token = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
        connection.token_hash = hash_secret(token)
    session.add(connection)
    session.flush()
    outbox.record(session, organisation_id, "connection.created", describe(connection))
    if reads_calendars(connection):
        _owe_calendars(session, connection)
    return connection, token


def describe(connection: Connection) -> dict[str, Any]:
    """What events and logs may say about a connection: never its credentials."""
    return {"connection_id": connection.id, "kind": connection.kind, "name": connection.name}


def get(session: Session, organisation_id: int, connection_id: int) -> Connection:
    connection = session.get(Connection, connection_id)
    if connection is None or connection.organisation_id != organisation_id:
        raise NotFound(f"no connection {connection_id}")
    return connection


def select_connections(organisation_id: int) -> Select[Connection]:
    """The organisation's connections, unordered."""
    return select(Connection).where(Connection.organisation_id == organisation_id)


def credentials(box: SecretBox, connection: Connection) -> dict[str, Any]:
    """The connection's secrets in clear, for the connector only."""
    if connection.credentials_encrypted is None:
        return {}
    value: dict[str, Any] = json.loads(box.decrypt(connection.credentials_encrypted))
    return value


def update_connection(
    session: Session,
    box: SecretBox,
    connection: Connection,
    *,
    name: str | None = None,
    settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> Connection:
    """Change a connection's name, settings (scope, teams) or credentials.

    New credentials put a connection that needed an admin back to active; a scope change is
    applied by the next sync, which re-decides everyone. When it reads calendars (before or after),
    new settings or credentials owe its calendars a follow-up (`_owe_calendars`).
    """
    reading_before = reads_calendars(connection)
    changed: list[str] = []
    if name is not None and " ".join(name.split()) != connection.name:
        connection.name = " ".join(name.split())
        if not connection.name:
            raise Invalid("a connection needs a name", field="name")
        changed.append("name")
    if settings is not None:
        clean = validate_settings(connection.kind, {**connection.settings, **settings})
        if clean != connection.settings:
            connection.settings = clean
            connection.cursor = None  # a new scope is decided on a complete listing
            changed.append("settings")
    if credentials is not None:
        _check_credentials(connection.kind, credentials)
        connection.credentials_encrypted = box.encrypt(json.dumps(credentials))
        if connection.status is ConnectionStatus.ACTION_REQUIRED:
            connection.status = ConnectionStatus.ACTIVE
        changed.append("credentials")
    if changed:
        outbox.record(
            session, connection.organisation_id, "connection.updated", {**describe(connection), "changed": changed}
        )
    if (reading_before or reads_calendars(connection)) and ("settings" in changed or "credentials" in changed):
        _owe_calendars(session, connection)
    return connection


def delete(session: Session, connection: Connection) -> None:
    """Forget a connection and what its directory said; the members it brought in stay."""
    outbox.record(session, connection.organisation_id, "connection.deleted", describe(connection))
    session.delete(connection)


def rotate_scim_token(session: Session, connection: Connection) -> str:
    """A new SCIM bearer token; the old one stops working at once."""
    if connection.kind is not ConnectionKind.SCIM:
        raise Invalid("only a SCIM connection has a bearer token", field="kind")
    token = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    connection.token_hash = hash_secret(token)
    outbox.record(
        session, connection.organisation_id, "connection.updated", {**describe(connection), "changed": ["token"]}
    )
    return token


def authenticate_scim(session: Session, token: str) -> Connection | None:
    """The SCIM connection a bearer token belongs to, or None."""
    if not token.startswith(SCIM_TOKEN_PREFIX):
        return None
    return session.scalar(
        select(Connection).where(Connection.token_hash == hash_secret(token), Connection.kind == ConnectionKind.SCIM)
    )


# Syncing: ask, claim, finish.


def request_sync(session: Session, connection_id: int, now: datetime | None = None) -> bool:
    """Ask for a sync; True when this request is the one that should enqueue it.

    A sync already asked for and not yet started covers this request too: a burst of
    notifications ends up as one sync.
    """
    result = session.execute(
        update(Connection)
        .where(Connection.id == connection_id, Connection.sync_requested_at.is_(None))
        .values(sync_requested_at=now or utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, connection_id: int, now: datetime | None = None) -> bool:
    """Take the connection for one sync; False when another sync holds it.

    Clears the pending request: notifications arriving from now on ask for the next sync.
    """
    now = now or utcnow()
    result = session.execute(
        update(Connection)
        .where(
            Connection.id == connection_id,
            or_(Connection.sync_lease_until.is_(None), Connection.sync_lease_until < now),
        )
        .values(sync_lease_until=now + SYNC_LEASE, sync_requested_at=None, status=ConnectionStatus.SYNCING)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(
    session: Session,
    connection: Connection,
    *,
    counts: dict[str, int],
    notes: list[str],
    cursor: str | None,
) -> None:
    """A sync ended well: keep where the next one starts, and say so (`connection.synced`)."""
    connection.cursor = cursor
    connection.status = ConnectionStatus.ACTIVE
    connection.last_synced_at = utcnow()
    connection.last_error = None
    connection.last_counts = counts
    connection.last_notes = notes
    connection.sync_lease_until = None
    outbox.record(
        session,
        connection.organisation_id,
        "connection.synced",
        {**describe(connection), "counts": counts},
    )


def fail(session: Session, connection: Connection, message: str, *, action_required: bool, notes: list[str]) -> None:
    """A sync failed: keep the admin-readable reason (`connection.failed`); the cursor stays where it was."""
    connection.status = ConnectionStatus.ACTION_REQUIRED if action_required else ConnectionStatus.ERROR
    connection.last_error = message
    connection.last_notes = notes
    connection.sync_lease_until = None
    outbox.record(
        session,
        connection.organisation_id,
        "connection.failed",
        {**describe(connection), "error": message, "action_required": action_required},
    )


def due_for_sync(
    session: Session,
    *,
    every: timedelta,
    now: datetime | None = None,
    capability: str = kinds.READS_DIRECTORY,
) -> list[int]:
    """Connections of the kinds with `capability` (read by polling) whose last sync is older than `every`."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Connection.id)
            .where(
                Connection.kind.in_(kinds.that(capability)),
                Connection.status != ConnectionStatus.ACTION_REQUIRED,
                or_(Connection.last_synced_at.is_(None), Connection.last_synced_at < now - every),
                or_(Connection.sync_lease_until.is_(None), Connection.sync_lease_until < now),
            )
            .order_by(Connection.id)
        )
    )


def forgotten_requests(session: Session, *, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Syncs asked for long ago and never started (their job was lost with a broker outage)."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Connection.id)
            .where(
                Connection.sync_requested_at < now - older_than,
                or_(Connection.sync_lease_until.is_(None), Connection.sync_lease_until < now),
            )
            .order_by(Connection.id)
        )
    )


# Push channels.


def new_channel_secret() -> str:
    """A random secret for a channel (Graph clientState is at most 128 characters)."""
    return secrets.token_urlsafe(32)


def add_channel(
    session: Session,
    connection: Connection,
    *,
    provider_id: str,
    resource: str,
    expires_at: datetime,
    secret: str,
    resource_id: str | None = None,
) -> PushChannel:
    """Keep a channel just opened at the provider."""
    channel = PushChannel(
        connection_id=connection.id,
        provider_id=provider_id,
        resource=resource,
        resource_id=resource_id,
        secret_hash=hash_secret(secret),
        expires_at=expires_at,
    )
    session.add(channel)
    session.flush()
    return channel


def channels(session: Session, connection_id: int) -> list[PushChannel]:
    return list(
        session.scalars(select(PushChannel).where(PushChannel.connection_id == connection_id).order_by(PushChannel.id))
    )


def verify_channel(
    session: Session, provider_id: str, secret: str, resource_id: str | None = None
) -> PushChannel | None:
    """The channel a notification claims to come from, if its secret (and Google resource id) match."""
    channel = session.scalar(select(PushChannel).where(PushChannel.provider_id == provider_id))
    if channel is None:
        # Compare anyway, so an unknown id takes as long as a wrong secret.
        hmac.compare_digest(hash_secret(secret), hash_secret(""))
        return None
    if not hmac.compare_digest(channel.secret_hash, hash_secret(secret)):
        return None
    if channel.resource_id is not None and resource_id != channel.resource_id:
        return None
    return channel


def extend_channel(session: Session, channel_id: int, expires_at: datetime) -> None:
    """Note a channel's new expiry after a renewal that kept it (Graph)."""
    session.get_one(PushChannel, channel_id).expires_at = expires_at


def drop_channel(session: Session, channel_id: int) -> None:
    """Forget a channel (closed, or replaced by a new one)."""
    channel = session.get(PushChannel, channel_id)
    if channel is not None:
        session.delete(channel)


def pushing_connection_ids(session: Session) -> list[int]:
    """Connections whose directories can push changes and that are not waiting for an admin."""
    return list(
        session.scalars(
            select(Connection.id)
            .where(
                Connection.kind.in_(kinds.that(kinds.RECEIVES_PUSHES)),
                Connection.status != ConnectionStatus.ACTION_REQUIRED,
            )
            .order_by(Connection.id)
        )
    )

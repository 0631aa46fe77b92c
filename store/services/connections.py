"""Directory connections: their settings, encrypted credentials and sync state (push channels: push_channels.py).

What a sync *does* with a directory's records is the worker's sync engine (worker/directory);
this module keeps the connection itself: who may sync it now (a lease), whether a sync is
already asked for (so a burst of notifications makes one sync), and how the last one ended.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from store import kinds, outbox
from store.columns import utcnow
from store.errors import Invalid, NotFound
from store.models import Connection, ConnectionKind, ConnectionStatus
from store.secret_box import SecretBox
from store.services import follow_ups
from store.services.members import hash_secret
from store.services.sync_leases import SyncLease

SYNC_LEASE = timedelta(minutes=15)
LEASE = SyncLease(Connection, SYNC_LEASE)
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
            connection.cursor = None  # a new scope is decided on a complete listing…
            connection.decide_everyone = True  # …for everyone, not only whom the directory changed
            changed.append("settings")
    if credentials is not None:
        _check_credentials(connection.kind, credentials)
        connection.credentials_encrypted = box.encrypt(json.dumps(credentials))
        if connection.status is ConnectionStatus.ACTION_REQUIRED:
            connection.status = ConnectionStatus.ACTIVE
        if connection.failing is ConnectionStatus.ACTION_REQUIRED:
            # An admin acted: refused again is news again, and a good sync is a recovery.
            connection.failing = ConnectionStatus.ERROR
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


# Syncing: ask, claim, finish (the lifecycle calendars share: store/services/sync_leases.py).


def request_sync(session: Session, connection_id: int, now: datetime | None = None) -> bool:
    """Ask for a sync; True when this request is the one that should enqueue it.

    A sync already asked for and not yet started covers this request too: a burst of
    notifications ends up as one sync.
    """
    return LEASE.request(session, connection_id, now)


def claim(session: Session, connection_id: int, now: datetime | None = None) -> bool:
    """Take the connection for one sync; False when another sync holds it.

    Clears the pending request: notifications arriving from now on ask for the next sync.
    """
    return LEASE.claim(session, connection_id, now)


def finish(
    session: Session,
    connection: Connection,
    *,
    counts: dict[str, int],
    notes: list[str],
    cursor: str | None,
) -> None:
    """A sync ended well: keep where the next one starts, and say so (`connection.synced`; and
    `connection.recovered` when it was failing)."""
    LEASE.finished(connection, cursor=cursor, counts=counts, notes=notes)
    if connection.held_plan_id:
        connection.status = ConnectionStatus.REMOVALS_HELD  # syncs go on; the held removals still wait
    outbox.record(
        session,
        connection.organisation_id,
        "connection.synced",
        {**describe(connection), "counts": counts},
    )
    if connection.failing is not None:
        was, connection.failing = connection.failing, None
        outbox.record(
            session,
            connection.organisation_id,
            "connection.recovered",
            {**describe(connection), "part": SYNC, "was": was},
        )


def release(session: Session, connection: Connection) -> None:
    """Let go of a claim without a sync having run (a plan that could not be applied): status as before."""
    connection.sync_lease_until = None
    if connection.status is ConnectionStatus.SYNCING:
        connection.status = ConnectionStatus.REMOVALS_HELD if connection.held_plan_id else ConnectionStatus.ACTIVE


# What failed, in health events: the sync, the push channels, or a peer platform's webhook delivery.
SYNC, PUSH_CHANNEL, DELIVERY = "sync", "push_channel", "delivery"


def fail(
    session: Session,
    connection: Connection,
    message: str,
    *,
    action_required: bool,
    notes: list[str],
    keeps_polling: bool = False,
) -> None:
    """A sync failed: keep the admin-readable reason; the cursor stays where it was.

    `action_required`: only an admin can fix it. The status is then `action_required` (polls leave
    it alone) unless `keeps_polling` (a secret no key opens: the next poll tries again, so fixing the
    key is enough), and either way admins hear `connection.action_required`.
    """
    LEASE.failed(connection, message, action_required=action_required and not keeps_polling, notes=notes)
    note_failure(session, connection, message, action_required=action_required)


def note_failure(
    session: Session, connection: Connection, message: str, *, action_required: bool, part: str = SYNC
) -> None:
    """Keep the failing state a failure leaves and, when it is news, say so: `connection.action_required`
    (an admin must act) or `connection.failed` (it is retried). The same failure again (a retry, a
    poll) says nothing more; `finish` says `connection.recovered`."""
    state = ConnectionStatus.ACTION_REQUIRED if action_required else ConnectionStatus.ERROR
    if connection.failing is state:
        return
    connection.failing = state
    if action_required:
        outbox.record(
            session,
            connection.organisation_id,
            "connection.action_required",
            {**describe(connection), "error": message, "part": part},
        )
    else:
        outbox.record(
            session,
            connection.organisation_id,
            "connection.failed",
            {**describe(connection), "error": message, "part": part},
        )


def channel_failed(session: Session, connection: Connection, message: str) -> None:
    """Its push channels could not be opened or renewed (polling still syncs it): `connection.failed`
    the first time, not at every renewal that fails again."""
    if connection.channel_error is not None:
        connection.channel_error = message
        return
    connection.channel_error = message
    outbox.record(
        session,
        connection.organisation_id,
        "connection.failed",
        {**describe(connection), "error": message, "part": PUSH_CHANNEL},
    )


def channels_work(session: Session, connection: Connection) -> None:
    """Its push channels were opened or renewed: `connection.recovered` if they had failed."""
    if connection.channel_error is None:
        return
    connection.channel_error = None
    outbox.record(
        session,
        connection.organisation_id,
        "connection.recovered",
        {**describe(connection), "part": PUSH_CHANNEL, "was": ConnectionStatus.ERROR},
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
            .where(Connection.kind.in_(kinds.that(capability)), *LEASE.due(every=every, now=now))
            .order_by(Connection.id)
        )
    )


def forgotten_requests(session: Session, *, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Syncs asked for long ago and never started (their job was lost with a broker outage)."""
    return LEASE.forgotten(session, older_than=older_than, now=now)

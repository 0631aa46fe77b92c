"""Push channels kept at providers (Graph subscriptions, Google watch channels): a connection's own, on its
directory, and its people's calendars' (`calendar_id` set). One bookkeeping for both: kept with a hashed
secret, verified in constant time, extended, dropped; and which connections and calendars keep any.

Opening, renewing and closing them at the provider is the worker's (worker/channels.py).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import kinds
from store.models import Calendar, Connection, ConnectionStatus, PushChannel
from store.services.members import hash_secret


def new_secret() -> str:
    """A random secret for a channel (Graph clientState is at most 128 characters)."""
    return secrets.token_urlsafe(32)


def add(
    session: Session,
    connection_id: int,
    calendar_id: int | None,
    *,
    provider_id: str,
    resource: str,
    expires_at: datetime,
    secret: str,
    resource_id: str | None = None,
) -> PushChannel:
    """Keep a channel just opened at the provider: the directory's (`calendar_id` None) or a calendar's."""
    channel = PushChannel(
        connection_id=connection_id,
        calendar_id=calendar_id,
        provider_id=provider_id,
        resource=resource,
        resource_id=resource_id,
        secret_hash=hash_secret(secret),
        expires_at=expires_at,
    )
    session.add(channel)
    session.flush()
    return channel


def held(session: Session, connection_id: int, calendar_id: int | None) -> list[PushChannel]:
    """The channels on a connection's directory (`calendar_id` None) or on one of its calendars."""
    return list(
        session.scalars(
            select(PushChannel)
            .where(
                PushChannel.connection_id == connection_id,
                PushChannel.calendar_id.is_(None) if calendar_id is None else PushChannel.calendar_id == calendar_id,
            )
            .order_by(PushChannel.id)
        )
    )


def of_calendars(session: Session, connection_id: int) -> dict[int, list[PushChannel]]:
    """Every calendar channel of a connection, by calendar id."""
    found: dict[int, list[PushChannel]] = {}
    for row in session.scalars(
        select(PushChannel)
        .where(PushChannel.connection_id == connection_id, PushChannel.calendar_id.is_not(None))
        .order_by(PushChannel.id)
    ):
        found.setdefault(int(row.calendar_id or 0), []).append(row)
    return found


def verify(session: Session, provider_id: str, secret: str, resource_id: str | None = None) -> PushChannel | None:
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


def extend(session: Session, channel_id: int, expires_at: datetime) -> None:
    """Note a channel's new expiry after a renewal that kept it (Graph)."""
    session.get_one(PushChannel, channel_id).expires_at = expires_at


def drop(session: Session, channel_id: int) -> None:
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


def pushing_calendar_ids(session: Session) -> list[int]:
    """Calendars whose provider can push and that (with their connection) are not waiting for an admin."""
    return list(
        session.scalars(
            select(Calendar.id)
            .join(Connection, Connection.id == Calendar.connection_id)
            .where(
                Connection.kind.in_(kinds.that(kinds.RECEIVES_PUSHES)),
                Connection.status != ConnectionStatus.ACTION_REQUIRED,
                Calendar.status != ConnectionStatus.ACTION_REQUIRED,
            )
            .order_by(Calendar.id)
        )
    )

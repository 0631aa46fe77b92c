"""Push channels of directory connections: opened, renewed before they expire, and closed.

A connection of a kind that can push (Microsoft, Google) keeps its channels open so that a change
in the directory starts a sync within seconds; the scheduler's polling is the safety net.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from connectors.push import PushChannel as ProviderChannel
from connectors.records import ConnectorError
from store.db import transaction
from store.models import Connection, ConnectionStatus, PushChannel
from store.services import connections
from sync.directory import readers
from worker.calendar import channels as calendar_channels
from worker.push_channels import ChannelGone, Held, maintain, notification_url, provider_channel, pushes, quietly_close
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def ensure(runtime: Runtime, connection_id: int, *, recreate: bool = False) -> int:
    """Open the connection's channels if it has none (or `recreate`), renew those about to expire.

    Returns how many channels were opened or renewed. A provider's refusal is logged, never raised:
    polling still keeps the connection in step.
    """
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or not pushes(connection):
            return 0
        if connection.status is ConnectionStatus.ACTION_REQUIRED:
            return 0
        kind, settings = connection.kind, dict(connection.settings)
        credentials = connections.credentials(runtime.secret_box, connection)
        rows = _directory_channels(session, connection_id)
        held = [Held.of(row) for row in rows]
    url = notification_url(runtime.public_base_url, kind, connection_id)
    subscriber = readers.make_subscriber(kind, settings, credentials, runtime.directory)

    def keep(session: Session, channel: ProviderChannel, secret: str) -> None:
        _keep(session, session.get_one(Connection, connection_id), channel, secret)

    try:
        return maintain(runtime, subscriber, url, held, keep, recreate=recreate)
    except ChannelGone as gone:
        return gone.changed + ensure(runtime, connection_id, recreate=True)
    except ConnectorError as error:
        logger.warning("push channels of connection %d: %s", connection_id, error.message)
        return 0


def close(runtime: Runtime, connection_id: int) -> None:
    """Close every channel of a connection at the provider (best effort) and forget them."""
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or not pushes(connection):
            return
        kind, settings = connection.kind, dict(connection.settings)
        credentials = connections.credentials(runtime.secret_box, connection)
        stored = [(channel.id, provider_channel(channel)) for channel in _directory_channels(session, connection_id)]
    subscriber = readers.make_subscriber(kind, settings, credentials, runtime.directory)
    for _, channel in stored:
        quietly_close(subscriber, channel)
    with transaction(runtime.session_factory) as session:
        for row_id, _ in stored:
            connections.drop_channel(session, row_id)
    # The people's calendars of the connection have channels of their own, closed with it.
    calendar_channels.close_connection(runtime, connection_id)


def renew_all(runtime: Runtime) -> int:
    """Renew or open channels for every pushing connection (the scheduler's job)."""
    with transaction(runtime.session_factory) as session:
        ids = connections.pushing_connection_ids(session)
    return sum(ensure(runtime, connection_id) for connection_id in ids)


def _directory_channels(session: Session, connection_id: int) -> list[PushChannel]:
    """The connection's own channels (users, groups), not those on its people's calendars."""
    return [row for row in connections.channels(session, connection_id) if row.calendar_id is None]


def _keep(session: Session, connection: Connection, channel: ProviderChannel, secret: str) -> None:
    connections.add_channel(
        session,
        connection,
        provider_id=channel.provider_id,
        resource=channel.resource,
        resource_id=channel.resource_id,
        expires_at=channel.expires_at,
        secret=secret,
    )

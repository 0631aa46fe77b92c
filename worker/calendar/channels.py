"""Push channels on people's calendars: a Graph subscription or a Google watch channel per person.

They post to the connection's push URL like the directory's channels (`/push/{kind}/{connection_id}`);
the stored row's `calendar_id` tells api/push that a notification asks for that calendar's sync.
Upkeep (open, renew a third before expiry, reopen when gone) is the directory's `maintain`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from connectors.push import PushChannel as ProviderChannel
from connectors.records import ConnectorError
from store.db import transaction
from store.models import Calendar, Connection, ConnectionStatus
from store.services import calendars, connections
from sync.calendar import readers
from worker.push_channels import ChannelGone, Held, maintain, notification_url, pushes
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def ensure(runtime: Runtime, calendar_id: int, *, recreate: bool = False) -> int:
    """Open the calendar's channel if it has none (or `recreate`), renew one about to expire.

    Returns how many channels were opened or renewed; a provider's refusal is logged, not raised
    (polling still keeps the calendar in step).
    """
    with transaction(runtime.session_factory) as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None or calendar.status is ConnectionStatus.ACTION_REQUIRED:
            return 0
        connection = session.get_one(Connection, calendar.connection_id)
        if not pushes(connection) or connection.status is ConnectionStatus.ACTION_REQUIRED:
            return 0
        source = readers.source_of(session, runtime.secret_box, calendar)
        held = [Held.of(row) for row in calendars.channels(session, calendar_id)]
        connection_id = connection.id
    subscriber = readers.make_subscriber(source, runtime.directory)
    if subscriber is None:
        return 0
    url = notification_url(runtime.public_base_url, source.kind, connection_id)

    def keep(session: Session, channel: ProviderChannel, secret: str) -> None:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None:  # the person left while the channel opened: it expires on its own
            return
        calendars.add_channel(
            session,
            calendar,
            secret=secret,
            provider_id=channel.provider_id,
            resource=channel.resource,
            resource_id=channel.resource_id,
            expires_at=channel.expires_at,
        )

    try:
        return maintain(runtime, subscriber, url, held, keep, recreate=recreate)
    except ChannelGone as gone:
        return gone.changed + ensure(runtime, calendar_id, recreate=True)
    except ConnectorError as error:
        logger.warning("push channel of calendar %d: %s", calendar_id, error.message)
        return 0


def renew_all(runtime: Runtime) -> int:
    """Open or renew the channels of every calendar that can push (the scheduler's job)."""
    with transaction(runtime.session_factory) as session:
        ids = calendars.pushing_calendar_ids(session)
    return sum(ensure(runtime, calendar_id) for calendar_id in ids)


@dataclass(frozen=True)
class Opened:
    """A calendar's channels as stored, with the person they act as: enough to close them after it is gone."""

    calendar_id: int
    address: str
    channels: tuple[tuple[int, ProviderChannel], ...]  # (row id, channel)


def opened(session: Session, connection_id: int) -> list[Opened]:
    """The calendar channels of a connection, read before its calendars change (a Google channel is
    stopped as its person, whom only the calendar row names)."""
    found = []
    for calendar_id, rows in calendars.channels_of_connection(session, connection_id).items():
        calendar = session.get(Calendar, calendar_id)
        if calendar is not None:
            channels = tuple((row.id, Held.of(row).channel) for row in rows)
            found.append(Opened(calendar_id, calendar.address, channels))
    return found


def close(runtime: Runtime, connection_id: int, closing: list[Opened]) -> None:
    """Close these channels of a connection's calendars at the provider (best effort) and forget them."""
    if not closing:
        return
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or not pushes(connection):
            return
        kind, settings = connection.kind, dict(connection.settings)
        credentials = connections.credentials(runtime.secret_box, connection)
    for item in closing:
        source = readers.Source(kind, settings, credentials, item.address, "UTC")
        subscriber = readers.make_subscriber(source, runtime.directory)
        for _, channel in item.channels:
            try:
                if subscriber is not None:
                    subscriber.unsubscribe(channel)
            except ConnectorError as error:
                logger.info("could not close channel %s: %s", channel.provider_id, error.message)
    with transaction(runtime.session_factory) as session:
        for item in closing:
            for row_id, _ in item.channels:
                connections.drop_channel(session, row_id)


def close_connection(runtime: Runtime, connection_id: int) -> None:
    """Close every calendar channel of a connection (it is being deleted)."""
    with transaction(runtime.session_factory) as session:
        closing = opened(session, connection_id)
    close(runtime, connection_id, closing)

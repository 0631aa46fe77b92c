"""Push channels of directory connections: opened, renewed before they expire, and closed.

A connection of a kind that can push (Microsoft, Google) keeps its channels open so that a change
in the directory starts a sync within seconds; the scheduler's polling is the safety net.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from connectors.push import PushChannel as ProviderChannel
from connectors.push import PushSubscriber
from connectors.records import ConnectorError
from store.columns import utcnow
from store.db import transaction
from store.models import Connection, ConnectionStatus, PushChannel
from store.services import connections
from worker.directory import readers
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

LIFETIME = timedelta(days=2)  # asked for; providers may give less (Graph clamps, Google caps)
RENEW_WITHIN = timedelta(hours=6)


def pushes(connection: Connection) -> bool:
    """Whether the connection's kind opens push channels to us (asked of the kind registry)."""
    return REGISTRY.can(connection.kind, Capability.RECEIVES_PUSHES)


def notification_url(public_base_url: str, kind: str, connection_id: int) -> str:
    """Where a provider posts change notifications for a connection (see api/push)."""
    return f"{public_base_url.rstrip('/')}/push/{kind}/{connection_id}"


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


class ChannelGone(Exception):
    """A renewal was refused: the channel is gone at the provider; `changed` were renewed before."""

    def __init__(self, changed: int) -> None:
        super().__init__(f"a channel is gone after {changed} renewal(s)")
        self.changed = changed


@dataclass(frozen=True)
class Held:
    """A channel we keep: its row, what the provider knows of it, and how early to renew it."""

    row_id: int
    channel: ProviderChannel
    renew_within: timedelta

    @classmethod
    def of(cls, row: PushChannel) -> Held:
        # Renew once a third of a channel's life is left (at most RENEW_WITHIN before it ends): Graph
        # gives days, Google hours, and the scheduler looks every few minutes.
        return cls(row.id, _provider_channel(row), min(RENEW_WITHIN, (row.expires_at - row.updated_at) / 3))


Keep = Callable[[Session, ProviderChannel, str], None]  # store a channel just opened, with its secret


def maintain(
    runtime: Runtime, subscriber: PushSubscriber, url: str, held: list[Held], keep: Keep, *, recreate: bool
) -> int:
    """Open channels where none are held (or `recreate`), renew the held ones about to expire.

    The upkeep shared by a directory's channels and a calendar's. Returns how many channels were
    opened or renewed; a refusal to open raises ConnectorError, a refused renewal ChannelGone (the
    caller reads its channels again and calls back with `recreate`).
    """
    now = utcnow()
    if recreate or not held:
        for item in held:
            _quietly_close(subscriber, item.channel)
        secret = connections.new_channel_secret()
        opened = subscriber.subscribe(url, url + "/lifecycle", secret, now + LIFETIME)
        with transaction(runtime.session_factory) as session:
            for item in held:
                connections.drop_channel(session, item.row_id)
            for channel in opened:
                keep(session, channel, secret)
        return len(opened)
    changed = 0
    for item in held:
        channel = item.channel
        if channel.expires_at - now > item.renew_within:
            continue
        secret = connections.new_channel_secret()
        try:
            renewed = subscriber.renew(channel, url, secret, now + LIFETIME)
        except ConnectorError as error:
            # Gone at the provider (expired, or removed): the caller opens every channel afresh.
            logger.info("renewing channel %s failed (%s); subscribing again", channel.provider_id, error.message)
            raise ChannelGone(changed) from None
        with transaction(runtime.session_factory) as session:
            if renewed.provider_id == channel.provider_id:
                connections.extend_channel(session, item.row_id, renewed.expires_at)
            else:  # a new channel replaced the old one (Google): it has the new secret
                connections.drop_channel(session, item.row_id)
                keep(session, renewed, secret)
        changed += 1
    return changed


def close(runtime: Runtime, connection_id: int) -> None:
    """Close every channel of a connection at the provider (best effort) and forget them."""
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or not pushes(connection):
            return
        kind, settings = connection.kind, dict(connection.settings)
        credentials = connections.credentials(runtime.secret_box, connection)
        stored = [(channel.id, _provider_channel(channel)) for channel in _directory_channels(session, connection_id)]
    subscriber = readers.make_subscriber(kind, settings, credentials, runtime.directory)
    for _, channel in stored:
        _quietly_close(subscriber, channel)
    with transaction(runtime.session_factory) as session:
        for row_id, _ in stored:
            connections.drop_channel(session, row_id)
    # The people's calendars of the connection have channels of their own, closed with it.
    from worker.calendar import channels as calendar_channels

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


def _provider_channel(channel: PushChannel) -> ProviderChannel:
    return ProviderChannel(
        provider_id=channel.provider_id,
        resource=channel.resource,
        expires_at=channel.expires_at,
        resource_id=channel.resource_id,
    )


def _quietly_close(subscriber: PushSubscriber, channel: ProviderChannel) -> None:
    try:
        subscriber.unsubscribe(channel)
    except ConnectorError as error:
        logger.info("could not close channel %s: %s", channel.provider_id, error.message)

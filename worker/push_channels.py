"""The push-channel lifecycle a directory's channels and a calendar's share: which connections push, where
notifications go, and the upkeep that opens channels, renews them before they expire and closes them.

`worker/directory/channels.py` keeps a connection's own channels (users, groups) with it, and
`worker/calendar/channels.py` each calendar's; both import this module, neither the other's.
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
from store.models import Connection, PushChannel
from store.services import connections
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
        return cls(row.id, provider_channel(row), min(RENEW_WITHIN, (row.expires_at - row.updated_at) / 3))


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
            quietly_close(subscriber, item.channel)
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


def provider_channel(channel: PushChannel) -> ProviderChannel:
    return ProviderChannel(
        provider_id=channel.provider_id,
        resource=channel.resource,
        expires_at=channel.expires_at,
        resource_id=channel.resource_id,
    )


def quietly_close(subscriber: PushSubscriber, channel: ProviderChannel) -> None:
    try:
        subscriber.unsubscribe(channel)
    except ConnectorError as error:
        logger.info("could not close channel %s: %s", channel.provider_id, error.message)

"""Push channels at the providers: one lifecycle for a connection's directory and for its people's calendars.

A connection of a kind that pushes (asked of the kind registry) keeps channels open so that a change starts
a sync within seconds (the polls are the safety net): on its directory (users, groups) and, when it reads
calendars, on each person's events (a Graph subscription or Google watch channel per person). Both post to
the connection's URL (`/push/{kind}/{connection_id}`); the stored row's `calendar_id` tells api/push which
sync a notification asks for. What is watched is a `Watch`; each goes through the same steps:

- **open** where none is held (or when told to `recreate`: new credentials, a channel removed);
- **renew** once a third of a channel's life is left (Graph extends in place, Google replaces);
- **gone**: a refused renewal means the channel is gone at the provider, so every channel of the watch
  is opened afresh;
- **close** at the provider, best effort, and forget (a connection deleted, a calendar dropped).

A provider's refusal is logged, never raised. The rows are `store/services/push_channels.py`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.kind import CalendarSource, Capability
from connectors.kinds import REGISTRY
from connectors.push import PushChannel as ProviderChannel
from connectors.push import PushSubscriber
from connectors.records import ConnectorError
from store.columns import utcnow
from store.db import transaction
from store.models import Calendar, Connection, ConnectionStatus, Organisation, PushChannel
from store.services import connections, push_channels
from sync.calendar import readers as calendar_readers
from sync.directory import readers as directory_readers
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


@dataclass(frozen=True)
class Watch:
    """What a set of channels watches: a connection's directory (`calendar_id` None) or one of its calendars,
    with what its connector needs (read in a transaction, used after it)."""

    connection_id: int
    calendar_id: int | None
    kind: str
    settings: dict[str, Any]
    credentials: dict[str, Any]
    address: str = ""  # a calendar's person (Google stops a channel as them)
    timezone: str = "UTC"

    def subscriber(self, runtime: Runtime) -> PushSubscriber | None:
        """The connector that opens, renews and closes the channels; None where a calendar has none."""
        if self.calendar_id is None:
            return directory_readers.make_subscriber(self.kind, self.settings, self.credentials, runtime.directory)
        source = CalendarSource(self.kind, self.settings, self.credentials, self.address, self.timezone)
        return calendar_readers.make_subscriber(source, runtime.directory)

    def __str__(self) -> str:
        return f"connection {self.connection_id}" if self.calendar_id is None else f"calendar {self.calendar_id}"


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
        channel = ProviderChannel(
            provider_id=row.provider_id, resource=row.resource, expires_at=row.expires_at, resource_id=row.resource_id
        )
        return cls(row.id, channel, min(RENEW_WITHIN, (row.expires_at - row.updated_at) / 3))


class ChannelGone(Exception):
    """A renewal was refused: the channel is gone at the provider; `changed` were renewed before."""

    def __init__(self, changed: int) -> None:
        super().__init__(f"a channel is gone after {changed} renewal(s)")
        self.changed = changed


# Open and renew.


def ensure(runtime: Runtime, connection_id: int, *, recreate: bool = False) -> int:
    """Open the connection's directory channels if it has none (or `recreate`), renew those about to expire.

    Returns how many channels were opened or renewed."""
    return _ensure(runtime, connection_id, None, recreate=recreate)


def ensure_calendar(runtime: Runtime, calendar_id: int, *, recreate: bool = False) -> int:
    """Open the calendar's channel if it has none (or `recreate`), renew one about to expire.

    Returns how many channels were opened or renewed."""
    return _ensure(runtime, None, calendar_id, recreate=recreate)


def renew_directories(runtime: Runtime) -> int:
    """Open or renew the directory channels of every connection that pushes (the scheduler's job)."""
    with transaction(runtime.session_factory) as session:
        ids = push_channels.pushing_connection_ids(session)
    return sum(ensure(runtime, connection_id) for connection_id in ids)


def renew_calendars(runtime: Runtime) -> int:
    """Open or renew the channels of every calendar that can push (the scheduler's job)."""
    with transaction(runtime.session_factory) as session:
        ids = push_channels.pushing_calendar_ids(session)
    return sum(ensure_calendar(runtime, calendar_id) for calendar_id in ids)


def _ensure(runtime: Runtime, connection_id: int | None, calendar_id: int | None, *, recreate: bool) -> int:
    with transaction(runtime.session_factory) as session:
        watch = _watch(session, runtime, connection_id, calendar_id)
        if watch is None:
            return 0
        held = [Held.of(row) for row in push_channels.held(session, watch.connection_id, watch.calendar_id)]
    subscriber = watch.subscriber(runtime)
    if subscriber is None:
        return 0
    try:
        changed = _maintain(runtime, watch, subscriber, held, recreate=recreate)
    except ChannelGone as gone:
        return gone.changed + _ensure(runtime, connection_id, calendar_id, recreate=True)
    except ConnectorError as error:
        logger.warning("push channels of %s: %s", watch, error.message)
        if watch.calendar_id is None:
            _directory_health(runtime, watch.connection_id, error.message)
        return 0
    if watch.calendar_id is None:
        _directory_health(runtime, watch.connection_id, None)
    return changed


def _directory_health(runtime: Runtime, connection_id: int, error: str | None) -> None:
    """Keep whether a directory's channels work (`connections.channel_failed` / `channels_work` say when
    that changes; a person's calendar channels are not their connection's health)."""
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or (error is None and connection.channel_error is None):
            return
        if error is None:
            connections.channels_work(session, connection)
        else:
            connections.channel_failed(session, connection, error)


def _watch(session: Session, runtime: Runtime, connection_id: int | None, calendar_id: int | None) -> Watch | None:
    """What to watch, or None when nothing is (gone, waiting for an admin, of a kind that does not push)."""
    calendar = None
    if calendar_id is not None:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None or calendar.status is ConnectionStatus.ACTION_REQUIRED:
            return None
        connection_id = calendar.connection_id
    connection = session.get(Connection, connection_id)
    if connection is None or not pushes(connection) or connection.status is ConnectionStatus.ACTION_REQUIRED:
        return None
    watch = Watch(
        connection.id,
        calendar_id,
        connection.kind,
        dict(connection.settings),
        connections.credentials(runtime.secret_box, connection),
    )
    if calendar is None:
        return watch
    timezone = session.get_one(Organisation, calendar.organisation_id).timezone
    return replace(watch, address=calendar.address, timezone=timezone)


def _maintain(runtime: Runtime, watch: Watch, subscriber: PushSubscriber, held: list[Held], *, recreate: bool) -> int:
    """Open channels where none are held (or `recreate`), renew the held ones about to expire.

    Returns how many channels were opened or renewed; a refusal to open raises ConnectorError, a refused
    renewal ChannelGone (the caller reads the channels again and calls back with `recreate`).
    """
    url = notification_url(runtime.public_base_url, watch.kind, watch.connection_id)
    now = utcnow()
    if recreate or not held:
        for item in held:
            _quietly_close(subscriber, item.channel)
        secret = push_channels.new_secret()
        opened = subscriber.subscribe(url, url + "/lifecycle", secret, now + LIFETIME)
        with transaction(runtime.session_factory) as session:
            for item in held:
                push_channels.drop(session, item.row_id)
            for channel in opened:
                _keep(session, watch, channel, secret)
        return len(opened)
    changed = 0
    for item in held:
        channel = item.channel
        if channel.expires_at - now > item.renew_within:
            continue
        secret = push_channels.new_secret()
        try:
            renewed = subscriber.renew(channel, url, secret, now + LIFETIME)
        except ConnectorError as error:
            # Gone at the provider (expired, or removed): the caller opens every channel afresh.
            logger.info("renewing channel %s failed (%s); subscribing again", channel.provider_id, error.message)
            raise ChannelGone(changed) from None
        with transaction(runtime.session_factory) as session:
            if renewed.provider_id == channel.provider_id:
                push_channels.extend(session, item.row_id, renewed.expires_at)
            else:  # a new channel replaced the old one (Google): it has the new secret
                push_channels.drop(session, item.row_id)
                _keep(session, watch, renewed, secret)
        changed += 1
    return changed


def _keep(session: Session, watch: Watch, channel: ProviderChannel, secret: str) -> None:
    """Store a channel just opened, with its secret's hash; not when what it watches went meanwhile
    (the person left, the connection was deleted): it expires on its own."""
    if session.get(Calendar if watch.calendar_id is not None else Connection, watch.calendar_id or watch.connection_id):
        push_channels.add(
            session,
            watch.connection_id,
            watch.calendar_id,
            provider_id=channel.provider_id,
            resource=channel.resource,
            resource_id=channel.resource_id,
            expires_at=channel.expires_at,
            secret=secret,
        )


# Close.


@dataclass(frozen=True)
class Opened:
    """A calendar's channels as stored, with the person they act as: enough to close them after it is gone."""

    calendar_id: int | None  # None: the connection's directory
    address: str
    channels: tuple[tuple[int, ProviderChannel], ...]  # (row id, channel)


def opened(session: Session, connection_id: int) -> list[Opened]:
    """The channels of a connection's calendars, read before its calendars change (a Google channel is
    stopped as its person, whom only the calendar row names)."""
    found = []
    for calendar_id, rows in push_channels.of_calendars(session, connection_id).items():
        calendar = session.get(Calendar, calendar_id)
        if calendar is not None:
            found.append(Opened(calendar_id, calendar.address, _stored(rows)))
    return found


def close(runtime: Runtime, connection_id: int, closing: list[Opened]) -> None:
    """Close these channels of a connection at the provider (best effort) and forget them."""
    if not closing:
        return
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or not pushes(connection):
            return
        kind, settings = connection.kind, dict(connection.settings)
        credentials = connections.credentials(runtime.secret_box, connection)
    for item in closing:
        watch = Watch(connection_id, item.calendar_id, kind, settings, credentials, item.address)
        subscriber = watch.subscriber(runtime)
        for _, channel in item.channels:
            if subscriber is not None:
                _quietly_close(subscriber, channel)
    with transaction(runtime.session_factory) as session:
        for item in closing:
            for row_id, _ in item.channels:
                push_channels.drop(session, row_id)


def close_connection(runtime: Runtime, connection_id: int) -> None:
    """Close every channel of a connection, its directory's and its calendars' (it is being deleted)."""
    with transaction(runtime.session_factory) as session:
        own = push_channels.held(session, connection_id, None)
        closing = [Opened(None, "", _stored(own))] if own else []
        closing += opened(session, connection_id)
    close(runtime, connection_id, closing)


def _stored(rows: list[PushChannel]) -> tuple[tuple[int, ProviderChannel], ...]:
    return tuple((row.id, Held.of(row).channel) for row in rows)


def _quietly_close(subscriber: PushSubscriber, channel: ProviderChannel) -> None:
    try:
        subscriber.unsubscribe(channel)
    except ConnectorError as error:
        logger.info("could not close channel %s: %s", channel.provider_id, error.message)

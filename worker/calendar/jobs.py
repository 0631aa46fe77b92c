"""How calendar jobs (queue "calendar") are asked for, and what some of them do; their actors are
declared in worker/actors.py.

- `sync_calendars(connection_id, calendar_ids)`: up to BATCH calendars of one connection read in one
  job (see batch), queued with `enqueue_syncs`: what the poll and the follow-up of a directory sync
  queue, a job per connection and BATCH calendars.
- `sync_calendar(calendar_id)`: one calendar read; asked for with `request_sync` in the caller's
  transaction and queued with `enqueue_sync` after it commits, so a burst of notifications is one sync.
- `write_booking(booking_id)`: a booking written into its person's calendars (see outbound).
- `follow_connection(connection_id, retry)`: a connection's calendars brought in line with who it
  covers, their first syncs and channels asked for. Called after every directory sync, and through
  `calendars_changed` by the API when a connection is made or changed.
- `poll`: the scheduler's job, every minute.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from connectors.kind import Capability
from connectors.kinds import REGISTRY
from infra.redis_client import note_unsent
from store.db import transaction
from store.models import Connection
from store.services import calendars, follow_ups, push_channels
from worker import channels
from worker import follow_ups as worker_follow_ups
from worker.queue import ActorName, Queue
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

QUEUE = "calendar"
BATCH = 50  # calendars of one connection synced in one job


def request_sync(session: Session, calendar_id: int) -> bool:
    """Ask for a sync in the caller's transaction; True when the caller must `enqueue_sync` after commit."""
    return calendars.request_sync(session, calendar_id)


def enqueue_sync(queue: Queue, calendar_id: int) -> None:
    """Queue a sync asked for by `request_sync`. Does not raise: the request is its own durable record
    (`calendars.sync_requested_at`), and `poll` queues requests older than five minutes again."""
    try:
        queue.send(ActorName.SYNC_CALENDAR, calendar_id)
    except Exception:
        note_unsent(logger, "could not enqueue a sync of calendar %d; the scheduler will", calendar_id)


def enqueue_syncs(queue: Queue, connection_id: int, calendar_ids: list[int]) -> None:
    """Queue syncs asked for (`request_sync`) of one connection's calendars, BATCH to a job. Does not
    raise: the scheduler picks up requests left behind."""
    ids = sorted(set(calendar_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        try:
            queue.send(ActorName.SYNC_CALENDARS, connection_id, chunk)
        except Exception:
            note_unsent(logger, "could not enqueue a sync of calendars %s; the scheduler will", chunk)


def calendars_changed(worker_runtime: Runtime, connection_id: int) -> None:
    """For the API, after the commit that made or changed a connection (an ICS feed's address, a Microsoft
    or Google connection's `calendars` switch or credentials): its calendars are made, dropped, retried
    and synced. Does not raise: that commit recorded the follow-up (`connections.create` and
    `update_connection` → `follow_ups.CONNECTION_CALENDARS`), which the sweep queues if this is lost.
    An admin's "sync now" of an ICS feed commits nothing, so when the broker refuses, the follow-up is
    recorded here, for the sweep (best effort: the poll reads the feed at its interval anyway)."""
    try:
        worker_runtime.queue.send(ActorName.FOLLOW_CONNECTION, connection_id, True)
    except Exception:
        note_unsent(logger, "could not enqueue the calendars of connection %d; the sweep will", connection_id)
        _owe_calendars(worker_runtime, connection_id)


def _owe_calendars(worker_runtime: Runtime, connection_id: int) -> None:
    try:
        with transaction(worker_runtime.session_factory) as session:
            connection = session.get(Connection, connection_id)
            if connection is not None:
                follow_ups.record(session, follow_ups.CONNECTION_CALENDARS, connection_id, connection.organisation_id)
    except Exception:
        logger.warning("could not record the calendars owed to connection %d", connection_id, exc_info=True)


def follow(worker_runtime: Runtime, connection_id: int, *, retry: bool = False) -> list[int]:
    """Make and drop the connection's calendars as `calendars.ensure` decides, close the channels of
    those dropped, and ask for a sync of the new ones (with `retry`, of all: the admin changed
    something, so calendars waiting for them are tried again, an ICS feed read from scratch).
    Returns the live calendars' ids. With `retry` it is what an admin's change owes the connection
    (`follow_ups.CONNECTION_CALENDARS`): done once this returns."""
    owed = [(follow_ups.CONNECTION_CALENDARS, connection_id)] if retry else []
    with worker_follow_ups.owed(worker_runtime, *owed):
        return _follow(worker_runtime, connection_id, retry=retry)


def _follow(worker_runtime: Runtime, connection_id: int, *, retry: bool) -> list[int]:
    with transaction(worker_runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None:
            return []
        before = channels.opened(session, connection_id)
        if retry:
            calendars.retry(session, connection_id)
        live = calendars.ensure(session, connection)
        if retry and REGISTRY.can(connection.kind, Capability.ONE_CALENDAR):
            for calendar in live:
                calendar.cursor = None  # the address may be new: no validators of the old one
        fresh = [calendar.id for calendar in live if retry or calendar.last_synced_at is None]
        wanted = [calendar_id for calendar_id in fresh if calendars.request_sync(session, calendar_id)]
        live_ids = [calendar.id for calendar in live]
        pushing = channels.pushes(connection)
        unopened = [item for item in fresh if pushing and not push_channels.held(session, connection_id, item)]
    channels.close(worker_runtime, connection_id, [item for item in before if item.calendar_id not in live_ids])
    enqueue_syncs(worker_runtime.queue, connection_id, wanted)
    for calendar_id in unopened:
        enqueue_channels(worker_runtime.queue, calendar_id, False)
    return live_ids


def after_directory_sync(worker_runtime: Runtime, connection_id: int) -> None:
    """Called by the directory sync once it finished: who the connection covers may have changed."""
    follow(worker_runtime, connection_id)


def enqueue_channels(queue: Queue, calendar_id: int, recreate: bool) -> None:
    """Queue opening or renewing a calendar's push channel. Does not raise, and records no follow-up:
    the scheduler's `calendar.channels` job opens missing channels within 10 minutes, and the poll
    reads the calendar meanwhile."""
    try:
        queue.send(ActorName.ENSURE_CALENDAR_CHANNELS, calendar_id, recreate)
    except Exception:
        note_unsent(logger, "could not enqueue the channel of calendar %d", calendar_id)


def poll(worker_runtime: Runtime) -> int:
    """The scheduler's job: queue a sync of every calendar whose last one is older than the interval,
    and again any sync asked for whose job was lost, a job per connection and BATCH calendars.
    Returns how many calendars were queued."""
    every = timedelta(seconds=worker_runtime.calendar_sync_seconds)
    with transaction(worker_runtime.session_factory) as session:
        due = calendars.due_by_connection(session, every=every, forgotten_after=timedelta(minutes=5))
    for connection_id, calendar_ids in sorted(due.items()):
        enqueue_syncs(worker_runtime.queue, connection_id, calendar_ids)
    return sum(len(ids) for ids in due.values())

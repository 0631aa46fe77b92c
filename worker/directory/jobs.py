"""How directory jobs are asked for (their actors are declared in worker/actors.py), and the poll.

A sync is asked for with `request_sync` inside the caller's transaction and enqueued with
`enqueue_sync` after it commits; while one is asked for and not started, further requests (a
burst of push notifications) are covered by it and enqueue nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from infra.redis_client import note_unsent
from store.db import transaction
from store.services import connections
from worker.queue import ActorName, Queue
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def request_sync(session: Session, connection_id: int) -> bool:
    """Ask for a sync in the caller's transaction; True when the caller must `enqueue_sync` after commit."""
    return connections.request_sync(session, connection_id)


def enqueue_sync(queue: Queue, connection_id: int) -> None:
    """Queue a sync asked for by `request_sync`. Does not raise: the request is its own durable record
    (`connections.sync_requested_at`, set in the asking transaction), and `poll` queues requests older
    than five minutes again."""
    try:
        queue.send(ActorName.SYNC_CONNECTION, connection_id)
    except Exception:
        note_unsent(logger, "could not enqueue a sync of connection %d; the scheduler will", connection_id)


def enqueue_held_mail(queue: Queue, connection_id: int) -> None:
    """Queue the email about a connection's held removals. Does not raise: the hold recorded a follow-up
    (`REMOVALS_HELD_MAIL`), which the sweep queues when this is lost."""
    try:
        queue.send(ActorName.TELL_REMOVALS_HELD, connection_id)
    except Exception:
        note_unsent(logger, "could not enqueue the held-removals email of connection %d", connection_id)


def enqueue_channels(queue: Queue, connection_id: int, recreate: bool) -> None:
    """Queue opening or renewing a connection's push channels. Does not raise, and records no follow-up:
    the scheduler's `directory.channels` job opens missing channels and renews every one within 10
    minutes. A lost `recreate` (new credentials or tenant) leaves the old channels until they fail to
    renew and are opened again; notifications missed meanwhile are read by the interval's poll."""
    try:
        queue.send(ActorName.ENSURE_CHANNELS, connection_id, recreate)
    except Exception:
        note_unsent(logger, "could not enqueue the channels of connection %d", connection_id)


def poll(worker_runtime: Runtime) -> int:
    """The scheduler's job: queue a sync of every polled connection whose last one is older than the
    interval, and again any sync asked for whose job was lost. Returns how many were queued."""
    every = timedelta(seconds=worker_runtime.directory_sync_seconds)
    with transaction(worker_runtime.session_factory) as session:
        due = connections.due_for_sync(session, every=every)
        wanted = [connection_id for connection_id in due if connections.request_sync(session, connection_id)]
        wanted += connections.forgotten_requests(session, older_than=timedelta(minutes=5))
    for connection_id in sorted(set(wanted)):
        enqueue_sync(worker_runtime.queue, connection_id)
    return len(set(wanted))

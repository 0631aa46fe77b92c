"""From committed outbox events to work on the queue.

Called by the store after every commit (see store.outbox.install) with the events it made visible.
It must never raise: the change is committed whatever happens here, and the scheduler's relay job
and sweeps pick up whatever was not enqueued (the broker being down, say).

The relay takes every event waiting, so a burst of commits needs one relay job, not one each:

- On Redis, a commit enqueues a relay job only when none is waiting: `PENDING_KEY` is set (SET NX)
  by whoever enqueues one and deleted by the job as it starts (`relay_starting`), before it reads the
  events. A commit that finds the key set committed before that job starts, so the job sees its
  events. The key expires after PENDING_TTL_MS, so a lost job only costs an extra one later (the
  scheduler relays every 2 s anyway). No delay, so the job does not go through a delay queue.
- In-process (the embedded mode), at most one relay job per RELAY_WINDOW from this process: a commit
  within the window of the last one schedules one at the window's end, unless one is scheduled already.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from dramatiq.brokers.redis import RedisBroker

from store.models import OutboxEvent

logger = logging.getLogger(__name__)

RELAY_WINDOW = 0.02
PENDING_KEY = "deskbridge:relay-pending"
PENDING_TTL_MS = 2_000

_lock = threading.Lock()
_relay_at = 0.0  # monotonic time the latest relay job was scheduled to run


def on_commit(events: list[OutboxEvent]) -> None:
    """Enqueue the work that follows from `events`: the webhook relay, and invitation emails."""
    from worker import actors  # the broker is set by the time anything commits

    try:
        _relay_soon(actors.relay_outbox)
        invited = [event.data["invitation_id"] for event in events if event.type == "membership.invited"]
        if invited:
            actors.enqueue_invitation_emails(invited)
    except Exception:
        logger.exception("could not enqueue the work for %d events; the scheduler will catch up", len(events))


def relay_starting(broker: object) -> None:
    """Called by the relay job before it reads the events: commits from now on enqueue another job.

    Best effort: if Redis does not answer, the key expires on its own.
    """
    if isinstance(broker, RedisBroker):
        try:
            broker.client.delete(PENDING_KEY)
        except redis.RedisError:
            logger.warning("could not clear %s; it expires in %d ms", PENDING_KEY, PENDING_TTL_MS, exc_info=True)


def _relay_soon(relay_outbox: object) -> None:
    broker = relay_outbox.broker  # type: ignore[attr-defined]
    if isinstance(broker, RedisBroker):
        _relay_unless_waiting(relay_outbox, broker)
    else:
        _relay_in_window(relay_outbox)


def _relay_unless_waiting(relay_outbox: object, broker: RedisBroker) -> None:
    """Enqueue a relay job unless one is waiting to start (it will see the events just committed)."""
    if not broker.client.set(PENDING_KEY, b"1", nx=True, px=PENDING_TTL_MS):
        return
    try:
        relay_outbox.send()  # type: ignore[attr-defined]
    except Exception:
        relay_starting(broker)  # so the next commit tries again
        raise


def _relay_in_window(relay_outbox: object) -> None:
    """Schedule a relay job unless one is already scheduled to run after now (it will see these events)."""
    global _relay_at
    with _lock:
        now = time.monotonic()
        if _relay_at > now:
            return
        delay = max(0.0, _relay_at + RELAY_WINDOW - now)
        _relay_at = now + delay
    relay_outbox.send_with_options(delay=int(delay * 1000) or None)  # type: ignore[attr-defined]

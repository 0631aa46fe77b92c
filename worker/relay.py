"""From committed outbox events to work on the queue.

Called by the store after every commit (see store.outbox.install) with the events it made visible.
It must never raise: the change is committed whatever happens here, and the scheduler's relay job
and sweeps pick up whatever was not enqueued (the broker being down, say). Nothing here needs a
follow-up record (store/services/follow_ups.py): unrelayed events are the relay's record, and an
invitation never sent is its own (`maintenance.resend_unsent_invitations`).

The relay takes every event waiting, so a burst of commits needs one relay job, not one each:

- On Redis, a commit enqueues a relay job only when none is waiting (worker/coalesce.py, under
  `PENDING_KEY`; the job clears it with `relay_starting` before it reads the events). A lost job only
  costs an extra one later (the scheduler relays every 2 s anyway). No delay, so the job does not go
  through a delay queue.
- In-process (the embedded mode), at most one relay job per RELAY_WINDOW from this process: a commit
  within the window of the last one schedules one at the window's end, unless one is scheduled already.
"""

from __future__ import annotations

import logging
import threading
import time

from dramatiq import Actor
from dramatiq.brokers.redis import RedisBroker

from store.models import OutboxEvent
from worker import coalesce
from worker.redis_client import note_unsent

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
        note_unsent(logger, "could not enqueue the work for %d events; the scheduler will catch up", len(events))


def relay_starting(broker: object) -> None:
    """Called by the relay job before it reads the events: commits from now on enqueue another job."""
    coalesce.starting(broker, PENDING_KEY)


def _relay_soon(relay_outbox: Actor[[], None]) -> None:
    if isinstance(relay_outbox.broker, RedisBroker):
        coalesce.send_unless_waiting(relay_outbox, PENDING_KEY, ttl_ms=PENDING_TTL_MS)
    else:
        _relay_in_window(relay_outbox)


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

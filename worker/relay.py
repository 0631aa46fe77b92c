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

from dramatiq.brokers.redis import RedisBroker

from store.models import OutboxEvent
from worker import coalesce, runtime
from worker.queue import ActorName, Queue
from worker.redis_client import note_unsent

logger = logging.getLogger(__name__)

RELAY_WINDOW = 0.02
PENDING_KEY = "deskbridge:relay-pending"
PENDING_TTL_MS = 2_000

_lock = threading.Lock()
_relay_at = 0.0  # monotonic time the latest relay job was scheduled to run


def on_commit(events: list[OutboxEvent]) -> None:
    """Enqueue the work that follows from `events`: the webhook relay, and invitation emails."""
    try:
        queue = runtime.current().queue
        _relay_soon(queue)
        invited = [event.data["invitation_id"] for event in events if event.type == "membership.invited"]
        if invited:
            enqueue_invitation_emails(queue, invited)
    except Exception:
        note_unsent(logger, "could not enqueue the work for %d events; the scheduler will catch up", len(events))


def relay_starting(broker: object) -> None:
    """Called by the relay job before it reads the events: commits from now on enqueue another job."""
    coalesce.starting(broker, PENDING_KEY)


INVITATION_BATCH = 100  # invitations a message: a directory's first sync brings in thousands at once


def enqueue_invitation_emails(queue: Queue, invitation_ids: list[int]) -> None:
    """Queue the emails of invitations just committed: one message each when few, batches when many.
    May raise (its caller, `on_commit`, does not): an invitation not sent is its own record, and
    `maintenance.resend_unsent_invitations` queues it again."""
    if len(invitation_ids) == 1:
        queue.send(ActorName.SEND_INVITATION_EMAIL, invitation_ids[0])
        return
    for start in range(0, len(invitation_ids), INVITATION_BATCH):
        queue.send(ActorName.SEND_INVITATION_EMAILS, invitation_ids[start : start + INVITATION_BATCH])


def _relay_soon(queue: Queue) -> None:
    if isinstance(queue.broker, RedisBroker):
        coalesce.send_unless_waiting(queue, ActorName.RELAY_OUTBOX, PENDING_KEY, ttl_ms=PENDING_TTL_MS)
    else:
        _relay_in_window(queue)


def _relay_in_window(queue: Queue) -> None:
    """Schedule a relay job unless one is already scheduled to run after now (it will see these events)."""
    global _relay_at
    with _lock:
        now = time.monotonic()
        if _relay_at > now:
            return
        delay = max(0.0, _relay_at + RELAY_WINDOW - now)
        _relay_at = now + delay
    queue.send(ActorName.RELAY_OUTBOX, delay_ms=int(delay * 1000) or None)

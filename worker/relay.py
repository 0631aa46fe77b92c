"""From committed outbox events to work on the queue.

Called by the store after every commit (see store.outbox.install) with the events it made visible.
It must never raise: the change is committed whatever happens here, and the scheduler's relay job
and sweeps pick up whatever was not enqueued (the broker being down, say).
"""

from __future__ import annotations

import logging
import threading
import time

from store.models import OutboxEvent

logger = logging.getLogger(__name__)

# At most one relay job per this many seconds from one process: the relay takes every event
# waiting, so a burst of commits needs one job, not one each.
RELAY_WINDOW = 0.02

_lock = threading.Lock()
_relay_at = 0.0  # monotonic time the latest relay job was scheduled to run


def on_commit(events: list[OutboxEvent]) -> None:
    """Enqueue the work that follows from `events`: the webhook relay, and invitation emails."""
    from worker import actors  # the broker is set by the time anything commits

    try:
        _relay_soon(actors.relay_outbox)
        for event in events:
            if event.type == "membership.invited":
                actors.send_invitation_email.send(event.data["invitation_id"])
    except Exception:
        logger.exception("could not enqueue the work for %d events; the scheduler will catch up", len(events))


def _relay_soon(relay_outbox: object) -> None:
    """Schedule a relay job unless one is already scheduled to run after now (it will see these events)."""
    global _relay_at
    with _lock:
        now = time.monotonic()
        if _relay_at > now:
            return
        delay = max(0.0, _relay_at + RELAY_WINDOW - now)
        _relay_at = now + delay
    relay_outbox.send_with_options(delay=int(delay * 1000) or None)  # type: ignore[attr-defined]

"""From committed outbox events to work on the queue.

Called by the store after every commit (see store.outbox.install) with the events it made visible.
It must never raise: the change is committed whatever happens here, and the scheduler's sweep
re-enqueues what was missed.
"""

from __future__ import annotations

import logging

from store.models import OutboxEvent

logger = logging.getLogger(__name__)


def on_commit(events: list[OutboxEvent]) -> None:
    """Enqueue the work that follows from `events` (today: invitation emails)."""
    from worker import actors  # the broker is set by the time anything commits

    for event in events:
        try:
            if event.type == "membership.invited":
                actors.send_invitation_email.send(event.data["invitation_id"])
        except Exception:
            logger.exception("could not enqueue the work for event %s (%s); the sweep will retry", event.id, event.type)

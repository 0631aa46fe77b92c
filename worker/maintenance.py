"""Periodic upkeep run by the scheduler: invitation emails that never left, and the gauges."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from infra import metrics
from store.columns import utcnow
from store.db import transaction
from store.services import console_sessions, members, outbox_relay, sign_in_links
from worker import broker as brokers
from worker.queue import ActorName
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

# An invitation still unsent this long after it was made lost its job (the broker was down, say).
UNSENT_AFTER = timedelta(minutes=2)


def resend_unsent_invitations(runtime: Runtime, *, now: datetime | None = None) -> int:
    """Enqueue the email of every pending invitation made `UNSENT_AFTER` before `now` and never sent
    (the email job a commit queues was lost); returns how many. The invitation is its own record of
    the email owed, so it needs no follow-up row (store/services/follow_ups.py)."""
    with transaction(runtime.session_factory) as session:
        waiting = members.unsent_invitations(session, made_before=(now or utcnow()) - UNSENT_AFTER)
    for invitation_id in waiting:
        runtime.queue.send(ActorName.SEND_INVITATION_EMAIL, invitation_id)
    if waiting:
        logger.info("re-enqueued %d unsent invitation emails", len(waiting))
    return len(waiting)


def prune_console(runtime: Runtime, *, now: datetime | None = None) -> int:
    """Delete expired console sessions and sign-in links; returns how many rows went."""
    with transaction(runtime.session_factory) as session:
        gone = console_sessions.prune(session, now=now) + sign_in_links.prune(session, now=now)
    if gone:
        logger.info("pruned %d expired console sessions and sign-in links", gone)
    return gone


def record_gauges(runtime: Runtime) -> None:
    """Outbox lag and queue depths, for /metrics."""
    with transaction(runtime.session_factory) as session:
        oldest = outbox_relay.oldest_unrelayed(session)
    metrics.OUTBOX_LAG.set((utcnow() - oldest).total_seconds() if oldest else 0.0)
    metrics.record_queue_depths(brokers.waiting(runtime.queue.broker))

"""Dramatiq actors. Import only after `worker.broker.make_broker` has set the global broker.

Every actor is idempotent: Dramatiq delivers at least once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import dramatiq

from store.columns import utcnow
from worker import invitations, relay, runtime, sign_in_links
from worker.redis_client import note_unsent
from worker.webhooks import delivery

logger = logging.getLogger(__name__)


@dramatiq.actor(queue_name="email", max_retries=10, min_backoff=5_000, max_backoff=600_000)
def send_invitation_email(invitation_id: int) -> None:
    """Email the accept link of a pending invitation (no-op if already sent or no longer pending)."""
    invitations.send(runtime.current(), invitation_id)


# Few retries, soon: a sign-in link is wanted now and lasts minutes; asking again makes a new one.
@dramatiq.actor(queue_name="email", max_retries=3, min_backoff=2_000, max_backoff=30_000)
def send_sign_in_email(link_id: int) -> None:
    """Email a console sign-in link (no-op if already sent, used or expired)."""
    sign_in_links.send(runtime.current(), link_id)


def enqueue_sign_in_email(link_id: int) -> None:
    """Queue the email of a sign-in link just committed (see api/console/sign_in.py)."""
    send_sign_in_email.send(link_id)


INVITATION_BATCH = 100  # invitations a message: a directory's first sync brings in thousands at once


def enqueue_invitation_emails(invitation_ids: list[int]) -> None:
    """Queue the emails of invitations just committed: one message each when few, batches when many.
    May raise (its caller, `relay.on_commit`, does not): an invitation not sent is its own record, and
    `maintenance.resend_unsent_invitations` queues it again."""
    if len(invitation_ids) == 1:
        send_invitation_email.send(invitation_ids[0])
        return
    for start in range(0, len(invitation_ids), INVITATION_BATCH):
        send_invitation_emails.send(invitation_ids[start : start + INVITATION_BATCH])


@dramatiq.actor(queue_name="email", max_retries=10, min_backoff=5_000, max_backoff=600_000)
def send_invitation_emails(invitation_ids: list[int]) -> None:
    """Email several invitations. One the mail server refuses goes on as a job of its own, so its
    retries are its own and the others are not sent again (sending twice is a no-op anyway)."""
    for invitation_id in invitation_ids:
        try:
            invitations.send(runtime.current(), invitation_id)
        except Exception:
            note_unsent(logger, "invitation %d was not sent; retried on its own", invitation_id)
            send_invitation_email.send(invitation_id)


def enqueue_delivery(delivery_ids: int | Sequence[int], delay_ms: int = 0) -> None:
    """Put one job on the queue, now or after `delay_ms`: a delivery, or deliveries of one endpoint in order."""
    ids = [delivery_ids] if isinstance(delivery_ids, int) else list(delivery_ids)
    deliver_webhooks.send_with_options(args=(ids,), delay=delay_ms or None)


def enqueue_in_order(delivery_ids: int | Sequence[int], delay_ms: int = 0) -> None:
    """As `enqueue_delivery`, for a job whose deliveries go one after the other (a backlog)."""
    ids = [delivery_ids] if isinstance(delivery_ids, int) else list(delivery_ids)
    deliver_in_order.send_with_options(args=(ids,), delay=delay_ms or None)


# Our own schedule retries failed deliveries (see store.services.delivery_attempts.record_attempt); Dramatiq's
# retries only cover a crash in between (the attempt is idempotent: a finished delivery is skipped).
@dramatiq.actor(queue_name="webhooks", max_retries=3, min_backoff=1_000, max_backoff=30_000)
def deliver_webhooks(delivery_ids: list[int]) -> None:
    """Attempt deliveries of one endpoint, in the order given, several at once (see delivery.attempt_batch)."""
    delivery.attempt_batch(runtime.current(), delivery_ids, enqueue_delivery)


def enqueue_backlog(delivery_ids: list[int]) -> None:
    """Queue a resumed or replayed backlog, to be attempted one after the other in the order given
    (`deliver_in_order`).

    Called after the change that made the backlog was committed, so it does not raise: when the
    broker is down the backlog is left to the scheduler's sweep (which sends it one by one, so not
    strictly in order).
    """
    if delivery_ids:
        worker_runtime = runtime.current()
        delivery.lease(worker_runtime, delivery_ids)
        try:
            deliver_in_order.send(delivery_ids)
        except Exception:
            note_unsent(logger, "could not enqueue a backlog of %d deliveries; the sweep will", len(delivery_ids))
            delivery.release(worker_runtime, delivery_ids, utcnow())


@dramatiq.actor(queue_name="webhooks", max_retries=3, min_backoff=1_000, max_backoff=30_000)
def deliver_in_order(delivery_ids: list[int]) -> None:
    """Attempt a resumed endpoint's backlog one delivery after the other, in event order; what it
    hands on (the rest of a long backlog, a short retry) stays in order too."""
    delivery.attempt_batch(runtime.current(), delivery_ids, enqueue_in_order, in_order=True)


# What earlier versions enqueued: kept so that jobs queued before an upgrade still run.
@dramatiq.actor(queue_name="webhooks", max_retries=3, min_backoff=1_000, max_backoff=30_000)
def deliver_webhook(delivery_id: int) -> None:
    """Attempt one webhook delivery."""
    delivery.attempt_batch(runtime.current(), [delivery_id], enqueue_delivery)


@dramatiq.actor(queue_name="relay", max_retries=3, min_backoff=200, max_backoff=5_000)
def relay_outbox() -> None:
    """Turn committed events into deliveries and enqueue them."""
    relay.relay_starting(relay_outbox.broker)
    delivery.relay(runtime.current(), enqueue_delivery)

"""One webhook delivery attempt, from the store to the receiver and back, and the relay that feeds it.

Attempts are enqueued right away for the first try and for short retries; a long retry (minutes to
hours) is only written as `next_attempt_at` and picked up by the scheduler's sweep, so no message
waits for hours in a broker. Whoever enqueues a delivery leases it (`webhooks.lease`) so that the
sweep does not enqueue it a second time while it waits in the queue; when the broker refuses the
job (Redis down), the lease is given back (`release`) so that the sweep sends it once it is due.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import httpx

from store.columns import utcnow
from store.db import transaction
from store.errors import NotFound
from store.services import webhooks
from store.services.webhooks import AttemptOutcome, AttemptResult, DeliveryJob
from worker import metrics
from worker.runtime import Runtime
from worker.webhooks.limits import endpoint_slot
from worker.webhooks.sender import TIMEOUT_SECONDS, build_body, event_payload, post, sign_headers

logger = logging.getLogger(__name__)

# Retries due within this long are enqueued with a delay; later ones wait for the sweep.
SHORT_RETRY = timedelta(seconds=60)
# An enqueued delivery is not enqueued again by the sweep for this long.
LEASE = timedelta(minutes=5)
# A delivery whose endpoint has no free slot tries again after about this long.
BUSY_RETRY_MS = 500

Enqueue = Callable[[int, int], None]  # (delivery id, delay in ms)


def attempt(runtime: Runtime, delivery_id: int, enqueue: Enqueue) -> AttemptResult | None:
    """Make one attempt at a delivery; None when there was nothing to do (finished, paused, busy)."""
    with transaction(runtime.session_factory) as session:
        job = webhooks.attempt_context(session, delivery_id)
    if job is None or job.paused or job.disabled:
        return None
    outcome = _send_in_slot(runtime, job)
    if outcome is None:
        _requeue(runtime, delivery_id, BUSY_RETRY_MS + random.randrange(BUSY_RETRY_MS), enqueue, due=utcnow())
        return None
    now = utcnow()
    try:
        with transaction(runtime.session_factory) as session:
            result = webhooks.record_attempt(session, delivery_id, outcome, now=now, delays=runtime.retry_delays)
            if result.state == "retry" and result.next_attempt_at is not None:
                wait = result.next_attempt_at - now
                if wait <= SHORT_RETRY:
                    webhooks.lease(session, [delivery_id], until=result.next_attempt_at + LEASE)
    except NotFound:
        # Deleted during the request with its endpoint (a REST hook whose target answered 410 to
        # another attempt, or an admin): there is nothing left to record or to retry.
        logger.info("delivery %s went with its endpoint %s during the attempt", delivery_id, job.endpoint_id)
        return None
    _observe(job, result, outcome, now)
    if result.state == "retry" and result.next_attempt_at is not None and wait <= SHORT_RETRY:
        delay_ms = max(0, int(wait.total_seconds() * 1000))
        _requeue(runtime, delivery_id, delay_ms, enqueue, due=result.next_attempt_at)
    return result


def _requeue(runtime: Runtime, delivery_id: int, delay_ms: int, enqueue: Enqueue, *, due: datetime) -> None:
    """Enqueue the delivery's next attempt; if the broker fails, leave it to the sweep from `due` on.

    The attempt before is recorded whatever happens here, so this does not raise: a delivery still
    leased would wait for the lease (minutes) instead of the sweep picking it up once it is due.
    """
    try:
        enqueue(delivery_id, delay_ms)
    except Exception:
        logger.warning("could not enqueue delivery %s; the sweep will pick it up", delivery_id, exc_info=True)
        release(runtime, [delivery_id], due)


def _send_in_slot(runtime: Runtime, job: DeliveryJob) -> AttemptOutcome | None:
    """Send in one of the endpoint's slots; None when none is free (nothing was sent).

    Once the request went out, its outcome must be recorded: a slot that cannot be given back (the
    slots' Redis gone meanwhile) is logged and left to expire on its own (limits.SLOT_TTL_MS).
    """
    outcome: AttemptOutcome | None = None
    try:
        with endpoint_slot(job.endpoint_id) as free:
            if free:
                outcome = _send(runtime, job)
    except Exception:
        if outcome is None:
            raise
        logger.warning("could not give back a slot of endpoint %s; it expires", job.endpoint_id, exc_info=True)
    return outcome


def _send(runtime: Runtime, job: DeliveryJob) -> AttemptOutcome:
    now = utcnow()
    secrets = webhooks.signing_secrets(job, runtime.secret_box, now)
    body = build_body(
        [event_payload(job.event_id, job.event_type, job.event_created_at, job.event_data)], job.payload_format
    )
    headers = sign_headers(job.event_id, body, secrets, now)
    sent = post(runtime.webhook_client, job.url, body, headers, timeout=request_timeout(runtime.webhook_client))
    return AttemptOutcome(
        status_code=sent.status_code,
        duration_ms=sent.duration_ms,
        response_excerpt=sent.response_excerpt,
        error=sent.error,
        retry_after=sent.retry_after,
        gone=sent.gone,
    )


def request_timeout(client: httpx.Client) -> float:
    """Seconds one request may take: the webhook client's read timeout (make_client sets TIMEOUT_SECONDS)."""
    read = client.timeout.read
    return TIMEOUT_SECONDS if read is None else read


def _observe(job: DeliveryJob, result: AttemptResult, outcome: AttemptOutcome, now: datetime) -> None:
    metrics.DELIVERIES.labels(result.state).inc()
    metrics.DELIVERY_DURATION.observe(outcome.duration_ms / 1000)
    if result.state == "succeeded":
        metrics.DELIVERY_LATENCY.observe((now - job.event_created_at).total_seconds())
    if result.endpoint_disabled or result.endpoint_deleted:
        logger.warning(
            "endpoint %s %s after delivery %s",
            job.endpoint_id,
            "disabled" if result.endpoint_disabled else "deleted",
            job.delivery_id,
        )


def relay(runtime: Runtime, enqueue: Enqueue, *, limit: int = 500) -> int:
    """Turn waiting outbox events into deliveries and enqueue those due; returns how many were enqueued."""
    total = 0
    while True:
        now = utcnow()
        with transaction(runtime.session_factory) as session:
            due = webhooks.relay(session, limit=limit, now=now)
            webhooks.lease(session, due, until=now + LEASE)
            more = webhooks.has_unrelayed(session)
        _enqueue_all(runtime, due, enqueue, now)
        total += len(due)
        if not more:
            return total


def sweep(runtime: Runtime, enqueue: Enqueue, *, limit: int = 1000) -> int:
    """Enqueue the deliveries whose time has come and that nobody holds (long retries, lost jobs)."""
    now = utcnow()
    with transaction(runtime.session_factory) as session:
        due = webhooks.due_deliveries(session, now=now, limit=limit)
        webhooks.lease(session, due, until=now + LEASE)
    _enqueue_all(runtime, due, enqueue, now)
    return len(due)


def lease(runtime: Runtime, delivery_ids: Sequence[int]) -> None:
    """Hold deliveries about to be enqueued (after a resume or a replay) away from the sweep."""
    with transaction(runtime.session_factory) as session:
        webhooks.lease(session, delivery_ids, until=utcnow() + LEASE)


def attempt_in_order(runtime: Runtime, delivery_ids: Sequence[int], enqueue: Enqueue) -> None:
    """Attempt a backlog one delivery after the other, so a resumed endpoint gets it in event order.

    A failed one goes on its usual retry schedule; the next ones do not wait for it.
    """
    for delivery_id in delivery_ids:
        attempt(runtime, delivery_id, enqueue)


def release(runtime: Runtime, delivery_ids: Sequence[int], due: datetime) -> None:
    """Give leased deliveries whose job never reached the broker back to the sweep, due at `due`.

    Best effort (the broker and the store may be down together): the lease runs out on its own.
    """
    try:
        with transaction(runtime.session_factory) as session:
            webhooks.lease(session, delivery_ids, until=due)
    except Exception:
        logger.exception(
            "could not release %d deliveries; the sweep gets them when their lease ends", len(delivery_ids)
        )


def _enqueue_all(runtime: Runtime, delivery_ids: Sequence[int], enqueue: Enqueue, due: datetime) -> None:
    """Enqueue each delivery now; if the broker fails, release the ones not enqueued (due at `due`) and raise."""
    for index, delivery_id in enumerate(delivery_ids):
        try:
            enqueue(delivery_id, 0)
        except Exception:
            release(runtime, delivery_ids[index:], due)
            raise

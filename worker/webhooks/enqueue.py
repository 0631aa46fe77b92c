"""How webhook deliveries are put on the queue: a job of one endpoint's deliveries, now or later,
attempted several at once (`deliveries`) or one after the other (`in_order`, a backlog)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from infra.redis_client import note_unsent
from store.columns import utcnow
from worker.queue import ActorName, Queue
from worker.runtime import Runtime
from worker.webhooks import delivery

logger = logging.getLogger(__name__)


def deliveries(queue: Queue, delivery_ids: int | Sequence[int], delay_ms: int = 0) -> None:
    """Put one job on the queue, now or after `delay_ms`: a delivery, or deliveries of one endpoint in order."""
    ids = [delivery_ids] if isinstance(delivery_ids, int) else list(delivery_ids)
    queue.send(ActorName.DELIVER_WEBHOOKS, ids, delay_ms=delay_ms or None)


def in_order(queue: Queue, delivery_ids: int | Sequence[int], delay_ms: int = 0) -> None:
    """As `deliveries`, for a job whose deliveries go one after the other (a backlog)."""
    ids = [delivery_ids] if isinstance(delivery_ids, int) else list(delivery_ids)
    queue.send(ActorName.DELIVER_IN_ORDER, ids, delay_ms=delay_ms or None)


def backlog(worker_runtime: Runtime, delivery_ids: list[int]) -> None:
    """Queue a resumed or replayed backlog, to be attempted one after the other in the order given
    (`deliver_in_order`).

    Called after the change that made the backlog was committed, so it does not raise: when the
    broker is down the backlog is left to the scheduler's sweep (which sends it one by one, so not
    strictly in order).
    """
    if delivery_ids:
        delivery.lease(worker_runtime, delivery_ids)
        try:
            worker_runtime.queue.send(ActorName.DELIVER_IN_ORDER, delivery_ids)
        except Exception:
            note_unsent(logger, "could not enqueue a backlog of %d deliveries; the sweep will", len(delivery_ids))
            delivery.release(worker_runtime, delivery_ids, utcnow())

"""One waiting job per key: a burst of triggers queues one job, which then sees all of them.

On Redis, whoever queues the job sets the key (SET NX, with an expiry) and the job deletes it as it
starts (`starting`), before it reads its work: a trigger that finds the key set came before that
job starts, so the job sees its work. The key expires on its own, so a lost job costs only a late
one. Other brokers (the in-process one of the embedded mode) queue a job per trigger; the jobs find
the work done and end.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker

from worker.queue import ActorName, Queue

logger = logging.getLogger(__name__)

TTL_MS = 2_000


def send_unless_waiting(
    queue: Queue, name: ActorName, key: str, *args: Any, ttl_ms: int = TTL_MS, wake: str | None = None
) -> bool:
    """Queue actor `name` with `args` unless a job under `key` waits to start (or runs and keeps `key`
    set); True when one was queued. `wake`: a list a running job waits on (BLPOP) for more work, pushed
    to in the same round trip; it holds one item at most and expires with `key`'s TTL."""
    broker = queue.broker
    if isinstance(broker, RedisBroker):
        with broker.client.pipeline(transaction=False) as pipe:
            pipe.set(key, b"1", nx=True, px=ttl_ms)
            if wake is not None:
                pipe.rpush(wake, b"1")
                pipe.ltrim(wake, 0, 0)
                pipe.pexpire(wake, ttl_ms)
            if not pipe.execute()[0]:
                return False
    try:
        queue.send(name, *args)
    except Exception:
        starting(broker, key)  # so the next trigger tries again
        raise
    return True


def starting(broker: object, key: str) -> None:
    """Called by the job before it reads its work: triggers from now on queue another job.

    Best effort: if Redis does not answer, the key expires on its own.
    """
    if isinstance(broker, RedisBroker):
        try:
            broker.client.delete(key)
        except redis.RedisError:
            logger.warning("could not clear %s; it expires on its own", key, exc_info=True)

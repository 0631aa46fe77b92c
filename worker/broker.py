"""The Dramatiq broker: Redis in production, in-process (stub broker + worker threads) when embedded."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker


def make_broker(redis_url: str | None) -> dramatiq.Broker:
    """Create the broker for `redis_url` (None: in-process) and make it Dramatiq's global broker.

    Must run before `worker.actors` is imported: actors bind to the global broker when declared.
    """
    # On Redis, a killed worker's unacknowledged messages go back on the queue once its heartbeat is
    # this old; the check runs on about one broker call in `maintenance_chance`.
    broker: dramatiq.Broker = (
        RedisBroker(url=redis_url, heartbeat_timeout=30_000, maintenance_chance=100)  # type: ignore[no-untyped-call]
        if redis_url
        else StubBroker()
    )
    dramatiq.set_broker(broker)
    return broker


def start_in_process_workers(broker: dramatiq.Broker, threads: int) -> dramatiq.Worker:
    """Worker threads inside this process, for the embedded mode; call `.stop()` on shutdown."""
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    return worker


def ping(broker: dramatiq.Broker) -> bool:
    """Whether the broker answers (always true in-process)."""
    if isinstance(broker, RedisBroker):
        try:
            return bool(broker.client.ping())
        except Exception:
            return False
    return True

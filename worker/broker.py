"""The Dramatiq broker: Redis in production, in-process (stub broker + worker threads) when embedded."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

from infra.redis_client import fail_fast_client

# On Redis, the unacknowledged messages of a worker whose heartbeat is older than HEARTBEAT_TIMEOUT_MS
# go back on their queue during Dramatiq's upkeep, which runs on MAINTENANCE_CHANCE in a million
# (MAINTENANCE_SCALE) of the broker's commands, each for the queue the command is about. Every
# consumer of a live worker polls its queue at least once a second (Dramatiq's worker_timeout), which
# beats the heartbeat; an idle survivor's poll of the queue is then the command that runs the upkeep.
# At one command in five, a dead worker's messages are back within the timeout plus a few seconds
# (tests/worker/delivery/test_requeue_delay.py measures it); the upkeep itself is two range reads.
# The client fails fast (infra.redis_client): an unreachable Redis is an error within seconds (no
# command of the broker blocks on the server), and at once during an outage, so neither a readiness
# probe nor an API request that enqueues after its commit hangs on it.
HEARTBEAT_TIMEOUT_MS = 15_000
MAINTENANCE_CHANCE = MAINTENANCE_SCALE // 5


def make_broker(redis_url: str | None) -> dramatiq.Broker:
    """Create the broker for `redis_url` (None: in-process). Our actors are bound to it by
    `worker.actors.bind`; it is made Dramatiq's global broker too, which only Dramatiq's CLI reads
    (`dramatiq deskbridge.worker_main` runs the global broker)."""
    broker: dramatiq.Broker = (
        RedisBroker(  # type: ignore[no-untyped-call]
            client=fail_fast_client(
                redis_url,
                name="broker",
                meanwhile="jobs are not enqueued (the scheduler's relay and sweeps catch up)",
                connect_timeout=2.0,
                command_timeout=5.0,
                retries=1,
            ),
            heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
            maintenance_chance=MAINTENANCE_CHANCE,
        )
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


def waiting(broker: dramatiq.Broker) -> dict[str, int]:
    """Messages waiting in every queue declared on `broker`, and in each one's delay queue (`name.DQ`)."""
    return {name: _waiting(broker, name) for queue in broker.get_declared_queues() for name in (queue, dq_name(queue))}


def _waiting(broker: dramatiq.Broker, queue: str) -> int:
    if isinstance(broker, RedisBroker):
        return int(broker.client.llen(f"{broker.namespace}:{queue}"))
    stub_queue = broker.queues.get(queue) if isinstance(broker, StubBroker) else None
    return stub_queue.qsize() if stub_queue is not None else 0


def ping(broker: dramatiq.Broker) -> bool:
    """Whether the broker answers (always true in-process)."""
    if isinstance(broker, RedisBroker):
        try:
            return bool(broker.client.ping())
        except Exception:
            return False
    return True

"""Production's Dramatiq upkeep (worker.broker): a worker process SIGKILLed mid-delivery has its
message requeued and delivered by another production worker within a minute.

Unlike test_worker_killed's "redelivery" case, both workers run `deskbridge.worker_main` unchanged,
so this measures the broker settings production runs with. The minute is the wait's own deadline:
with Dramatiq's upkeep at one command in a hundred per million (the old setting), the message stayed
unacknowledged until the five-minute lease sweep.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.worker.delivery.conftest import Pipeline, Receivers, Reply, delivered, wait_until
from tests.worker.delivery.test_worker_killed import PROCESS_DEADLINE, WorkerProcesses, worker_processes
from worker.broker import HEARTBEAT_TIMEOUT_MS

__all__ = ["worker_processes"]  # the fixture, shared with test_worker_killed

REQUEUE_DEADLINE = 60.0


def test_a_killed_workers_delivery_is_requeued_within_a_minute(
    pipeline: Pipeline, receivers: Receivers, worker_processes: WorkerProcesses
) -> None:
    org = pipeline.organisation()
    hold = threading.Event()
    receiver = receivers.start([Reply(hold=hold)], then=Reply(200))  # holds the first request open
    endpoint = pipeline.endpoint(org, receiver)
    first = worker_processes.start("deskbridge.worker_main")
    pipeline.desk(org, "D1")
    wait_until(lambda: len(receiver.snapshot()) == 1, "the first worker's request", PROCESS_DEADLINE)

    # The survivor is up and polling before the kill, as a second worker container would be.
    worker_processes.start("deskbridge.worker_main")
    second_log = worker_processes.folder / "worker-1.log"
    ready = lambda: "ready for action" in second_log.read_text(errors="replace")  # noqa: E731
    wait_until(ready, "the second worker", PROCESS_DEADLINE)
    worker_processes.kill(first)
    killed_at = time.monotonic()
    hold.set()

    try:
        wait_until(delivered(pipeline, endpoint, 1), "the killed worker's delivery", REQUEUE_DEADLINE)
    except pytest.fail.Exception:
        print(worker_processes.logs())
        raise
    delay = time.monotonic() - killed_at
    timeout = HEARTBEAT_TIMEOUT_MS / 1000
    print(f"\nrequeued and delivered {delay:.1f} s after the SIGKILL (heartbeat timeout {timeout:g} s)")
    assert len(receiver.snapshot()) >= 2  # the killed attempt, then the survivor's

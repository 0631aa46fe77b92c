"""A worker process killed with SIGKILL in the middle of a delivery: the delivery still completes.

Worker processes run as in production (`dramatiq deskbridge.worker_main`, settings from DESKBRIDGE_*
variables) on the test's PostgreSQL database and private Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.worker.delivery.conftest import ROOT, Pipeline, Receivers, RedisServer, Reply, delivered, wait_until
from worker import runtime
from worker.scheduler import default_jobs

PROCESS_DEADLINE = 60.0  # a worker process takes a few seconds to start on a busy machine


class WorkerProcesses:
    """`dramatiq` worker processes, each leading its own process group (killed whole at the end)."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, module: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "dramatiq", module, "--processes", "1", "--threads", "2"]
        command += ["--path", str(ROOT)]
        with (self.folder / f"worker-{len(self.started)}.log").open("wb") as log:
            process = subprocess.Popen(
                command, cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and its worker processes (its group): no clean-up, no acknowledgement."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.folder.glob("worker-*.log")))


@pytest.fixture
def worker_processes(
    pipeline: Pipeline, redis_server: RedisServer, postgres_url: str, tmp_path: Path
) -> Iterator[WorkerProcesses]:
    folder = tmp_path / "workers"
    folder.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DESKBRIDGE_DATABASE_URL": postgres_url,
        "DESKBRIDGE_REDIS_URL": redis_server.url,
        "DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS": "true",
        "DESKBRIDGE_SECRET_KEY": pipeline.secret_key,
        "DESKBRIDGE_MAIL_DIR": str(folder / "mail"),
        "DESKBRIDGE_LOG_LEVEL": "INFO",
    }
    processes = WorkerProcesses(env, folder)
    yield processes
    for process in processes.started:
        processes.kill(process)


@pytest.mark.parametrize("recovery", ["redelivery", "sweep"])
def test_a_worker_killed_mid_delivery_the_delivery_still_completes(
    pipeline: Pipeline, receivers: Receivers, worker_processes: WorkerProcesses, recovery: str
) -> None:
    """ "redelivery": a new worker's Dramatiq upkeep puts the dead worker's message back on the queue.
    "sweep": production's upkeep takes minutes; the scheduler's sweep finds the delivery once the
    lease taken when it was enqueued runs out."""
    org = pipeline.organisation()
    hold = threading.Event()
    receiver = receivers.start([Reply(hold=hold)], then=Reply(200))  # holds the first request open
    endpoint = pipeline.endpoint(org, receiver)
    first = worker_processes.start("deskbridge.worker_main")

    event_id = pipeline.desk(org, "D1")  # relayed after commit through Redis, delivered by the worker process

    wait_until(lambda: len(receiver.snapshot()) == 1, "the worker process's request", PROCESS_DEADLINE)
    worker_processes.kill(first)
    hold.set()
    [delivery] = pipeline.deliveries(endpoint)
    assert (str(delivery.status), delivery.attempts) == ("pending", 0)  # the killed attempt recorded nothing

    if recovery == "redelivery":
        worker_processes.start("tests.worker.delivery.worker_process")
    else:
        worker_processes.start("deskbridge.worker_main")
        jobs = {job.name: job.func for job in default_jobs(runtime.current())}
        assert jobs["webhooks.sweep"]() == 0  # leased: its job is (as far as anyone knows) on the queue
        pipeline.time_passes(delivery.id)  # the lease runs out
        assert jobs["webhooks.sweep"]() == 1

    try:
        wait_until(delivered(pipeline, endpoint, 1), "the delivery to complete after the kill", PROCESS_DEADLINE)
    except pytest.fail.Exception:
        print(worker_processes.logs())
        raise
    requests = receiver.snapshot()
    assert len(requests) >= 2  # at least once: the killed worker's request, then the new worker's
    assert {request.webhook_id for request in requests} == {event_id}
    assert all(request.verified for request in requests)
    assert requests[-1].status == 200
    [delivery] = pipeline.deliveries(endpoint)
    assert (delivery.attempts, delivery.last_status_code) == (1, 200)

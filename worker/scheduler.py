"""Periodic jobs (relay safety net, due retries, later polls and renewals), run by one leader at a time.

APScheduler runs the jobs on their intervals; around it, a heartbeat thread holds the leader lock.
A scheduler that does not hold the lock polls for it on every heartbeat and starts the jobs once it
does; one that loses it (Redis gone, or a pause longer than the lock's time to live) stops starting
jobs at once. Jobs must therefore be idempotent and safe to overlap with a last run elsewhere.

Stopping gives running jobs STOP_GRACE_SECONDS, then releases the lock whether or not they ended: a
job may be stuck on an unreachable provider for minutes (a channel renewal retrying), and a stop must
fit in the seconds a container is given. A job left running is abandoned (`Scheduler.abandoned`), to
be run again by the next leader; the process should then exit without waiting for its thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from worker import channels, follow_ups, maintenance
from worker.calendar import jobs as calendar_jobs
from worker.directory import jobs
from worker.leader import LeaderLock, LocalLeaderLock
from worker.peers import jobs as peer_jobs
from worker.runtime import Runtime
from worker.webhooks import delivery, enqueue

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STOP_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class Job:
    """`func` run every `seconds` (first right after this scheduler becomes the leader)."""

    name: str
    seconds: float
    func: Callable[[], object]


def default_jobs(runtime: Runtime) -> list[Job]:
    """The periodic work of a deskbridge deployment, one line per job."""
    enqueue_deliveries = partial(enqueue.deliveries, runtime.queue)
    return [
        Job("webhooks.relay", 2, partial(delivery.relay, runtime, enqueue_deliveries)),
        Job("webhooks.sweep", 5, partial(delivery.sweep, runtime, enqueue_deliveries)),
        Job("invitations.sweep", 60, partial(maintenance.resend_unsent_invitations, runtime)),
        Job("console.prune", 3600, partial(maintenance.prune_console, runtime)),
        Job("metrics", 15, partial(maintenance.record_gauges, runtime)),
        Job("directory.poll", 60, partial(jobs.poll, runtime)),
        Job("directory.channels", 600, partial(channels.renew_directories, runtime)),
        Job("calendar.poll", 60, partial(calendar_jobs.poll, runtime)),
        Job("calendar.channels", 600, partial(channels.renew_calendars, runtime)),
        Job("peers.poll", 60, partial(peer_jobs.poll, runtime)),
        Job("peers.prune", 3600, partial(peer_jobs.prune, runtime)),
        Job("follow_ups.sweep", 30, partial(follow_ups.sweep, runtime)),
    ]


class Scheduler:
    """Runs `jobs` while holding `lock`; `start()` it, `stop()` it. Renews the lock every `heartbeat` seconds."""

    def __init__(
        self,
        jobs: Sequence[Job],
        lock: LeaderLock,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {names}")
        self.jobs = tuple(jobs)
        self.lock = lock
        self.heartbeat = heartbeat
        self.grace = grace
        self.abandoned: tuple[str, ...] = ()  # jobs still running when the scheduler stopped
        self._running: dict[str, int] = {}
        self._jobs_ended = threading.Condition()
        self._stopping = threading.Event()
        self._runner: BackgroundScheduler | None = None
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this scheduler currently runs the jobs."""
        return self._runner is not None

    @property
    def is_alive(self) -> bool:
        """Whether the heartbeat thread runs (it only ends after `stop()`)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Scheduler:
        """Start the heartbeat thread, which leads when it can; returns self."""
        if self._thread is not None:
            raise RuntimeError("a scheduler starts once")
        self._thread = threading.Thread(target=self._run, name="deskbridge-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> tuple[str, ...]:
        """Stop: start no more jobs, give running ones `grace` seconds, then release the lock so another
        scheduler can lead at once. Returns the jobs abandoned still running (see the module's doc)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.abandoned

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._beat()
                self._stopping.wait(self.heartbeat)
        finally:
            if self._runner is not None:
                self._step_down(wait=False)
                self.abandoned = self._wait_for_jobs(self.grace)
                if self.abandoned:
                    log.warning(
                        "scheduler: stopping with %s still running after %g s; left to the next leader",
                        ", ".join(self.abandoned),
                        self.grace,
                    )
                self._release()

    def _tracked(self, job: Job) -> Callable[[], object]:
        """`job.func`, noting while it runs (so that stopping knows what it waits for)."""

        def run() -> object:
            with self._jobs_ended:
                self._running[job.name] = self._running.get(job.name, 0) + 1
            try:
                return job.func()
            finally:
                with self._jobs_ended:
                    self._running[job.name] -= 1
                    self._jobs_ended.notify_all()

        return run

    def _wait_for_jobs(self, grace: float) -> tuple[str, ...]:
        """Wait up to `grace` seconds for running jobs to end; the names of those still running."""
        with self._jobs_ended:
            self._jobs_ended.wait_for(lambda: not any(self._running.values()), timeout=grace)
            return tuple(sorted(name for name, count in self._running.items() if count))

    def _beat(self) -> None:
        try:
            if self._runner is None:
                if self.lock.acquire():
                    log.info("scheduler: leading; running %d job(s)", len(self.jobs))
                    self._runner = self._start_jobs()
            elif not self.lock.extend():
                log.warning("scheduler: lost the leader lock; jobs stopped, waiting to lead again")
                self._step_down(wait=False)
        except Exception:
            # Without the lock's answer this process cannot know it still leads, so it stops leading.
            log.exception("scheduler: leader lock unavailable")
            if self._runner is not None:
                self._step_down(wait=False)

    def _start_jobs(self) -> BackgroundScheduler:
        runner = BackgroundScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for job in self.jobs:
            runner.add_job(
                self._tracked(job),
                IntervalTrigger(seconds=job.seconds, timezone=UTC),
                id=job.name,
                name=job.name,
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        runner.start()
        return runner

    def _step_down(self, *, wait: bool) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.shutdown(wait=wait)

    def _release(self) -> None:
        try:
            self.lock.release()
        except Exception:
            log.exception("scheduler: could not release the leader lock; it expires on its own")


def start_in_process(jobs: Sequence[Job], *, heartbeat: float = HEARTBEAT_SECONDS) -> Scheduler:
    """Run `jobs` in this process, always as the leader (the embedded mode); `.stop()` the result on shutdown."""
    return Scheduler(jobs, LocalLeaderLock(), heartbeat=heartbeat).start()

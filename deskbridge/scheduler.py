"""The scheduler process of the production layout: `python -m deskbridge.scheduler`.

Runs `worker.scheduler.default_jobs` while it holds the leader lock in Redis; a second scheduler
waits and takes over when the first dies. Without DESKBRIDGE_REDIS_URL there is nobody to share a
lock with, so it leads alone (the embedded `deskbridge serve` runs its scheduler in-process instead).

Leader or waiting, it touches a heartbeat file on every tick while its scheduler thread lives (the
container's health check, `--check`, reads its age), and stops on SIGTERM or SIGINT within a few
seconds, releasing the lock so a waiting scheduler leads at once: a job still running after the
scheduler's grace (a renewal retrying an unreachable provider) is abandoned, and the process exits
without waiting for it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the health check (--check) runs often: it imports nothing heavy
    from worker.leader import LeaderLock
    from worker.scheduler import Scheduler

log = logging.getLogger("deskbridge.scheduler")

HEARTBEAT = Path("/tmp/deskbridge-scheduler.heartbeat")  # noqa: S108 - a liveness marker, not data
TICK_SECONDS = 10.0


def run(
    scheduler: Scheduler, stop: threading.Event, heartbeat: Path = HEARTBEAT, tick: float = TICK_SECONDS
) -> tuple[str, ...]:
    """Start `scheduler` and touch `heartbeat` every `tick` until `stop` is set or the scheduler dies; then
    stop it. Returns the jobs it abandoned still running."""
    scheduler.start()
    abandoned: tuple[str, ...] = ()
    try:
        while not stop.is_set() and scheduler.is_alive:
            heartbeat.touch()
            stop.wait(tick)
    finally:
        abandoned = scheduler.stop()
    log.info("scheduler: stopped")
    return abandoned


def is_alive(heartbeat: Path = HEARTBEAT, max_age: float = 3 * TICK_SECONDS) -> bool:
    """Whether a running scheduler touched `heartbeat` within `max_age` seconds (the health check)."""
    try:
        return time.time() - heartbeat.stat().st_mtime <= max_age
    except OSError:
        return False


def make_lock(redis_url: str | None) -> LeaderLock:
    """The leader lock in Redis, or a lock that always leads when there is no Redis."""
    from worker.leader import LocalLeaderLock, RedisLeaderLock

    if redis_url:
        return RedisLeaderLock.from_url(redis_url)
    log.warning("scheduler: DESKBRIDGE_REDIS_URL is not set; leading alone (run only one scheduler)")
    return LocalLeaderLock()


def main(argv: list[str] | None = None) -> int:
    """Run the scheduler until SIGTERM/SIGINT; with `--check`, exit 0 if one is alive, 1 if not."""
    parser = argparse.ArgumentParser(
        prog="python -m deskbridge.scheduler", description="The deskbridge scheduler process."
    )
    parser.add_argument("--check", action="store_true", help="health check: is the heartbeat fresh?")
    parser.add_argument("--heartbeat", type=Path, default=HEARTBEAT, help="heartbeat file (default: %(default)s)")
    parser.add_argument("--tick", type=float, default=TICK_SECONDS, help="seconds between heartbeat touches")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if is_alive(args.heartbeat, 3 * args.tick) else 1

    from deskbridge.settings import get_settings
    from deskbridge.wiring import build
    from worker import runtime
    from worker.scheduler import Scheduler, default_jobs

    settings = get_settings()
    build(settings)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler: got %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    abandoned = run(
        Scheduler(default_jobs(runtime.current()), make_lock(settings.redis_url)), stop, args.heartbeat, args.tick
    )
    if abandoned:
        # The lock is released and the jobs are safe to run again; waiting for their threads (which the
        # interpreter's exit would do) could take minutes. Leave now.
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

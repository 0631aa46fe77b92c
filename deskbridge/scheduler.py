"""The scheduler process of the production layout: `python -m deskbridge.scheduler`.

Nothing is scheduled yet (polls and subscription renewals arrive with the connector issues, and so
will a `deskbridge scheduler` command). Until then this is a well-behaved placeholder: it logs that
it idles, touches a heartbeat file on every tick (the container's health check reads its age) and
stops promptly and cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

log = logging.getLogger("deskbridge.scheduler")

HEARTBEAT = Path("/tmp/deskbridge-scheduler.heartbeat")  # noqa: S108 - a liveness marker, not data
TICK_SECONDS = 10.0


def run(stop: threading.Event, heartbeat: Path = HEARTBEAT, tick: float = TICK_SECONDS) -> None:
    """Tick until `stop` is set, touching `heartbeat` each time."""
    log.info("scheduler: nothing scheduled yet")
    while not stop.is_set():
        heartbeat.touch()
        stop.wait(tick)
    log.info("scheduler: stopped")


def is_alive(heartbeat: Path = HEARTBEAT, max_age: float = 3 * TICK_SECONDS) -> bool:
    """Whether a running scheduler touched `heartbeat` within `max_age` seconds (the health check)."""
    try:
        return time.time() - heartbeat.stat().st_mtime <= max_age
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the scheduler until SIGTERM/SIGINT; with `--check`, exit 0 if one is alive, 1 if not."""
    parser = argparse.ArgumentParser(
        prog="python -m deskbridge.scheduler", description="The deskbridge scheduler process."
    )
    parser.add_argument("--check", action="store_true", help="health check: is the heartbeat fresh?")
    parser.add_argument("--heartbeat", type=Path, default=HEARTBEAT, help="heartbeat file (default: %(default)s)")
    parser.add_argument("--tick", type=float, default=TICK_SECONDS, help="seconds between ticks")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if is_alive(args.heartbeat, 3 * args.tick) else 1

    from deskbridge.settings import get_settings

    logging.basicConfig(
        level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler: got %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run(stop, args.heartbeat, args.tick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

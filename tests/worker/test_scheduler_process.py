"""Schedulers as separate processes: a killed leader is replaced after its lock expires, and
`python -m deskbridge.scheduler` leads, reports its health and hands over on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from store.db import make_engine, make_session_factory, transaction
from store.migrate import upgrade
from store.models import ConnectionKind
from store.secret_box import SecretBox
from store.services import connections, organisations
from tests.conftest import REDIS_URL
from tests.worker.test_scheduler import Counter, wait_until
from worker.leader import LOCK_NAME, RedisLeaderLock
from worker.scheduler import Job, Scheduler

ROOT = Path(__file__).resolve().parents[2]
KEY = SecretBox.generate_key()
CHILD = """
import sys, time, redis
from worker.leader import RedisLeaderLock
from worker.scheduler import Job, Scheduler
client = redis.Redis.from_url(sys.argv[1])
job = Job("count", 0.05, lambda: client.incr("child-runs"))
Scheduler([job], RedisLeaderLock(client, ttl=1.5), heartbeat=0.2).start()
time.sleep(3600)
"""


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_a_killed_leader_is_replaced_once_its_lock_expires(
    redis_client: redis.Redis, processes: list[subprocess.Popen[bytes]]
) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, REDIS_URL], cwd=ROOT)
    processes.append(child)
    wait_until(lambda: int(redis_client.get("child-runs") or 0) >= 1, "the child process to lead")
    runs = Counter()
    standby = Scheduler(
        [Job("count", 0.05, runs)], RedisLeaderLock(redis.Redis.from_url(REDIS_URL), ttl=1.5), heartbeat=0.2
    )
    standby.start()
    try:
        # 60 runs take two lock TTLs: the child keeps its lock by extending it, the standby waits.
        wait_until(lambda: int(redis_client.get("child-runs") or 0) >= 60, "the child to keep leading")
        assert runs.runs == 0
        assert not standby.is_leader

        os.kill(child.pid, signal.SIGKILL)  # no release: only the TTL frees the lock
        child.wait(timeout=10)

        wait_until(lambda: runs.runs >= 1, "the standby to take over")
        assert standby.is_leader
    finally:
        standby.stop()


def scheduler_process(heartbeat: Path, log: Path, tmp_path: Path, **settings: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DESKBRIDGE_REDIS_URL": REDIS_URL,
        "DESKBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "DESKBRIDGE_LOG_LEVEL": "INFO",
        "DESKBRIDGE_SECRET_KEY": KEY,
        **settings,
    }
    command = [sys.executable, "-m", "deskbridge.scheduler", "--heartbeat", str(heartbeat), "--tick", "0.1"]
    with log.open("wb") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def healthy(heartbeat: Path) -> bool:
    check = [sys.executable, "-m", "deskbridge.scheduler", "--check", "--heartbeat", str(heartbeat), "--tick", "0.1"]
    return subprocess.run(check, cwd=ROOT, check=False).returncode == 0


def test_the_scheduler_process_leads_and_hands_over_on_sigterm(
    redis_client: redis.Redis, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    first_heartbeat, second_heartbeat = tmp_path / "first.heartbeat", tmp_path / "second.heartbeat"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    assert not healthy(first_heartbeat)

    first = scheduler_process(first_heartbeat, first_log, tmp_path)
    processes.append(first)
    wait_until(lambda: "leading" in first_log.read_text(), "the first scheduler to lead")
    assert redis_client.exists(LOCK_NAME)
    wait_until(lambda: healthy(first_heartbeat), "the first scheduler's health check")

    second = scheduler_process(second_heartbeat, second_log, tmp_path)
    processes.append(second)
    wait_until(lambda: healthy(second_heartbeat), "the waiting scheduler's health check")
    assert "leading" not in second_log.read_text()

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    assert "stopped" in first_log.read_text()
    wait_until(lambda: not healthy(first_heartbeat), "the stopped scheduler's heartbeat to go stale")

    # The first released its lock: the second leads within one of its polls, long before the TTL.
    wait_until(lambda: "leading" in second_log.read_text(), "the second scheduler to take over")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert not redis_client.exists(LOCK_NAME)


class Blackhole:
    """A provider that is there and never answers: accepts connections, reads nothing, sends nothing."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


def test_sigterm_stops_the_scheduler_within_seconds_while_a_renewal_waits_on_a_provider(
    redis_client: redis.Redis, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Issue 12, finding 10: the channel renewal is stuck on a provider that never answers (msal would
    wait out its timeouts and retries for minutes); SIGTERM still ends the process within seconds,
    and the leader lock is released, not left to expire."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    with transaction(make_session_factory(engine)) as session:
        organisation = organisations.create(session, "Contoso")
        connections.create(
            session,
            SecretBox([KEY]),
            organisation.id,
            ConnectionKind.MICROSOFT,
            "Entra",
            settings={"tenant_id": "contoso.example", "client_id": "00000000-0000-0000-0000-000000000001"},
            credentials={"client_secret": "not-a-real-secret"},
        )
    engine.dispose()
    provider = Blackhole()
    heartbeat, log = tmp_path / "scheduler.heartbeat", tmp_path / "scheduler.log"
    try:
        scheduler = scheduler_process(
            heartbeat,
            log,
            tmp_path,
            DESKBRIDGE_MICROSOFT_AUTHORITY=f"https://127.0.0.1:{provider.port}",
            DESKBRIDGE_GRAPH_URL=f"https://127.0.0.1:{provider.port}/v1.0",
        )
        processes.append(scheduler)
        wait_until(lambda: "leading" in log.read_text(), "the scheduler to lead")
        wait_until(lambda: bool(provider.accepted), "the channel renewal to call the provider")

        scheduler.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert scheduler.wait(timeout=10) == 0  # within compose's default stop grace period
        print(f"\nthe scheduler stopped {time.monotonic() - sent:.1f} s after SIGTERM")
    finally:
        provider.close()
    text = log.read_text()
    assert "directory.channels still running" in text or "directory.channels," in text
    assert "stopped" in text
    assert not redis_client.exists(LOCK_NAME)  # released, not left to expire

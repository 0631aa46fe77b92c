"""The scheduler: jobs run on their intervals, and with a lock in Redis only one scheduler runs them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.conftest import REDIS_URL
from worker.leader import LOCK_NAME, LocalLeaderLock, RedisLeaderLock
from worker.scheduler import Job, Scheduler, start_in_process

DEADLINE = 20.0  # generous: only turns a hang into a failure


def wait_until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


class Counter:
    """A job that counts its runs (thread-safe)."""

    def __init__(self) -> None:
        self.runs = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.runs += 1


@pytest.fixture
def schedulers() -> Iterator[list[Scheduler]]:
    """Schedulers a test starts; all stopped at the end."""
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()


def test_jobs_run_at_their_intervals_until_stopped(schedulers: list[Scheduler]) -> None:
    fast, slow = Counter(), Counter()
    scheduler = start_in_process([Job("fast", 0.05, fast), Job("slow", 3600, slow)], heartbeat=0.05)
    schedulers.append(scheduler)

    wait_until(lambda: fast.runs >= 5, "five runs of the fast job")
    assert slow.runs == 1  # once on taking the lead, then not for an hour
    assert scheduler.is_leader

    scheduler.stop()
    assert (scheduler.is_alive, scheduler.is_leader) == (False, False)
    runs = fast.runs
    time.sleep(0.3)
    assert fast.runs == runs


def test_a_failing_job_keeps_its_schedule(schedulers: list[Scheduler]) -> None:
    calls = Counter()

    def flaky() -> None:
        calls()
        raise RuntimeError("job failed")

    schedulers.append(start_in_process([Job("flaky", 0.05, flaky)], heartbeat=0.05))
    wait_until(lambda: calls.runs >= 3, "three runs of a failing job")


def test_job_names_are_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Scheduler([Job("a", 1, Counter()), Job("a", 2, Counter())], LocalLeaderLock())


def redis_scheduler(counter: Counter, *, ttl: float = 1.0) -> Scheduler:
    lock = RedisLeaderLock(redis.Redis.from_url(REDIS_URL), ttl=ttl)
    return Scheduler([Job("count", 0.05, counter)], lock, heartbeat=0.1)


def test_only_one_of_two_schedulers_runs_the_jobs(redis_client: redis.Redis, schedulers: list[Scheduler]) -> None:
    first_runs, second_runs = Counter(), Counter()
    first = redis_scheduler(first_runs).start()
    schedulers.append(first)
    wait_until(lambda: first_runs.runs >= 1, "the first scheduler to lead")
    second = redis_scheduler(second_runs).start()
    schedulers.append(second)

    # 40 runs take two lock TTLs: the leader must have extended its lock to keep it.
    wait_until(lambda: first_runs.runs >= 40, "the leader to keep running its job")

    assert second_runs.runs == 0
    assert not second.is_leader
    assert redis_client.pttl(LOCK_NAME) > 0


def test_a_stopped_leader_hands_over_at_once(redis_client: redis.Redis, schedulers: list[Scheduler]) -> None:
    first_runs, second_runs = Counter(), Counter()
    # A long TTL: the hand-over can only come from the release, not from expiry.
    first = redis_scheduler(first_runs, ttl=3600).start()
    schedulers.append(first)
    wait_until(lambda: first.is_leader, "the first scheduler to lead")
    second = redis_scheduler(second_runs, ttl=3600).start()
    schedulers.append(second)

    first.stop()

    wait_until(lambda: second_runs.runs >= 1, "the second scheduler to take over")
    assert second.is_leader


def test_a_leader_that_lost_its_lock_stops_running_jobs(redis_client: redis.Redis, schedulers: list[Scheduler]) -> None:
    runs = Counter()
    scheduler = redis_scheduler(runs, ttl=3600).start()
    schedulers.append(scheduler)
    wait_until(lambda: runs.runs >= 1, "the scheduler to lead")

    redis_client.set(LOCK_NAME, "another-scheduler")  # what an expiry and a takeover look like from here

    wait_until(lambda: not scheduler.is_leader, "the scheduler to step down")
    time.sleep(0.1)  # a run that had started may still finish
    after = runs.runs
    time.sleep(0.3)
    assert runs.runs == after
    assert redis_client.get(LOCK_NAME) == b"another-scheduler"  # it does not delete what is not its own

    redis_client.delete(LOCK_NAME)
    wait_until(lambda: runs.runs > after, "the scheduler to lead again once the lock is free")


def test_stopping_gives_a_stuck_job_its_grace_then_releases_the_lock(
    redis_client: redis.Redis, schedulers: list[Scheduler]
) -> None:
    # Issue 12, finding 10: a job that does not end (a renewal waiting on a provider) holds neither the
    # stop nor the lock; a job that ends within the grace is waited for.
    stuck, quick_started, quick_done, release = (threading.Event() for _ in range(4))

    def hang() -> None:
        stuck.set()
        release.wait(60)

    def quick() -> None:
        quick_started.set()
        time.sleep(0.2)
        quick_done.set()

    scheduler = Scheduler(
        [Job("renewal", 3600, hang), Job("quick", 3600, quick)],
        RedisLeaderLock(redis.Redis.from_url(REDIS_URL), ttl=3600),
        heartbeat=0.05,
        grace=2.0,
    ).start()
    schedulers.append(scheduler)
    wait_until(lambda: stuck.is_set() and quick_started.is_set(), "both jobs to start")

    try:
        assert scheduler.stop() == ("renewal",)
        assert quick_done.is_set()  # the job that ended within the grace was waited for
        assert not scheduler.is_alive
        assert not redis_client.exists(LOCK_NAME)  # released at once, not left to its hour-long TTL
    finally:
        release.set()

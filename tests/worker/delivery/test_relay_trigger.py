"""The relay after commit on Redis: a commit enqueues a relay job only when none is waiting to start,
straight on the queue (no delay queue); the job, as it starts, lets the next commit enqueue another."""

from __future__ import annotations

import time

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from tests.worker.delivery.conftest import Pipeline, Receivers, RedisServer, delivered, wait_until
from worker import after_commit


def test_commits_while_a_relay_job_waits_enqueue_no_other(pipeline: Pipeline, redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    org = pipeline.organisation()
    assert pipeline.queued("relay") == 1  # the organisation's commit
    assert client.hlen("dramatiq:relay.DQ.msgs") == 0  # on the queue itself, not delayed
    assert 0 < client.pttl(after_commit.PENDING_KEY) <= after_commit.PENDING_TTL_MS

    for number in range(5):
        pipeline.desk(org, f"D{number}")
    assert pipeline.queued("relay") == 1  # the waiting job will see them all

    after_commit.relay_starting(pipeline.broker)  # the job starts: it reads the events after this
    assert client.exists(after_commit.PENDING_KEY) == 0
    pipeline.desk(org, "after")
    assert pipeline.queued("relay") == 2


def test_a_relay_job_that_cannot_clear_its_key_still_relays(
    pipeline: Pipeline, receivers: Receivers, redis_server: RedisServer
) -> None:
    receiver = receivers.start()
    org = pipeline.organisation()
    endpoint = pipeline.endpoint(org, receiver)
    pipeline.desk(org, "D1")
    redis_server.stop()
    after_commit.relay_starting(pipeline.broker)  # logged; the key expires on its own
    redis_server.start()
    pipeline.start_worker()
    pipeline.desk(org, "D2")  # the key went with Redis: this commit enqueues a relay job
    wait_until(delivered(pipeline, endpoint, 2), "both events delivered (the job for the first went with Redis)")


def test_the_relay_job_stays_and_relays_later_commits_without_another_job(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    """While commits keep coming, and through a quiet spell too, the relay job stays and each commit
    only wakes it: a commit after a quiet spell waits for no job to be fetched."""
    receiver = receivers.start()
    org = pipeline.organisation()
    endpoint = pipeline.endpoint(org, receiver)
    pipeline.start_worker()
    pipeline.desk(org, "D0")
    wait_until(delivered(pipeline, endpoint, 1), "the first event delivered")
    running = pipeline.queued("relay")  # one, or two if the first commit's key expired before the worker started
    assert running >= 1

    for number in range(1, 4):
        pipeline.desk(org, f"D{number}")
        wait_until(delivered(pipeline, endpoint, number + 1), f"event {number} delivered")
        assert pipeline.queued("relay") == running  # the same jobs, still running: no other was enqueued

    time.sleep(2 * after_commit.LINGER_SECONDS)  # a quiet spell: no commit while it waits
    assert pipeline.queued("relay") >= 1
    pipeline.desk(org, "after")
    wait_until(delivered(pipeline, endpoint, 5), "the event after it delivered")


def test_a_busy_relay_job_hands_over_to_a_successor(
    pipeline: Pipeline, receivers: Receivers, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After BUSY_SECONDS the relay job sends a successor and relays until it took over, then ends:
    one relay job is left, and commits go on being relayed."""
    monkeypatch.setattr(after_commit, "BUSY_SECONDS", 0.5)
    client = redis.Redis.from_url(redis_server.url)
    receiver = receivers.start()
    org = pipeline.organisation()
    endpoint = pipeline.endpoint(org, receiver)
    pipeline.start_worker()
    pipeline.desk(org, "D0")
    wait_until(delivered(pipeline, endpoint, 1), "the first event delivered")
    running = pipeline.queued("relay")  # as many as one relay job running counts
    wait_until(lambda: client.get(after_commit.OWNER_KEY) is not None, "a relay job to be the relay")
    first = client.get(after_commit.OWNER_KEY)

    wait_until(lambda: client.get(after_commit.OWNER_KEY) not in (None, first), "a successor to take over")
    pipeline.desk(org, "D1")
    wait_until(delivered(pipeline, endpoint, 2), "the event after the hand-over delivered")
    wait_until(lambda: pipeline.queued("relay") <= running, "the job that handed over to end")


def test_a_relay_job_while_another_is_the_relay_makes_one_pass(redis_server: RedisServer) -> None:
    """Dramatiq putting back the job of a worker that died, while the next commit's job is the relay."""
    broker = RedisBroker(url=redis_server.url)  # type: ignore[no-untyped-call]
    broker.client.set(after_commit.OWNER_KEY, b"the-relay", px=after_commit.OWNER_TTL_MS)
    broker.client.set(after_commit.PENDING_KEY, b"1", px=after_commit.PENDING_TTL_MS)
    passes: list[int] = []

    after_commit.relay_while_busy(broker, lambda: passes.append(1), hand_over=lambda token: None)

    assert passes == [1]
    assert broker.client.get(after_commit.OWNER_KEY) == b"the-relay"  # its keys left alone
    assert broker.client.exists(after_commit.PENDING_KEY) == 1


def test_a_relay_job_ends_when_its_worker_stops(redis_server: RedisServer) -> None:
    broker = RedisBroker(url=redis_server.url)  # type: ignore[no-untyped-call]
    passes: list[int] = []
    after_commit.STOPPING.set()
    try:
        after_commit.relay_while_busy(broker, lambda: passes.append(1), hand_over=lambda token: None)
    finally:
        after_commit.STOPPING.clear()

    assert passes == [1, 1]  # its pass, and the last one after letting go
    assert broker.client.exists(after_commit.OWNER_KEY, after_commit.PENDING_KEY) == 0  # the next commit enqueues


def test_a_relay_job_that_cannot_send_its_successor_lets_go(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(after_commit, "BUSY_SECONDS", 0.0)
    broker = RedisBroker(url=redis_server.url)  # type: ignore[no-untyped-call]
    passes: list[int] = []

    def refused(token: str) -> None:
        raise redis.ConnectionError("the broker refused the successor")

    after_commit.relay_while_busy(broker, lambda: passes.append(1), hand_over=refused)

    assert passes == [1, 1]
    assert broker.client.exists(after_commit.OWNER_KEY, after_commit.PENDING_KEY) == 0


def test_a_successor_tells_the_job_it_takes_over_from(redis_server: RedisServer) -> None:
    broker = RedisBroker(url=redis_server.url)  # type: ignore[no-untyped-call]
    broker.client.set(after_commit.OWNER_KEY, b"before", px=after_commit.OWNER_TTL_MS)
    after_commit.STOPPING.set()  # the successor makes its pass and ends at once
    try:
        after_commit.relay_while_busy(broker, lambda: None, taking_over="before", hand_over=lambda token: None)
    finally:
        after_commit.STOPPING.clear()

    assert broker.client.lpop(f"{after_commit.HANDOVER_PREFIX}before") == b"1"

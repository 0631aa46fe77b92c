"""The relay after commit on Redis: a commit enqueues a relay job only when none is waiting to start,
straight on the queue (no delay queue); the job, as it starts, lets the next commit enqueue another."""

from __future__ import annotations

import pytest
import redis

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


def test_a_running_relay_job_relays_later_commits_without_another_job(
    pipeline: Pipeline, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While commits keep coming, the relay job stays and each commit only wakes it; once it has
    waited LINGER_SECONDS for one, it ends, and the next commit enqueues a new job."""
    monkeypatch.setattr(after_commit, "LINGER_SECONDS", 5.0)  # longer than a commit takes on a busy machine
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

    wait_until(lambda: pipeline.queued("relay") == 0, "the relay job to end once no commit came")
    pipeline.desk(org, "after")
    wait_until(delivered(pipeline, endpoint, 5), "the event after it delivered by a new job")

"""Redis stopped while changes commit and while the relay runs, then started again (empty, as a
Redis without persistence comes back): every event still reaches the receiver, once."""

from __future__ import annotations

import pytest
import redis

from tests.worker.delivery.conftest import Pipeline, Receivers, RedisServer, delivered, wait_until
from worker import runtime
from worker.scheduler import default_jobs


def test_events_committed_and_relayed_while_redis_is_down_are_delivered_once_it_is_back(
    pipeline: Pipeline, receivers: Receivers, redis_server: RedisServer
) -> None:
    pipeline.start_worker(threads=4)
    jobs = {job.name: job.func for job in default_jobs(runtime.current())}
    org = pipeline.organisation()
    receiver = receivers.start()
    endpoint = pipeline.endpoint(org, receiver)
    before = pipeline.desk(org, "before")
    wait_until(delivered(pipeline, endpoint, 1), "the first delivery")

    redis_server.stop()
    # Commits go on: the relay after commit cannot enqueue, and must not raise.
    down = [pipeline.desk(org, f"down {number}") for number in range(3)]
    assert pipeline.unrelayed() == 3  # the events wait in the store
    # The scheduler's relay runs meanwhile: it makes the deliveries, then cannot enqueue them.
    with pytest.raises(redis.ConnectionError):
        jobs["webhooks.relay"]()
    assert pipeline.unrelayed() == 0
    assert pipeline.statuses(endpoint) == ["succeeded"] + ["pending"] * 3
    later = pipeline.desk(org, "still down")

    redis_server.start()  # on the same port, empty
    jobs["webhooks.relay"]()  # the scheduler's next runs
    jobs["webhooks.sweep"]()

    wait_until(delivered(pipeline, endpoint, 5), "every event delivered")
    ids = [request.webhook_id for request in receiver.snapshot() if request.status == 200]
    assert sorted(ids) == sorted([before, *down, later])  # each once
    assert all(request.verified for request in receiver.snapshot())

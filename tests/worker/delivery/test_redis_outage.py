"""Redis stopped while changes commit, while the relay runs, while a retry is due to be enqueued and
while a backlog is resumed, then started again (empty, as a Redis without persistence comes back):
every event still reaches the receiver, as soon as the scheduler's jobs run."""

from __future__ import annotations

import threading

import pytest
import redis

from store.db import transaction
from store.services import webhook_endpoints
from tests.worker.delivery.conftest import Pipeline, Receivers, RedisServer, Reply, delivered, wait_until
from worker import runtime
from worker.scheduler import default_jobs
from worker.webhooks import enqueue


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


def test_a_retry_that_cannot_be_enqueued_is_left_to_the_sweep(
    pipeline: Pipeline, receivers: Receivers, redis_server: RedisServer
) -> None:
    pipeline.start_worker(threads=4)
    jobs = {job.name: job.func for job in default_jobs(runtime.current())}
    org = pipeline.organisation()
    answer = threading.Event()
    receiver = receivers.start([Reply(500, hold=answer)], then=Reply(200))
    endpoint = pipeline.endpoint(org, receiver)
    event_id = pipeline.desk(org, "D1")
    wait_until(lambda: len(receiver.snapshot()) == 1, "the first attempt's request")

    redis_server.stop()  # while the request is open: its retry (due in 0.2 s) cannot be enqueued
    answer.set()
    wait_until(lambda: [d.attempts for d in pipeline.deliveries(endpoint)] == [1], "the first attempt's record")

    redis_server.start()
    wait_until(lambda: jobs["webhooks.sweep"]() == 1, "the sweep to find the retry")  # it is due at once

    wait_until(delivered(pipeline, endpoint, 1), "the retry to succeed")
    assert [request.status for request in receiver.snapshot()] == [500, 200]
    assert {request.webhook_id for request in receiver.snapshot()} == {event_id}


def test_a_backlog_resumed_while_redis_is_down_is_delivered_once_it_is_back(
    pipeline: Pipeline, receivers: Receivers, redis_server: RedisServer
) -> None:
    pipeline.start_worker(threads=4)
    jobs = {job.name: job.func for job in default_jobs(runtime.current())}
    org = pipeline.organisation()
    receiver = receivers.start()
    endpoint = pipeline.endpoint(org, receiver, paused=True)
    kept = [pipeline.desk(org, f"D{number}") for number in range(3)]
    wait_until(lambda: pipeline.unrelayed() == 0, "the relay")

    redis_server.stop()
    with transaction(pipeline.factory) as session:  # as PATCH /v1/webhooks/{id} {"paused": false} does
        _, backlog = webhook_endpoints.update_endpoint(
            session, webhook_endpoints.get_endpoint(session, org, endpoint), paused=False
        )
    enqueue.backlog(runtime.current(), backlog)  # after the commit: it must not raise

    redis_server.start()
    assert jobs["webhooks.sweep"]() == 3

    wait_until(delivered(pipeline, endpoint, 3), "the backlog")
    assert sorted(request.webhook_id for request in receiver.snapshot()) == sorted(kept)

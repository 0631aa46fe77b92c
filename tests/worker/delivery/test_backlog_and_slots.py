"""A paused endpoint's backlog goes out in event order when it is resumed, and a hanging endpoint
holds only its own delivery slots: another endpoint's deliveries keep arriving."""

from __future__ import annotations

import threading

from store.db import transaction
from store.services import webhook_endpoints
from tests.worker.delivery.conftest import Pipeline, Receivers, RedisServer, Reply, delivered, wait_until
from worker import runtime
from worker.webhooks import enqueue, limits


def test_a_resumed_endpoint_gets_its_backlog_in_event_order(pipeline: Pipeline, receivers: Receivers) -> None:
    pipeline.start_worker(threads=8)
    org = pipeline.organisation()
    receiver = receivers.start()
    endpoint = pipeline.endpoint(org, receiver, paused=True)
    kept = [pipeline.desk(org, f"D{number}") for number in range(12)]
    wait_until(lambda: pipeline.unrelayed() == 0, "the relay")
    assert pipeline.statuses(endpoint) == ["pending"] * 12  # kept while paused
    assert receiver.snapshot() == []

    with transaction(pipeline.factory) as session:  # as PATCH /v1/webhooks/{id} {"paused": false} does
        _, backlog = webhook_endpoints.update_endpoint(
            session, webhook_endpoints.get_endpoint(session, org, endpoint), paused=False
        )
    enqueue.backlog(runtime.current(), backlog)
    after = pipeline.desk(org, "after")

    wait_until(delivered(pipeline, endpoint, 13), "the backlog and the new event")
    ids = [request.webhook_id for request in receiver.snapshot()]
    assert [event_id for event_id in ids if event_id in kept] == kept  # the backlog in event order
    # An event after the resume goes out at once, as always, so it may overtake the backlog.
    assert sorted(ids) == sorted([*kept, after])
    assert all(request.verified for request in receiver.snapshot())


def test_a_hanging_endpoint_does_not_hold_up_another(
    pipeline: Pipeline, receivers: Receivers, redis_server: RedisServer
) -> None:
    # Two slots an endpoint, counted in Redis, and more worker threads than that. The request
    # timeout is longer than the test, so no timeout frees a thread: only the slots do.
    limits.configure_limits(redis_server.url, per_endpoint=2)
    pipeline.configure(timeout=60)
    pipeline.start_worker(threads=4)
    org = pipeline.organisation()
    hang = threading.Event()
    hanging, healthy = receivers.start(then=Reply(hold=hang)), receivers.start()
    to_hanging = pipeline.endpoint(org, hanging)
    to_healthy = pipeline.endpoint(org, healthy)

    events = [pipeline.desk(org, f"D{number}") for number in range(8)]

    wait_until(delivered(pipeline, to_healthy, 8), "the healthy endpoint's deliveries")
    assert sorted(request.webhook_id for request in healthy.snapshot()) == sorted(events)
    assert not hang.is_set()
    assert 1 <= len(hanging.snapshot()) <= 2  # the hanging endpoint holds its two slots, no more

    hang.set()  # it answers at last: its deliveries follow
    wait_until(delivered(pipeline, to_hanging, 8), "the hanging endpoint's deliveries")
    accepted = [request.webhook_id for request in hanging.snapshot() if request.status == 200]
    assert sorted(set(accepted)) == sorted(events)

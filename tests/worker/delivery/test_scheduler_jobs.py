"""The scheduler's webhook jobs (worker.scheduler.default_jobs): the periodic relay catches events
the relay after commit never saw, the sweep sends long retries once they are due, and leases keep
the sweep from enqueueing a delivery that is already on the queue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from store.columns import utcnow
from store.db import transaction
from store.services import organisations, webhook_endpoints
from tests.worker.delivery.conftest import Pipeline, Receivers, Reply, delivered, wait_until
from worker import runtime
from worker.scheduler import Scheduler, default_jobs, start_in_process


@pytest.fixture
def jobs(pipeline: Pipeline) -> dict[str, Callable[[], object]]:
    """The scheduler's jobs by name, to run one at a time as its leader would."""
    return {job.name: job.func for job in default_jobs(runtime.current())}


@pytest.fixture
def schedulers() -> Iterator[list[Scheduler]]:
    started: list[Scheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()


def test_an_event_whose_relay_after_commit_was_skipped_is_delivered_by_the_periodic_relay(
    pipeline: Pipeline, receivers: Receivers, schedulers: list[Scheduler]
) -> None:
    pipeline.start_worker()
    receiver = receivers.start()
    # Every commit here skips the relay after commit (a process that died between commit and enqueue).
    with transaction(pipeline.quiet) as session:
        org = organisations.create(session, "Acme").id
        endpoint, secret = webhook_endpoints.create_endpoint(
            session, org, receiver.url, box=pipeline.box, event_types=["desk.*"]
        )
        endpoint_id = endpoint.id
    receiver.expect(secret)
    event_id = pipeline.desk(org, "D1", factory=pipeline.quiet)
    assert pipeline.unrelayed() == 3  # organisation.created, endpoint.created and desk.created wait
    assert pipeline.deliveries(endpoint_id) == []

    schedulers.append(start_in_process(default_jobs(runtime.current()), heartbeat=0.1))

    wait_until(delivered(pipeline, endpoint_id, 1), "the periodic relay to deliver the event")
    [request] = receiver.snapshot()
    assert request.verified
    assert request.webhook_id == event_id
    assert pipeline.unrelayed() == 0


def test_a_long_retry_waits_in_the_store_and_the_sweep_sends_it_once_due(
    pipeline: Pipeline, receivers: Receivers, jobs: dict[str, Callable[[], object]]
) -> None:
    pipeline.start_worker()
    org = pipeline.organisation()
    # Retry-After beyond delivery.SHORT_RETRY: the retry is written down, not put on the queue.
    receiver = receivers.start([Reply(503, headers={"Retry-After": "600"})], then=Reply(200))
    endpoint = pipeline.endpoint(org, receiver)
    event_id = pipeline.desk(org, "D1")

    wait_until(lambda: [d.attempts for d in pipeline.deliveries(endpoint)] == [1], "the first attempt")
    wait_until(lambda: pipeline.queued("webhooks") == 0, "the queue to empty")  # nothing waits there
    [delivery] = pipeline.deliveries(endpoint)
    assert str(delivery.status) == "pending"
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at >= utcnow() + timedelta(seconds=590)
    assert jobs["webhooks.sweep"]() == 0  # not due yet

    pipeline.time_passes(delivery.id)  # ten minutes pass
    assert jobs["webhooks.sweep"]() == 1

    wait_until(delivered(pipeline, endpoint, 1), "the swept retry to succeed")
    assert [request.status for request in receiver.snapshot()] == [503, 200]
    assert {request.webhook_id for request in receiver.snapshot()} == {event_id}
    assert jobs["webhooks.sweep"]() == 0


def test_leases_keep_the_jobs_from_enqueueing_a_delivery_twice(
    pipeline: Pipeline, receivers: Receivers, jobs: dict[str, Callable[[], object]]
) -> None:
    org = pipeline.organisation()
    receiver = receivers.start()
    endpoint = pipeline.endpoint(org, receiver)
    event_id = pipeline.desk(org, "D1")  # its relay job waits on the queue: no worker runs yet

    assert jobs["webhooks.relay"]() == 1  # the delivery is made, leased and enqueued
    assert jobs["webhooks.relay"]() == 0  # the event is relayed already
    assert jobs["webhooks.sweep"]() == 0  # the delivery is leased: its job is on the queue
    assert pipeline.queued("webhooks") == 1

    worker = pipeline.start_worker()  # runs the relay job of the commit too: it finds nothing new

    wait_until(delivered(pipeline, endpoint, 1), "the delivery")
    pipeline.broker.join("webhooks", timeout=20_000)
    worker.stop(timeout=20_000)  # the relay job stays until its worker stops
    pipeline.broker.join("relay", timeout=20_000)
    assert [request.webhook_id for request in receiver.snapshot()] == [event_id]
    assert jobs["webhooks.sweep"]() == 0

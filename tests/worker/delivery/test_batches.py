"""Delivery jobs: one per endpoint with its deliveries in event order, sent up to LANES at once in as
many of the endpoint's slots (a backlog job one after the other), the successes recorded together and
the failures on their own. The relay and the jobs are run here by hand (no worker), so what each job
enqueues next can be looked at."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from store.columns import utcnow
from store.db import transaction
from store.services import desks, webhook_endpoints
from store.services.delivery_attempts import AttemptResult
from tests.worker.delivery.conftest import Pipeline, Receivers, Reply, wait_until
from worker import runtime
from worker.webhooks import delivery, limits
from worker.webhooks.delivery import MAX_BATCH


@dataclass
class Queue:
    """An `Enqueue` that keeps the jobs: (delivery ids, delay in ms)."""

    jobs: list[tuple[list[int], int]] = field(default_factory=list)

    def __call__(self, delivery_ids: list[int], delay_ms: int) -> None:
        self.jobs.append((list(delivery_ids), delay_ms))

    def take(self) -> list[tuple[list[int], int]]:
        taken, self.jobs = self.jobs, []
        return taken


def ids(pipeline: Pipeline, endpoint_id: int) -> list[int]:
    return [made.id for made in pipeline.deliveries(endpoint_id)]


def test_the_relay_makes_one_job_an_endpoint_in_event_order(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    first, second = receivers.start(), receivers.start()
    to_first, to_second = pipeline.endpoint(org, first), pipeline.endpoint(org, second, payload_format="array")
    for number in range(5):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()

    assert delivery.relay(runtime.current(), queue) == 10
    assert queue.take() == [(ids(pipeline, to_first), 0), (ids(pipeline, to_second), 0)]
    for job in (ids(pipeline, to_first), ids(pipeline, to_second)):
        results = delivery.attempt_batch(runtime.current(), job, queue)
        assert [result.state for result in results.values()] == ["succeeded"] * 5
    assert queue.take() == []
    events = [event.id for event in pipeline.events(org, "desk.created")]
    for receiver in (first, second):
        # One request an event; several at once, so they may arrive in another order.
        assert sorted(request.webhook_id for request in receiver.snapshot()) == sorted(events)
        assert all(request.verified for request in receiver.snapshot())
    assert [len(request.events()) for request in second.snapshot()] == [1] * 5  # "array": one event an array
    assert pipeline.statuses(to_first) == pipeline.statuses(to_second) == ["succeeded"] * 5
    assert [len(pipeline.attempts(delivery_id)) for delivery_id in ids(pipeline, to_first)] == [1] * 5

    # The same job again (Dramatiq delivers at least once): finished deliveries are skipped.
    assert delivery.attempt_batch(runtime.current(), ids(pipeline, to_first), queue) == {}
    assert len(first.snapshot()) == 5


def test_a_failure_in_a_job_goes_on_its_schedule_and_the_others_do_not_wait(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    org = pipeline.organisation()
    receiver = receivers.start([Reply(), Reply(500), Reply()])
    endpoint = pipeline.endpoint(org, receiver)
    for number in range(3):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    [(job, _)] = queue.take()
    first, failed, third = job

    # One after the other: the receiver answers by arrival, so the second delivery is the one refused.
    results = delivery.attempt_batch(runtime.current(), job, queue, in_order=True)

    assert {key: result.state for key, result in results.items()} == {
        first: "succeeded",
        failed: "retry",
        third: "succeeded",
    }
    [(retry, delay_ms)] = queue.take()
    assert retry == [failed]
    assert 160 <= delay_ms <= 240  # a short retry, enqueued with its delay: FAST_RETRIES[1] ±20 %
    assert pipeline.statuses(endpoint) == ["succeeded", "pending", "succeeded"]
    assert pipeline.endpoint_row(endpoint).failing_since is None  # the success after the failure ended its streak
    delivery.attempt_batch(runtime.current(), [failed], queue)
    assert pipeline.statuses(endpoint) == ["succeeded"] * 3


def test_a_failure_after_successes_in_a_job_starts_a_failing_streak(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    receiver = receivers.start([Reply(), Reply(500)])
    endpoint = pipeline.endpoint(org, receiver)
    for number in range(2):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    [(job, _)] = queue.take()

    results = delivery.attempt_batch(runtime.current(), job, queue, in_order=True)

    assert [result.state for result in results.values()] == ["succeeded", "retry"]
    assert pipeline.endpoint_row(endpoint).failing_since is not None  # the earlier success does not end it


def test_a_job_in_order_sends_each_delivery_after_the_one_before(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    receiver = receivers.start()
    endpoint = pipeline.endpoint(org, receiver)
    for number in range(6):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    [(job, _)] = queue.take()

    results = delivery.attempt_batch(runtime.current(), job, queue, in_order=True)

    assert [result.state for result in results.values()] == ["succeeded"] * 6
    events = [event.id for event in pipeline.events(org, "desk.created")]
    assert [request.webhook_id for request in receiver.snapshot()] == events
    assert pipeline.statuses(endpoint) == ["succeeded"] * 6


def test_a_job_posts_at_once_in_as_many_slots_as_are_free(pipeline: Pipeline, receivers: Receivers) -> None:
    limits.configure_limits(None, per_endpoint=3)
    org = pipeline.organisation()
    answer = threading.Event()
    receiver = receivers.start([Reply()], then=Reply(hold=answer))  # the first request goes alone
    endpoint = pipeline.endpoint(org, receiver)
    for number in range(5):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    [(job, _)] = queue.take()
    results: dict[int, AttemptResult] = {}

    with limits.endpoint_slot(endpoint) as held:  # another job of the endpoint holds one of its 3 slots
        assert held
        posting = threading.Thread(target=lambda: results.update(delivery.attempt_batch(runtime.current(), job, queue)))
        posting.start()
        wait_until(lambda: len(receiver.snapshot()) == 3, "the first request, then two at once")
        with limits.endpoint_slot(endpoint) as third:
            assert not third  # the job holds the two others while its requests are in flight
        answer.set()
        posting.join(timeout=20)

    assert [result.state for result in results.values()] == ["succeeded"] * 5
    assert pipeline.statuses(endpoint) == ["succeeded"] * 5
    with limits.endpoint_slots(endpoint, 5) as free:
        assert free == 3  # every slot was given back


def test_a_410_stops_the_job_and_the_rest_waits_for_the_endpoint(pipeline: Pipeline, receivers: Receivers) -> None:
    limits.configure_limits(None, per_endpoint=1)  # one request at a time: the 410 comes before the others start
    org = pipeline.organisation()
    receiver = receivers.start([Reply(), Reply(410)])
    endpoint = pipeline.endpoint(org, receiver)
    for number in range(4):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    [(job, _)] = queue.take()

    results = delivery.attempt_batch(runtime.current(), job, queue)

    assert [result.state for result in results.values()] == ["succeeded", "exhausted"]
    assert len(receiver.snapshot()) == 2  # nothing more went to an endpoint that said 410
    assert queue.take() == []
    assert pipeline.statuses(endpoint) == ["succeeded", "exhausted", "pending", "pending"]
    assert pipeline.endpoint_row(endpoint).disabled_at is not None
    with transaction(pipeline.factory) as session:  # enabled again: the rest goes out, in order
        backlog = webhook_endpoints.enable_endpoint(session, webhook_endpoints.get_endpoint(session, org, endpoint))
    assert backlog == job[2:]
    delivery.attempt_batch(runtime.current(), backlog, queue)
    assert pipeline.statuses(endpoint) == ["succeeded", "exhausted", "succeeded", "succeeded"]


def test_a_job_over_its_time_budget_hands_the_rest_on_in_order(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    receiver = receivers.start(then=Reply(delay=0.1))
    endpoint = pipeline.endpoint(org, receiver)
    for number in range(4):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    [(job, _)] = queue.take()

    started = utcnow()
    results = delivery.attempt_batch(runtime.current(), job, queue, budget=0.05, in_order=True)

    assert list(results) == job[:1]  # one request is always made, then the budget is spent
    assert queue.take() == [(job[1:], 0)]
    assert pipeline.statuses(endpoint) == ["succeeded", "pending", "pending", "pending"]
    leased = {made.next_attempt_at for made in pipeline.deliveries(endpoint)[1:]}
    assert len(leased) == 1  # leased anew as they are handed on, for as long as a fresh job
    assert leased.pop() >= started + delivery.LEASE  # type: ignore[operator]


def test_a_job_without_a_free_slot_comes_back_whole(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    receiver = receivers.start()
    endpoint = pipeline.endpoint(org, receiver)
    for number in range(3):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    [(job, _)] = queue.take()
    limits.configure_limits(None, per_endpoint=1)

    with limits.endpoint_slot(endpoint) as held:  # another job of the endpoint holds its only slot
        assert held
        assert delivery.attempt_batch(runtime.current(), job, queue) == {}

    [(again, delay_ms)] = queue.take()
    assert again == job
    assert delivery.BUSY_RETRY_MS <= delay_ms < 2 * delivery.BUSY_RETRY_MS
    assert receiver.snapshot() == []


def test_long_jobs_and_mixed_endpoints_are_split(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    first, second = receivers.start(), receivers.start()
    to_first, to_second = pipeline.endpoint(org, first), pipeline.endpoint(org, second)
    events = MAX_BATCH + 2
    with transaction(pipeline.quiet) as session:
        for number in range(events):
            desks.create(session, org, f"D{number}")
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    jobs = queue.take()
    assert [len(job) for job, _ in jobs] == [MAX_BATCH, 2, MAX_BATCH, 2]  # cut at MAX_BATCH, a job an endpoint

    mixed = ids(pipeline, to_second)[:2] + ids(pipeline, to_first)[:1] + ids(pipeline, to_second)[2:3]
    results = delivery.attempt_batch(runtime.current(), mixed, queue)
    assert list(results) == [mixed[0], mixed[1], mixed[3]]  # the first endpoint's ones, in order
    assert queue.take() == [([mixed[2]], 0)]  # the other endpoint's one: a job of its own

    too_many = ids(pipeline, to_first)
    results = delivery.attempt_batch(runtime.current(), too_many, queue)
    assert list(results) == too_many[:MAX_BATCH]
    assert queue.take() == [(too_many[MAX_BATCH:], 0)]

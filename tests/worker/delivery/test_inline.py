"""The relay job posting a small pass's deliveries itself (worker.webhooks.inline): as their jobs
would (slots, signatures, retries, 410), every endpoint's successes recorded together, what it does
not post left to jobs, what it had under way written down so that a redelivered relay job enqueues it.
The relay is run here by hand (no worker), so what it enqueues can be looked at."""

from __future__ import annotations

import dataclasses
import threading
from functools import partial

import pytest
import redis

from store.db import transaction
from store.secret_box import SecretBox
from store.services import desks, webhook_endpoints
from tests.worker.delivery.conftest import MakePipeline, Pipeline, Receiver, Receivers, Reply, wait_until
from tests.worker.delivery.test_batches import Queue, ids
from worker import runtime
from worker.webhooks import delivery, inline, limits


def in_flight_of(pipeline: Pipeline, message_id: str = "relay-message") -> inline.InFlight:
    return inline.InFlight.of(pipeline.broker, message_id)


def relay_inline(pipeline: Pipeline, queue: Queue, in_flight: inline.InFlight, *, gather: float = 5.0) -> int:
    """A relay pass as the relay job makes it, and what it posted recorded (as before the job ends)."""
    post = partial(inline.post, runtime.current(), enqueue=queue, in_flight=in_flight, gather=gather)
    relayed = delivery.relay(runtime.current(), queue, post=post)
    in_flight.settle()
    return relayed


def endpoint(pipeline: Pipeline, org: int, receiver: Receiver, **options: object) -> int:
    """An endpoint with options `Pipeline.endpoint` does not take (ordered, a rate limit)."""
    with transaction(pipeline.factory) as session:
        made, secret = webhook_endpoints.create_endpoint(
            session,
            org,
            receiver.url,
            box=pipeline.box,
            event_types=["desk.*"],
            **options,  # type: ignore[arg-type]
        )
        endpoint_id = made.id
    pipeline.secrets[endpoint_id] = secret
    receiver.expect(secret)
    return endpoint_id


@pytest.mark.parametrize("store", ["postgres", "sqlite"])
def test_a_small_pass_is_posted_by_the_relay_itself(
    make_pipeline: MakePipeline, receivers: Receivers, store: str
) -> None:
    pipeline = make_pipeline(store)
    org = pipeline.organisation()
    first, second = receivers.start(), receivers.start()
    to_first, to_second = pipeline.endpoint(org, first), pipeline.endpoint(org, second, payload_format="array")
    for number in range(3):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue, in_flight = Queue(), in_flight_of(pipeline)

    assert relay_inline(pipeline, queue, in_flight) == 6

    assert queue.take() == []  # no job
    assert pipeline.statuses(to_first) == pipeline.statuses(to_second) == ["succeeded"] * 3
    assert [len(pipeline.attempts(delivery_id)) for delivery_id in ids(pipeline, to_first)] == [1] * 3
    events = [event.id for event in pipeline.events(org, "desk.created")]
    for receiver in (first, second):
        assert sorted(request.webhook_id for request in receiver.snapshot()) == sorted(events)
        assert all(request.verified for request in receiver.snapshot())
    assert [len(request.events()) for request in second.snapshot()] == [1] * 3
    assert in_flight.client is not None
    assert in_flight.client.exists(in_flight.key) == 0  # struck out once recorded
    with limits.endpoint_slots(to_first, 10) as free:
        assert free == limits.DEFAULT_PER_ENDPOINT  # every slot given back


def test_the_relay_leaves_to_jobs_what_their_jobs_must_send(pipeline: Pipeline, receivers: Receivers) -> None:
    """Ordered endpoints (their jobs keep the order), rate-limited ones (their jobs take from the bucket),
    one without a free slot; the others are posted at once."""
    org = pipeline.organisation()
    plain, busy, ordered, limited = (receivers.start() for _ in range(4))
    to_plain, to_busy = pipeline.endpoint(org, plain), pipeline.endpoint(org, busy)
    to_ordered = endpoint(pipeline, org, ordered, ordered=True)
    to_limited = endpoint(pipeline, org, limited, rate_limit_per_second=5)
    for number in range(2):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()

    with limits.endpoint_slots(to_busy, limits.DEFAULT_PER_ENDPOINT) as held:  # another job holds every slot
        assert held == limits.DEFAULT_PER_ENDPOINT
        relay_inline(pipeline, queue, in_flight_of(pipeline))

    assert pipeline.statuses(to_plain) == ["succeeded"] * 2
    assert sorted(queue.take()) == sorted(
        [(ids(pipeline, to_busy), 0), (ids(pipeline, to_ordered), 0), (ids(pipeline, to_limited), 0)]
    )
    for receiver in (busy, ordered, limited):
        assert receiver.snapshot() == []
    assert pipeline.statuses(to_ordered) == ["pending"] * 2


def test_a_larger_pass_goes_by_job(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    receiver = receivers.start()
    to_it = pipeline.endpoint(org, receiver)
    with transaction(pipeline.quiet) as session:
        for number in range(delivery.INLINE_MAX + 1):
            desks.create(session, org, f"D{number}")
    queue = Queue()

    relay_inline(pipeline, queue, in_flight_of(pipeline))

    assert queue.take() == [(ids(pipeline, to_it), 0)]
    assert receiver.snapshot() == []


def test_a_failure_posted_by_the_relay_goes_on_its_schedule(pipeline: Pipeline, receivers: Receivers) -> None:
    limits.configure_limits(None, per_endpoint=1)  # one at a time: the receiver answers in event order
    org = pipeline.organisation()
    receiver = receivers.start([Reply(), Reply(500), Reply()])
    to_it = pipeline.endpoint(org, receiver)
    for number in range(3):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()

    relay_inline(pipeline, queue, in_flight_of(pipeline))

    first, failed, third = ids(pipeline, to_it)
    [(retry, delay_ms)] = queue.take()
    assert retry == [failed]
    assert 160 <= delay_ms <= 240  # a short retry, enqueued with its delay: FAST_RETRIES[1] ±20 %
    assert pipeline.statuses(to_it) == ["succeeded", "pending", "succeeded"]
    assert [len(pipeline.attempts(made)) for made in (first, failed, third)] == [1, 1, 1]
    assert pipeline.endpoint_row(to_it).failing_since is None  # the success after the failure ended its streak


def test_a_410_to_the_relay_disables_the_endpoint_and_sends_no_more(pipeline: Pipeline, receivers: Receivers) -> None:
    limits.configure_limits(None, per_endpoint=1)
    org = pipeline.organisation()
    receiver = receivers.start([Reply(), Reply(410)])
    to_it = pipeline.endpoint(org, receiver)
    for number in range(4):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()

    relay_inline(pipeline, queue, in_flight_of(pipeline))

    assert len(receiver.snapshot()) == 2
    assert queue.take() == []  # the rest waits for the endpoint
    assert pipeline.statuses(to_it) == ["succeeded", "exhausted", "pending", "pending"]
    assert pipeline.endpoint_row(to_it).disabled_at is not None


def test_a_slow_receiver_holds_up_neither_the_relay_nor_another_endpoint(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    org = pipeline.organisation()
    answer = threading.Event()
    slow, fast = receivers.start([Reply(hold=answer)]), receivers.start()
    to_slow, to_fast = pipeline.endpoint(org, slow), pipeline.endpoint(org, fast)
    pipeline.desk(org, "D1", factory=pipeline.quiet)
    queue, in_flight = Queue(), in_flight_of(pipeline)
    post = partial(inline.post, runtime.current(), enqueue=queue, in_flight=in_flight, gather=0.05)

    delivery.relay(runtime.current(), queue, post=post)  # returns while the slow request is held

    wait_until(lambda: len(slow.snapshot()) == 1, "the slow endpoint's request")
    wait_until(lambda: pipeline.statuses(to_fast) == ["succeeded"], "the other endpoint's delivery recorded")
    assert pipeline.statuses(to_slow) == ["pending"]
    assert in_flight.client is not None
    assert in_flight.client.smembers(in_flight.key) == {str(ids(pipeline, to_slow)[0]).encode()}
    answer.set()
    in_flight.settle()  # what the relay job does before it ends
    assert pipeline.statuses(to_slow) == ["succeeded"]
    assert in_flight.client.exists(in_flight.key) == 0
    assert queue.take() == []


def test_what_a_killed_relay_had_under_way_is_enqueued_when_its_job_runs_again(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    org = pipeline.organisation()
    to_it = pipeline.endpoint(org, receivers.start())
    for number in range(2):
        pipeline.desk(org, f"D{number}", factory=pipeline.quiet)
    queue = Queue()
    delivery.relay(runtime.current(), queue)
    queue.take()
    under_way = ids(pipeline, to_it)
    inline.InFlight.of(pipeline.broker, "killed").hold(under_way)  # then the worker died

    again = inline.InFlight.of(pipeline.broker, "killed")  # Dramatiq delivers the same message again
    assert inline.recover(runtime.current(), again, queue) == 2

    assert queue.take() == [(under_way, 0)]
    assert inline.recover(runtime.current(), again, queue) == 0  # taken off the record


def test_without_redis_to_write_down_what_it_posts_the_relay_leaves_it_to_jobs(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    org = pipeline.organisation()
    receiver = receivers.start()
    to_it = pipeline.endpoint(org, receiver)
    pipeline.desk(org, "D1", factory=pipeline.quiet)
    queue = Queue()
    unreachable = inline.InFlight(redis.Redis(port=1, socket_connect_timeout=1), "relay-message")  # nothing listens

    relay_inline(pipeline, queue, unreachable)

    assert queue.take() == [(ids(pipeline, to_it), 0)]
    assert receiver.snapshot() == []
    with limits.endpoint_slots(to_it, 10) as free:
        assert free == limits.DEFAULT_PER_ENDPOINT  # the slots it took were given back


def test_without_redis_for_the_slots_the_relay_leaves_it_to_jobs(pipeline: Pipeline, receivers: Receivers) -> None:
    org = pipeline.organisation()
    receiver = receivers.start()
    to_it = pipeline.endpoint(org, receiver)
    pipeline.desk(org, "D1", factory=pipeline.quiet)
    queue = Queue()
    limits.configure_limits("redis://127.0.0.1:1/0")  # nothing listens there

    relay_inline(pipeline, queue, in_flight_of(pipeline))

    assert queue.take() == [(ids(pipeline, to_it), 0)]
    assert receiver.snapshot() == []


def test_a_secret_no_key_opens_is_left_to_its_job(pipeline: Pipeline, receivers: Receivers) -> None:
    """The job records why nothing was sent (tests/worker/delivery/test_undecryptable.py)."""
    org = pipeline.organisation()
    receiver = receivers.start()
    to_it = pipeline.endpoint(org, receiver)
    pipeline.desk(org, "D1", factory=pipeline.quiet)
    runtime.configure(dataclasses.replace(runtime.current(), secret_box=SecretBox([SecretBox.generate_key()])))
    queue = Queue()

    relay_inline(pipeline, queue, in_flight_of(pipeline))

    assert queue.take() == [(ids(pipeline, to_it), 0)]
    assert receiver.snapshot() == []

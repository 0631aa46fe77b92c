"""From a change in the store to a receiver that verifies what it gets: relay after commit, payload
formats, event-type filters, retries with a stable webhook-id, 410, timeouts, refused connections,
Retry-After and the SSRF guard at delivery time."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter

import pytest

from store.db import transaction
from store.models import WebhookEndpoint
from store.services import desks
from tests.worker.delivery.conftest import (
    MakePipeline,
    Pipeline,
    Receiver,
    Receivers,
    Reply,
    delivered,
    free_port,
    wait_until,
)


class Rollback(Exception):
    pass


def create_and_roll_back(pipeline: Pipeline, organisation_id: int) -> None:
    with transaction(pipeline.factory) as session:
        desks.create(session, organisation_id, "Rolled back")
        raise Rollback


@pytest.mark.parametrize(
    ("store", "broker"), [("postgres", "redis"), ("sqlite", "stub")], ids=["production", "embedded"]
)
def test_a_committed_change_is_delivered_signed_in_both_formats(
    make_pipeline: MakePipeline, receivers: Receivers, store: str, broker: str
) -> None:
    pipeline = make_pipeline(store, broker)
    pipeline.start_worker()
    org = pipeline.organisation()
    one, many = receivers.start(), receivers.start()
    as_event = pipeline.endpoint(org, one, payload_format="event")
    as_array = pipeline.endpoint(org, many, payload_format="array")

    with pytest.raises(Rollback):
        create_and_roll_back(pipeline, org)
    event_id = pipeline.desk(org, "D1")

    wait_until(lambda: delivered(pipeline, as_event, 1)() and delivered(pipeline, as_array, 1)(), "both deliveries")
    [event] = pipeline.events(org, "desk.created")  # the rolled-back desk left no event
    [request] = one.snapshot()
    assert request.verified
    assert request.webhook_id == event_id == event.id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("deskbridge-webhooks/")
    assert request.headers["webhook-signature"].startswith("v1,")
    body = request.events()
    assert isinstance(json.loads(request.body), dict)  # one object, not a list
    assert body == [
        {
            "id": event_id,
            "type": "desk.created",
            "timestamp": body[0]["timestamp"],
            "data": {"desk_id": event.data["desk_id"], "label": "D1", "building": "", "kind": "desk"},
        }
    ]
    assert body[0]["timestamp"].endswith("Z")
    [array_request] = many.snapshot()
    assert array_request.verified
    assert array_request.webhook_id == event_id
    assert isinstance(json.loads(array_request.body), list)
    assert array_request.events() == body
    assert [delivery.attempts for delivery in pipeline.deliveries(as_event)] == [1]


def test_event_type_filters_and_wildcards(pipeline: Pipeline, receivers: Receivers) -> None:
    pipeline.start_worker()
    org = pipeline.organisation()
    bookings, exact, prefix, everything, star = (receivers.start() for _ in range(5))
    to_bookings = pipeline.endpoint(org, bookings, event_types=["booking.*"])
    to_exact = pipeline.endpoint(org, exact, event_types=["desk.created"])
    to_prefix = pipeline.endpoint(org, prefix, event_types=["desk.*"])
    to_everything = pipeline.endpoint(org, everything, event_types=[])  # no filter: every event
    to_star = pipeline.endpoint(org, star, event_types=["*"])

    pipeline.desk(org, "D1")
    with transaction(pipeline.factory) as session:
        desks.update(session, desks.list_all(session, org)[0], label="D1b")

    # An endpoint gets the events written after it was made, its own endpoint.created included.
    expected = {
        to_exact: {"desk.created": 1},
        to_prefix: {"desk.created": 1, "desk.updated": 1},
        to_everything: {"endpoint.created": 2, "desk.created": 1, "desk.updated": 1},
        to_star: {"endpoint.created": 1, "desk.created": 1, "desk.updated": 1},
    }
    receiver_of = {to_exact: exact, to_prefix: prefix, to_everything: everything, to_star: star}

    def done() -> bool:
        return pipeline.unrelayed() == 0 and all(
            delivered(pipeline, endpoint, sum(types.values()))() for endpoint, types in expected.items()
        )

    wait_until(done, "every matching event delivered")
    for endpoint, types in expected.items():
        receiver = receiver_of[endpoint]
        assert Counter(receiver.types()) == Counter(types), endpoint
        assert all(request.verified for request in receiver.snapshot())
    assert pipeline.deliveries(to_bookings) == []
    assert bookings.snapshot() == []


def test_500_three_times_then_200_is_delivered_on_the_fourth_attempt_with_one_webhook_id(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    pipeline.start_worker()
    org = pipeline.organisation()
    receiver = receivers.start([Reply(500, b"oops")] * 3, then=Reply(200))
    endpoint = pipeline.endpoint(org, receiver)

    event_id = pipeline.desk(org, "D1")

    wait_until(delivered(pipeline, endpoint, 1), "the delivery to succeed")
    requests = receiver.snapshot()
    assert [request.status for request in requests] == [500, 500, 500, 200]
    assert {request.webhook_id for request in requests} == {event_id}
    assert all(request.verified for request in requests)
    [delivery] = pipeline.deliveries(endpoint)
    assert (delivery.attempts, delivery.last_status_code) == (4, 200)
    attempts = pipeline.attempts(delivery.id)
    assert [(attempt.status_code, attempt.succeeded) for attempt in attempts] == [(500, False)] * 3 + [(200, True)]
    assert attempts[0].response_excerpt == "oops"
    assert pipeline.endpoint_row(endpoint).failing_since is None  # the success ended the failing streak


def test_410_disables_the_endpoint_and_the_other_endpoint_is_told(pipeline: Pipeline, receivers: Receivers) -> None:
    pipeline.start_worker()
    org = pipeline.organisation()
    gone = receivers.start(then=Reply(410, b"gone"))
    other = receivers.start()
    to_gone = pipeline.endpoint(org, gone)
    pipeline.endpoint(org, other, event_types=["desk.*", "endpoint.disabled"])

    pipeline.desk(org, "D1")

    wait_until(lambda: "endpoint.disabled" in other.types(), "the other endpoint to hear of the disabling")
    disabled = next(event for event in other.events() if event["type"] == "endpoint.disabled")
    assert disabled["data"]["endpoint_id"] == to_gone
    assert disabled["data"]["reason"] == "gone"
    row = pipeline.endpoint_row(to_gone)
    assert row.disabled_at is not None
    assert row.disabled_reason == "gone"
    [delivery] = pipeline.deliveries(to_gone)
    assert (str(delivery.status), delivery.attempts, delivery.last_status_code) == ("exhausted", 1, 410)

    pipeline.desk(org, "D2")  # a disabled endpoint gets nothing new

    wait_until(lambda: other.types().count("desk.created") == 2, "the second desk at the other endpoint")
    wait_until(lambda: pipeline.unrelayed() == 0, "the relay")
    assert len(gone.snapshot()) == 1
    assert len(pipeline.deliveries(to_gone)) == 1
    assert all(request.verified for request in other.snapshot())


def test_a_timeout_is_a_failure_and_is_retried(pipeline: Pipeline, receivers: Receivers) -> None:
    pipeline.configure(timeout=0.5)
    pipeline.start_worker()
    org = pipeline.organisation()
    receiver = receivers.start([Reply(delay=3)], then=Reply(200))  # the first answer comes too late
    endpoint = pipeline.endpoint(org, receiver)

    event_id = pipeline.desk(org, "D1")

    wait_until(delivered(pipeline, endpoint, 1), "the delivery to succeed")
    [delivery] = pipeline.deliveries(endpoint)
    first, second = pipeline.attempts(delivery.id)
    assert first.status_code is None
    assert first.error is not None
    assert "timed out after 0.5 s" in first.error
    assert not first.succeeded
    assert (second.status_code, second.succeeded) == (200, True)
    assert [request.webhook_id for request in receiver.snapshot()] == [event_id, event_id]


def test_a_refused_connection_is_a_failure_and_is_retried(pipeline: Pipeline, receivers: Receivers) -> None:
    pipeline.configure(retry_delays=(0, 0.2, 0.2, 1, 1, 1, 1, 1))
    pipeline.start_worker()
    org = pipeline.organisation()
    port = free_port()  # nothing listens there yet
    endpoint = pipeline.endpoint(org, url=f"http://127.0.0.1:{port}/hook")

    event_id = pipeline.desk(org, "D1")

    def failures() -> int:
        deliveries = pipeline.deliveries(endpoint)
        return deliveries[0].attempts if deliveries else 0

    wait_until(lambda: failures() >= 2, "two refused attempts")
    receiver = receivers.start(port=port)  # the receiver comes up: the next retry gets through
    receiver.expect(pipeline.secrets[endpoint])

    wait_until(delivered(pipeline, endpoint, 1), "the delivery to succeed")
    [delivery] = pipeline.deliveries(endpoint)
    *refused, last = pipeline.attempts(delivery.id)
    assert len(refused) >= 2
    for attempt in refused:
        assert attempt.status_code is None
        assert attempt.error is not None
        assert "ConnectError" in attempt.error
    assert (last.status_code, last.succeeded) == (200, True)
    [request] = receiver.snapshot()
    assert request.verified
    assert request.webhook_id == event_id


def test_retry_after_on_429_is_honoured(pipeline: Pipeline, receivers: Receivers) -> None:
    pipeline.start_worker()  # the schedule would try again after 0.2 s
    org = pipeline.organisation()
    receiver = receivers.start([Reply(429, headers={"Retry-After": "2"})], then=Reply(200))
    endpoint = pipeline.endpoint(org, receiver)

    pipeline.desk(org, "D1")

    wait_until(delivered(pipeline, endpoint, 1), "the delivery to succeed")
    first, second = receiver.snapshot()
    assert first.status == 429
    assert second.at - first.at >= 2.0  # not before the receiver said
    [delivery] = pipeline.deliveries(endpoint)
    assert [attempt.status_code for attempt in pipeline.attempts(delivery.id)] == [429, 200]


def test_private_targets_are_refused_at_delivery_time_when_not_allowed(
    pipeline: Pipeline, receivers: Receivers
) -> None:
    pipeline.configure(allow_private=False, retry_delays=(0, 0.1, 0.1))
    pipeline.start_worker()
    org = pipeline.organisation()
    receiver = receivers.start()
    # The store checks a URL's form only; the API's creation-time check could have seen another
    # address than the one the name resolves to now (DNS rebinding). Here the name is localhost.
    by_name = pipeline.endpoint(org, receiver, url=f"http://localhost:{receiver.port}/hook")
    by_address = pipeline.endpoint(org, receiver, url=receiver.url)

    pipeline.desk(org, "D1")

    def exhausted() -> bool:
        return pipeline.statuses(by_name) == ["exhausted"] and pipeline.statuses(by_address) == ["exhausted"]

    wait_until(exhausted, "both deliveries to be given up")
    for endpoint in (by_name, by_address):
        [delivery] = pipeline.deliveries(endpoint)
        attempts = pipeline.attempts(delivery.id)
        assert len(attempts) == 3
        for attempt in attempts:
            assert attempt.status_code is None
            assert not attempt.succeeded
            assert attempt.error is not None
            assert attempt.error.startswith("refused: ")
            assert "loopback address" in attempt.error
    assert "localhost" in pipeline.attempts(pipeline.deliveries(by_name)[0].id)[0].error  # type: ignore[operator]
    assert receiver.snapshot() == []  # no request reached it


@pytest.mark.parametrize(
    ("store", "broker"), [("postgres", "redis"), ("sqlite", "stub")], ids=["production", "embedded"]
)
def test_a_burst_of_commits_from_many_threads_is_delivered_in_full(
    make_pipeline: MakePipeline, receivers: Receivers, store: str, broker: str
) -> None:
    pipeline = make_pipeline(store, broker)
    pipeline.start_worker(threads=8)
    org = pipeline.organisation()
    first, second = receivers.start(), receivers.start()
    to_first = pipeline.endpoint(org, first)
    to_second = pipeline.endpoint(org, second, payload_format="array")

    def commit_some(thread: int) -> None:
        for number in range(10):
            pipeline.desk(org, f"T{thread}-{number}")

    threads = [threading.Thread(target=commit_some, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    wait_until(lambda: delivered(pipeline, to_first, 60)() and delivered(pipeline, to_second, 60)(), "60 + 60")
    expected = {event.id for event in pipeline.events(org, "desk.created")}
    assert len(expected) == 60
    for receiver in (first, second):
        accepted = [event["id"] for event in receiver.events()]
        assert set(accepted) == expected
        assert all(request.verified for request in receiver.snapshot())


def rest_hook_with_three_attempts_in_flight(
    pipeline: Pipeline, receivers: Receivers, first: threading.Event, others: threading.Event
) -> tuple[int, Receiver, Receiver]:
    """A REST hook whose target answers 410 to three deliveries held open: the first waits for
    `first`, the other two for `others`. Returns the hook, its target and an endpoint told of its end."""
    pipeline.start_worker()
    org = pipeline.organisation()
    target = receivers.start([Reply(410, b"unsubscribed", hold=first)], then=Reply(410, hold=others))
    other = receivers.start()
    hook = pipeline.endpoint(org, target, kind="rest_hook", event_types=["desk.created"])
    pipeline.endpoint(org, other, event_types=["hook.deleted"])
    # One event at a time, each sent before the next is made: a relay puts the deliveries it makes
    # for one endpoint in one job (sent one after the other), so three jobs need three relays.
    for number in range(3):
        pipeline.desk(org, f"D{number}")
        wait_until(lambda: len(target.snapshot()) == number + 1, f"attempt {number + 1} in flight")  # noqa: B023
    return hook, target, other


def test_410_from_a_rest_hook_target_deletes_the_subscription_and_attempts_in_flight_end_quietly(
    pipeline: Pipeline, receivers: Receivers, caplog: pytest.LogCaptureFixture
) -> None:
    first, others = threading.Event(), threading.Event()
    hook, _, other = rest_hook_with_three_attempts_in_flight(pipeline, receivers, first, others)

    first.set()  # one 410 deletes the subscription…
    wait_until(lambda: other.types() == ["hook.deleted"], "the other endpoint to hear of the deletion")
    assert other.events()[0]["data"]["endpoint_id"] == hook
    with pipeline.factory() as session:
        assert session.get(WebhookEndpoint, hook) is None
    others.set()  # …and the attempts still in flight find their deliveries gone with it
    wait_until(lambda: pipeline.queued("webhooks") == 0, "the attempts in flight to end")

    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert failures == []  # no actor failed (and none is retried by Dramatiq)
    assert other.types() == ["hook.deleted"]  # once


def test_410s_from_a_rest_hook_target_at_once_end_quietly(
    pipeline: Pipeline, receivers: Receivers, caplog: pytest.LogCaptureFixture
) -> None:
    first, others = threading.Event(), threading.Event()
    hook, _, other = rest_hook_with_three_attempts_in_flight(pipeline, receivers, first, others)

    first.set()
    others.set()  # three 410s at once

    wait_until(lambda: other.types() == ["hook.deleted"], "the other endpoint to hear of the deletion")
    wait_until(lambda: pipeline.queued("webhooks") == 0, "the attempts in flight to end")
    with pipeline.factory() as session:
        assert session.get(WebhookEndpoint, hook) is None
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert failures == []

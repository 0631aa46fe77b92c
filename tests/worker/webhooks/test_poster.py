"""The Poster (aiohttp on an event loop thread of its own): batches in lanes, in order, stopped by a 410 or
the time budget, prepared as they go; its resolver and the check of address hosts (the SSRF guard)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.outbound import UnsafeURL
from tests.worker.webhooks.conftest import Receiver, Reply, StartReceiver
from worker.webhooks.sender import CheckedResolver, Poster, PosterStuck, Prepare, SignedPost, sign_headers

SECRET = "whsec_" + "a" * 44


@pytest.fixture
def poster() -> Iterator[Poster]:
    made = Poster(allow_private=True)  # the receivers are on loopback
    yield made
    made.close()


class Requests:
    """Requests to one receiver, each numbered in its webhook-id; which ones were prepared."""

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.prepared: list[int] = []
        self.all: list[Prepare] = [self._prepare(number) for number in range(count)]

    def _prepare(self, number: int) -> Prepare:
        def prepare() -> SignedPost:
            self.prepared.append(number)
            body = b'{"n":%d}' % number
            return SignedPost(self.url, body, sign_headers(f"evt_{number}", body, [SECRET], datetime.now(UTC)))

        return prepare


def ids(receiver: Receiver) -> list[str]:
    return [request.headers["webhook-id"] for request in receiver.received]


def test_one_lane_sends_in_order_and_answers_in_order(start_receiver: StartReceiver, poster: Poster) -> None:
    receiver = start_receiver(secrets=[SECRET], replies=[Reply(200), Reply(500), Reply(202)])
    requests = Requests(receiver.url, 3)

    outcomes = poster.post_all(requests.all, lanes=1)

    assert [outcome.status_code for outcome in outcomes] == [200, 500, 202]
    assert ids(receiver) == ["evt_0", "evt_1", "evt_2"]
    assert all(request.verified_with == [SECRET] for request in receiver.received)


def test_lanes_send_every_request_once(start_receiver: StartReceiver, poster: Poster) -> None:
    receiver = start_receiver(secrets=[SECRET])
    requests = Requests(receiver.url, 12)

    outcomes = poster.post_all(requests.all, lanes=4)

    assert [outcome.success for outcome in outcomes] == [True] * 12
    assert sorted(ids(receiver)) == sorted(f"evt_{number}" for number in range(12))


def test_no_request_starts_after_a_410(start_receiver: StartReceiver, poster: Poster) -> None:
    receiver = start_receiver(replies=[Reply(200), Reply(410)])
    requests = Requests(receiver.url, 5)

    outcomes = poster.post_all(requests.all, lanes=1)

    assert [(outcome.status_code, outcome.gone) for outcome in outcomes] == [(200, False), (410, True)]
    assert ids(receiver) == ["evt_0", "evt_1"]
    assert requests.prepared == [0, 1]  # the others were never even signed


def test_the_first_request_goes_alone_so_a_410_to_it_stops_every_lane(
    start_receiver: StartReceiver, poster: Poster
) -> None:
    receiver = start_receiver(replies=[Reply(410)])
    requests = Requests(receiver.url, 5)

    outcomes = poster.post_all(requests.all, lanes=4)

    assert [outcome.gone for outcome in outcomes] == [True]
    assert ids(receiver) == ["evt_0"]


def test_the_budget_stops_new_requests_but_the_first_always_goes(start_receiver: StartReceiver, poster: Poster) -> None:
    receiver = start_receiver(replies=[Reply(200, delay=0.2)])
    requests = Requests(receiver.url, 3)

    outcomes = poster.post_all(requests.all, lanes=1, budget=0.01)

    assert [outcome.status_code for outcome in outcomes] == [200]
    assert ids(receiver) == ["evt_0"]


def test_nothing_to_send_sends_nothing(poster: Poster) -> None:
    assert poster.post_all([]) == []


def test_lanes_must_be_at_least_one(poster: Poster) -> None:
    with pytest.raises(ValueError, match="lanes"):
        poster.post_all([], lanes=0)


def test_a_closed_poster_starts_again_when_asked(start_receiver: StartReceiver, poster: Poster) -> None:
    receiver = start_receiver()
    requests = Requests(receiver.url, 2)
    assert poster.post_all(requests.all[:1])[0].success
    poster.close()
    poster.close()  # twice is harmless
    assert poster.post_all(requests.all[1:])[0].success
    assert ids(receiver) == ["evt_0", "evt_1"]


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/"])
def test_a_metadata_address_is_refused_before_any_request_even_with_private_targets(poster: Poster, url: str) -> None:
    [outcome] = poster.post_all([lambda: SignedPost(url, b"{}", {})])
    assert outcome.refused
    assert outcome.error is not None
    assert "cloud metadata" in outcome.error


def test_the_resolver_refuses_a_name_resolving_to_loopback() -> None:
    with pytest.raises(UnsafeURL, match=r"localhost \(127\.0\.0\.1\) is a loopback address"):
        asyncio.run(CheckedResolver(allow_private=False).resolve("localhost", 80))


def test_the_resolver_answers_checked_addresses_when_private_targets_are_allowed() -> None:
    [found] = asyncio.run(CheckedResolver(allow_private=True).resolve("localhost", 8080))
    assert (found["host"], found["port"], found["family"]) == ("127.0.0.1", 8080, socket.AF_INET)
    assert found["hostname"] == "localhost"


def test_the_resolver_reports_a_name_that_does_not_resolve() -> None:
    with pytest.raises(socket.gaierror):
        asyncio.run(CheckedResolver(allow_private=False).resolve("no-such-host.invalid", 80))


def test_a_stuck_loop_is_reported_dropped_and_replaced(
    start_receiver: StartReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = start_receiver()
    poster = Poster(allow_private=True, stuck_margin=0.2)
    unblock = threading.Event()

    def blocking_prepare() -> SignedPost:
        unblock.wait(timeout=10)  # holds the loop's thread: nothing else runs on that loop meanwhile
        return SignedPost(receiver.url, b"{}", {})

    try:
        with caplog.at_level(logging.ERROR, logger="worker.webhooks.sender"), pytest.raises(PosterStuck):
            poster.post_all([blocking_prepare], timeout=0.1)
        assert any("blocking_prepare" in record.getMessage() for record in caplog.records)  # where it is stuck

        requests = Requests(receiver.url, 1)
        assert poster.post_all(requests.all)[0].success  # a new loop took over
        assert ids(receiver) == ["evt_0"]
    finally:
        unblock.set()
        poster.close()

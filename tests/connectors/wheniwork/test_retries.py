"""Throttling, server errors and network errors are retried with backoff; malformed answers stop the round whole."""

from __future__ import annotations

import socket
from datetime import datetime

import pytest

from connectors.records import ConnectorError, PeoplePage
from connectors.wheniwork import WhenIWork, WhenIWorkClient
from tests.connectors.wheniwork.conftest import WINDOW, Sleeps, make_client
from tests.fakes.wheniwork import FakeWhenIWork


@pytest.fixture
def shifts(fake: FakeWhenIWork) -> FakeWhenIWork:
    for shift_id in (1, 2, 3):
        start = datetime(2014, 3, 4 + shift_id, 9)
        fake.add_shift(shift_id, user_id=2, location_id=136, start=start, end=start.replace(hour=17))
    return fake


def collect(reader: WhenIWork) -> tuple[list[PeoplePage], ConnectorError]:
    """The pages handed over before the round failed, and the error."""
    pages: list[PeoplePage] = []
    with pytest.raises(ConnectorError) as caught:
        pages.extend(reader.events(None, WINDOW))
    return pages, caught.value


def test_throttling_is_retried_with_backoff_and_noted(shifts: FakeWhenIWork, reader: WhenIWork, sleeps: Sleeps) -> None:
    shifts.throttle(2)  # the login and its retry
    (page,) = list(reader.events(None, WINDOW))
    assert len(page.events) == 3
    assert sleeps.calls == [0.5, 1.0]
    assert shifts.paths("POST") == ["/2/login"] * 3
    assert "throttled 2\u00d7 by When I Work (waited 1.5s)" in page.notes


def test_a_retry_after_is_waited_when_sent_although_the_document_has_none(
    shifts: FakeWhenIWork, reader: WhenIWork, sleeps: Sleeps
) -> None:
    list(reader.people(None))  # logged in: the fault now meets a data request
    shifts.throttle(1, retry_after="7")
    list(reader.events(None, WINDOW))
    assert sleeps.calls == [7.0]


def test_server_errors_are_retried_and_noted(shifts: FakeWhenIWork, reader: WhenIWork, sleeps: Sleeps) -> None:
    list(reader.people(None))
    shifts.fail(1, 503)
    shifts.fail(1, 500)
    (page,) = list(reader.events(None, WINDOW))
    assert len(page.events) == 3
    assert sleeps.calls == [0.5, 1.0]
    assert page.notes == ("When I Work answered 500 1\u00d7, retried", "When I Work answered 503 1\u00d7, retried")


def test_throttling_that_does_not_end_gives_the_worker_a_retry_after(
    shifts: FakeWhenIWork, reader: WhenIWork, sleeps: Sleeps
) -> None:
    list(reader.people(None))
    shifts.throttle(10)
    pages, error = collect(reader)
    assert pages == []
    assert sleeps.calls == [0.5, 1.0, 2.0]
    assert error.retry_after == 4.0
    assert "throttled 4\u00d7 on GET /locations" in error.message


def test_a_wait_longer_than_the_limit_is_not_slept_through(
    shifts: FakeWhenIWork, reader: WhenIWork, sleeps: Sleeps
) -> None:
    list(reader.people(None))
    shifts.throttle(1, retry_after="600")
    _, error = collect(reader)
    assert error.retry_after == 600.0
    assert sleeps.calls == []


def test_an_unreachable_server_is_retried_then_reported(sleeps: Sleeps) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = WhenIWorkClient("key", "a@example.com", "pw", base_url=f"http://127.0.0.1:{port}/2", sleep=sleeps)
    with pytest.raises(ConnectorError, match="unreachable after 5 attempts") as caught:
        client.login()
    assert sleeps.calls == [1.0, 2.0, 4.0, 8.0]
    assert not caught.value.action_required


def test_another_refusal_is_reported_without_retrying(shifts: FakeWhenIWork, client: WhenIWorkClient) -> None:
    shifts.answer_next("/2/requests", 404, b'{"error": "Not Found", "code": 404}')
    pages, error = collect(WhenIWork(client))
    assert pages == []
    assert error.message == "When I Work refused GET /requests: 404: Not Found"
    assert not error.action_required
    assert shifts.paths().count("/2/requests") == 1


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/2/shifts", b"<html>maintenance</html>", "/shifts with a body that is not JSON"),
        ("/2/shifts", b"[]", "/shifts with JSON that is not an object"),
        ("/2/shifts", b'{"shift": {"id": 1}}', "/shifts without a list of objects in 'shifts'"),
        ("/2/requests", b'{"requests": [1, 2]}', "/requests without a list of objects in 'requests'"),
        ("/2/locations", b'{"locations": [{"id": null, "name": "X"}]}', "malformed location (id None): id is None"),
    ],
)
def test_a_malformed_answer_stops_the_round_with_nothing_handed_over(
    shifts: FakeWhenIWork, client: WhenIWorkClient, path: str, body: bytes, words: str
) -> None:
    shifts.answer_next(path, 200, body)
    pages, error = collect(WhenIWork(client, page_size=1))
    assert pages == []
    assert words in error.message


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("start_time", "2014-03-06 09:00", "start_time: '2014-03-06 09:00' is not a date like"),
        ("end_time", "Thu, 06 Mar 2014 08:00:00 -0600", "it ends (Thu, 06 Mar 2014 08:00:00 -0600) before it starts"),
        ("updated_at", "Wed, 06 Mar 2014 09:00:00 -0600", "Wed does not match the date"),
        ("user_id", None, "user_id is None, not an id"),
        ("published", "maybe", "published is 'maybe'"),
    ],
)
def test_a_malformed_shift_is_named_and_nothing_is_handed_over(
    shifts: FakeWhenIWork, client: WhenIWorkClient, field: str, value: object, words: str
) -> None:
    shifts.shifts[2][field] = value  # shifts 1 and 3 are fine
    pages, error = collect(WhenIWork(client, page_size=1))
    assert pages == []
    assert error.message.startswith("When I Work sent a malformed shift (id 2): ")
    assert words in error.message


def test_a_malformed_time_off_request_is_named(fake: FakeWhenIWork, client: WhenIWorkClient) -> None:
    fake.add_request(54, user_id=2, status=2, start=datetime(2014, 3, 14), end=datetime(2014, 3, 15))
    fake.requests[54]["status"] = "approved"
    _, error = collect(WhenIWork(client))
    assert "malformed request (id 54): status is 'approved', not an id" in error.message


def test_a_client_can_read_again_after_a_failed_round(
    shifts: FakeWhenIWork, sleeps: Sleeps, client: WhenIWorkClient
) -> None:
    shifts.answer_next("/2/shifts", 200, b"not json")
    reader = WhenIWork(make_client(shifts, sleeps))
    collect(reader)
    (page,) = list(reader.events(None, WINDOW))
    assert len(page.events) == 3

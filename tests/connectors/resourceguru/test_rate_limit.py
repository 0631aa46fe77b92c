"""The 200-a-minute limit: paced from X-RateLimit-Remaining, 429 + Retry-After waited out, 5xx retried."""

from __future__ import annotations

import pytest

from connectors.records import ConnectorError
from tests.connectors.resourceguru.conftest import wire
from tests.fakes.resourceguru import FakeResourceGuru, ManualClock


def add_people(fake: FakeResourceGuru, count: int) -> None:
    for n in range(count):
        fake.add_resource("Person", str(n), f"p{n}@example.com")


def test_a_long_round_slows_down_before_the_budget_runs_out(clock: ManualClock) -> None:
    with FakeResourceGuru(rate_limit=5, clock=clock.now) as fake:
        add_people(fake, 12)
        w = wire(fake, clock, page_size=1, reserve=1)
        pages = list(w.reader.people(None))
    # resource types, 13 pages of active resources (the last one empty), 1 of archived: 15 requests.
    assert len(fake.requests) == 15
    assert sum(len(page.users) for page in pages) == 12
    assert fake.throttled == 0  # never spent the budget to the last request
    # Four requests a minute (one kept in reserve): three waits for the next minute.
    assert len(clock.sleeps) == 3
    assert all(0 < wait <= 60 for wait in clock.sleeps)
    assert any(note.startswith("paced 3\u00d7") for note in pages[-1].notes)


def test_without_pacing_the_same_round_is_throttled(clock: ManualClock) -> None:
    # The counter-test: with no reserve kept, the fake does answer 429, so the test above can fail.
    with FakeResourceGuru(rate_limit=5, clock=clock.now) as fake:
        add_people(fake, 12)
        w = wire(fake, clock, page_size=1, reserve=-1)
        pages = list(w.reader.people(None))
    assert fake.throttled > 0
    assert sum(len(page.users) for page in pages) == 12
    assert any(note.startswith("throttled") for note in pages[-1].notes)


def test_a_429_waits_exactly_the_retry_after(fake: FakeResourceGuru, clock: ManualClock) -> None:
    add_people(fake, 1)
    w = wire(fake, clock)
    fake.exhaust()  # another connection of the application spent this minute's budget
    clock.at += 15  # fifteen seconds into that minute
    pages = list(w.reader.people(None))
    assert clock.sleeps == [45.0]  # what Retry-After said: the rest of the minute
    assert fake.throttled == 1
    assert [user.email for page in pages for user in page.users] == ["p0@example.com"]
    assert "throttled 1\u00d7 by Resource Guru (waited 45s)" in pages[-1].notes


def test_server_errors_are_retried_with_backoff(fake: FakeResourceGuru, clock: ManualClock) -> None:
    add_people(fake, 1)
    w = wire(fake, clock)
    fake.fail(2, 503)
    pages = list(w.reader.people(None))
    assert clock.sleeps == [1.0, 2.0]
    assert "Resource Guru answered 503 2\u00d7, retried" in pages[-1].notes


def test_a_503_with_retry_after_waits_what_it_says(fake: FakeResourceGuru, clock: ManualClock) -> None:
    w = wire(fake, clock)
    fake.fail(1, 503, retry_after="3")
    list(w.reader.people(None))
    assert clock.sleeps == [3.0]


def test_a_wait_too_long_is_handed_to_the_worker_not_slept(fake: FakeResourceGuru, clock: ManualClock) -> None:
    w = wire(fake, clock, max_wait=30)
    fake.fail(1, 429, retry_after="90")
    with pytest.raises(ConnectorError) as failed:
        list(w.reader.people(None))
    assert failed.value.retry_after == 90.0
    assert not failed.value.action_required
    assert clock.sleeps == []


def test_persistent_server_errors_give_up_after_the_attempts(fake: FakeResourceGuru, clock: ManualClock) -> None:
    w = wire(fake, clock, max_attempts=3)
    fake.fail(5, 502)
    with pytest.raises(ConnectorError) as failed:
        list(w.reader.people(None))
    assert "answered 502 3\u00d7" in failed.value.message
    assert not failed.value.action_required
    assert clock.sleeps == [1.0, 2.0]
    assert fake.count("resource_types") == 3

"""Throttling and server errors: waited out as asked, bounded, and told to the admin in notes."""

from __future__ import annotations

import pytest

from connectors.kadence import Kadence
from connectors.records import ConnectorError
from tests.connectors.kadence.conftest import Sleeps
from tests.fakes.kadence import FakeKadence

USERS = "/v1/public/users"


def test_throttling_waits_exactly_retry_after(fake: FakeKadence, reader: Kadence, sleeps: Sleeps) -> None:
    fake.add_user("ada@example.com")
    fake.throttle(2, retry_after="2.5")

    pages = list(reader.people(None))

    assert [user.email for user in pages[0].users] == ["ada@example.com"]
    assert sleeps.calls == [2.5, 2.5]
    assert fake.count(USERS) == 3
    assert "throttled 2\u00d7 by Kadence (waited 5s)" in pages[-1].notes


def test_server_errors_back_off(fake: FakeKadence, reader: Kadence, sleeps: Sleeps) -> None:
    fake.fail(2, status=502)

    pages = list(reader.people(None))

    assert sleeps.calls == [0.5, 1.0]
    assert "Kadence answered 502 2\u00d7, retried" in pages[-1].notes


def test_notes_are_told_once(fake: FakeKadence, reader: Kadence) -> None:
    fake.throttle(1)
    list(reader.people(None))

    again = list(reader.people(None))

    assert again[-1].notes == ()


def test_a_wait_too_long_is_left_to_the_worker(fake: FakeKadence, reader: Kadence, sleeps: Sleeps) -> None:
    fake.throttle(1, retry_after="600")

    with pytest.raises(ConnectorError) as caught:
        list(reader.people(None))

    assert caught.value.retry_after == 600
    assert not caught.value.action_required
    assert sleeps.calls == []


def test_attempts_are_bounded(fake: FakeKadence, reader: Kadence, sleeps: Sleeps) -> None:
    fake.fail(10, status=503)

    with pytest.raises(ConnectorError) as caught:
        list(reader.people(None))

    assert "answered 503 5\u00d7" in caught.value.message
    assert fake.count(USERS) == 5
    assert len(sleeps.calls) == 4


def test_a_refusal_says_what_kadence_said(fake: FakeKadence, reader: Kadence, sleeps: Sleeps) -> None:
    fake.answer_next(
        USERS,
        {"@type": "hydra:Error", "hydra:title": "An error occurred", "hydra:description": "itemsPerPage: too big"},
        status=400,
    )

    with pytest.raises(ConnectorError) as caught:
        list(reader.people(None))

    assert caught.value.message == "Kadence refused GET /v1/public/users: 400: itemsPerPage: too big"
    assert sleeps.calls == []

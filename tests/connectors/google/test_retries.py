# ruff: noqa: RUF001 - the notes use a multiplication sign on purpose
"""Throttling, server errors and timeouts: retried with backoff (Retry-After first), bounded, noted on pages."""

from __future__ import annotations

import dataclasses
import json

import pytest

from connectors.google import GoogleDirectory, GoogleSettings
from connectors.google.errors import parse_error, retry_after_seconds
from connectors.records import ConnectorError, DirectoryPage
from tests.connectors.google.conftest import google_sample
from tests.fakes.google import FakeGoogle, throttle_body

USERS = "admin/directory/v1/users"


def read(settings: GoogleSettings, **options: object) -> list[DirectoryPage]:
    return list(GoogleDirectory(settings, **options).read(None))  # type: ignore[arg-type]


def notes(pages: list[DirectoryPage]) -> list[str]:
    return [note for page in pages for note in page.notes]


def test_429_waits_as_long_as_retry_after_says(fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]) -> None:
    fake.fail(429, times=2, retry_after="7", path=USERS)

    pages = read(settings)

    assert sleeps == [7.0, 7.0]
    assert fake.admin_id in {u.external_id for p in pages for u in p.users}
    assert notes(pages) == ["throttled 2× by Google"]
    assert notes(pages[:1]) == ["throttled 2× by Google"]  # on the page it happened to


def test_403_rate_limit_is_throttling_with_exponential_backoff(
    fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]
) -> None:
    fake.fail(403, times=3, reason="userRateLimitExceeded", path="admin/directory/v1/groups")

    pages = read(settings)

    assert sleeps == [1.0, 2.0, 4.0]
    assert notes(pages) == ["throttled 3× by Google"]
    assert pages[-1].last


def test_5xx_is_retried(fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]) -> None:
    fake.fail(500, path=USERS)
    fake.fail(503, retry_after="3", path=USERS)

    pages = read(settings)

    assert sleeps == [1.0, 3.0]
    assert notes(pages) == ["retried 2× after Google errors or timeouts"]


def test_retries_are_bounded(fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]) -> None:
    fake.fail(429, times=100, retry_after="2")
    settings = dataclasses.replace(settings, max_retries=3)

    with pytest.raises(ConnectorError) as failed:
        read(settings)

    assert sleeps == [2.0, 2.0, 2.0]
    assert not failed.value.action_required
    assert failed.value.retry_after == 2.0
    assert "429" in failed.value.message
    assert "4 attempts" in failed.value.message


def test_backoff_is_capped_by_max_wait(fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]) -> None:
    fake.fail(500, times=100)
    settings = dataclasses.replace(settings, max_retries=10, max_wait=5.0)

    with pytest.raises(ConnectorError) as failed:
        read(settings)

    assert sleeps == [1.0, 2.0, 4.0]  # 8 s would be more than max_wait: the round ends instead
    assert failed.value.retry_after == 8.0


def test_long_retry_after_ends_the_round_with_it(
    fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]
) -> None:
    fake.fail(429, retry_after="3600")

    with pytest.raises(ConnectorError) as failed:
        read(settings)

    assert sleeps == []
    assert failed.value.retry_after == 3600.0


def test_other_errors_are_not_retried(fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]) -> None:
    fake.fail(403, reason="forbidden", body=None)

    with pytest.raises(ConnectorError) as failed:
        read(settings)

    assert sleeps == []
    assert failed.value.action_required
    assert fake.admin_email in failed.value.message


def test_bad_customer_is_for_the_admin(fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]) -> None:
    with pytest.raises(ConnectorError) as failed:
        read(dataclasses.replace(settings, customer="C0nothere"))

    assert failed.value.action_required
    assert "C0nothere" in failed.value.message
    assert sleeps == []


def test_timeout_is_retried(fake: FakeGoogle, settings: GoogleSettings, sleeps: list[float]) -> None:
    fake.stall(1.0, path=USERS)
    settings = dataclasses.replace(settings, timeout=0.3)

    pages = read(settings)

    assert sleeps == [1.0]
    assert pages[-1].last
    assert notes(pages) == ["retried 1× after Google errors or timeouts"]


def test_unreachable_google(settings: GoogleSettings, sleeps: list[float]) -> None:
    settings = dataclasses.replace(settings, base_url="http://127.0.0.1:9/", max_retries=2)

    with pytest.raises(ConnectorError) as failed:
        read(settings)

    assert sleeps == [1.0, 2.0]
    assert "could not be reached" in failed.value.message


def test_fake_rate_limit_bodies_have_the_documented_shape() -> None:
    for status in (403, 429):
        documented = google_sample(f"error_{status}_rateLimitExceeded.json")
        assert throttle_body(status) == documented


@pytest.mark.parametrize(("status", "reason"), [(403, "rateLimitExceeded"), (429, "rateLimitExceeded")])
def test_documented_throttling_bodies_are_retryable(status: int, reason: str) -> None:
    body = json.dumps(google_sample(f"error_{status}_{reason}.json")).encode()

    failure = parse_error(status, body)

    assert failure.reason == reason
    assert failure.throttled
    assert failure.retryable


def test_forbidden_is_not_throttling() -> None:
    body = b'{"error": {"code": 403, "message": "Not Authorized", "errors": [{"reason": "forbidden"}]}}'
    assert not parse_error(403, body).retryable
    assert not parse_error(404, b"not json").retryable
    assert parse_error(502, b"<html>bad gateway</html>").retryable


def test_retry_after_forms() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds("Wed, 01 Jan 2025 12:00:45 GMT", now) == 45.0
    assert retry_after_seconds("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None

"""The retry schedule, its jitter and scale, and Retry-After in both of its forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from worker.webhooks.schedule import DEFAULT_DELAYS, MAX_RETRY_AFTER, next_delay, retry_after_seconds, scaled

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_the_default_schedule_is_the_documented_one() -> None:
    minutes, hours = 60, 3600
    assert (0, 5, 5 * minutes, 30 * minutes, 2 * hours, 5 * hours, 10 * hours, 10 * hours) == DEFAULT_DELAYS


def test_scaling_multiplies_every_delay() -> None:
    assert scaled((0, 5, 300), 0.01) == (0, 0.05, 3.0)
    with pytest.raises(ValueError, match="positive"):
        scaled(DEFAULT_DELAYS, 0)


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.8), (0.5, 1.0), (1.0, 1.2)])
def test_jitter_stays_within_twenty_percent(rand: float, factor: float) -> None:
    assert next_delay(2, rand=lambda: rand) == pytest.approx(300 * factor)


def test_the_first_attempt_is_immediate_and_the_ninth_never_comes() -> None:
    assert next_delay(0) == 0
    assert next_delay(7, rand=lambda: 0.5) == 36000
    assert next_delay(8) is None
    assert next_delay(1, (1, 2)) is not None
    assert next_delay(2, (1, 2)) is None


def test_retry_after_lengthens_but_never_shortens_the_wait() -> None:
    assert next_delay(1, rand=lambda: 0.5, retry_after=60) == 60
    assert next_delay(2, rand=lambda: 0.5, retry_after=60) == 300
    assert next_delay(8, retry_after=60) is None


def test_a_negative_attempt_count_is_a_bug() -> None:
    with pytest.raises(ValueError, match="negative"):
        next_delay(-1)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Mon, 06 May 2030 07:09:39 GMT", 90.0),
        ("Monday, 06-May-30 07:09:39 GMT", 90.0),  # RFC 850, obsolete but allowed
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
        ("999999999", MAX_RETRY_AFTER),
        (format_datetime(NOW + timedelta(days=30), usegmt=True), MAX_RETRY_AFTER),
    ],
)
def test_retry_after_is_read_in_both_forms(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "١٢", "Mon, 99 Foo 2030"])
def test_retry_after_that_is_absent_or_invalid_is_none(header: str | None) -> None:
    assert retry_after_seconds(header, NOW) is None

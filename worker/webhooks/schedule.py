"""When a failed webhook delivery is tried again.

`DEFAULT_DELAYS[n]` is the wait before attempt n+1: the first attempt goes out at once, the last one
about 28 hours after the first. `next_delay` adds ±20% jitter (so endpoints that failed together do
not all retry in the same second) and honours a receiver's `Retry-After`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_DELAYS: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.2
MAX_RETRY_AFTER = 24 * 3600.0


def scaled(delays: Sequence[float], factor: float) -> tuple[float, ...]:
    """`delays` multiplied by `factor` (settings.webhook_retry_scale; tests compress the schedule with it)."""
    if factor <= 0:
        raise ValueError("the retry scale must be positive")
    return tuple(delay * factor for delay in delays)


def next_delay(
    attempts_made: int,
    delays: Sequence[float] = DEFAULT_DELAYS,
    *,
    retry_after: float | None = None,
    jitter: float = JITTER,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before the next attempt after `attempts_made` attempts, or None when exhausted.

    The wait is the schedule's delay ±`jitter`, but never shorter than the receiver's `retry_after`.
    """
    if attempts_made < 0:
        raise ValueError("attempts_made cannot be negative")
    if attempts_made >= len(delays):
        return None
    delay = delays[attempts_made] * (1 + jitter * (2 * rand() - 1))
    return max(delay, retry_after or 0.0)


def retry_after_seconds(header_value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a `Retry-After` header (delta-seconds or an HTTP-date), at most 24 h.

    None when the header is absent or not understood; a date in the past gives 0. `now` must be aware.
    """
    if header_value is None:
        return None
    text = header_value.strip()
    if text.isdigit() and text.isascii():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC without a claim about local time
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)

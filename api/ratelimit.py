"""Daily request counters per member: in Redis when configured, in memory otherwise."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

import redis


class Counter(Protocol):
    def hit(self, key: str, ttl_seconds: int) -> int:
        """Count one request under `key` (which expires after `ttl_seconds`); return the new count."""


class MemoryCounter:
    """Per-process counters, for the embedded mode and tests."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, ttl_seconds: int) -> int:
        with self._lock:
            if len(self._counts) > 100_000:  # keys carry the day; yesterday's can go
                today = key.rsplit(":", 1)[-1]
                self._counts = {k: v for k, v in self._counts.items() if k.endswith(today)}
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


class RedisCounter:
    """Counters shared by every API process."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def hit(self, key: str, ttl_seconds: int) -> int:
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, ttl_seconds, nx=True)
        count, _ = pipe.execute()
        return int(count)


def day_window(now: datetime | None = None) -> tuple[str, int]:
    """Today's key suffix (UTC) and the seconds until the window resets."""
    now = now or datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y%m%d"), max(1, int((tomorrow - now).total_seconds()))

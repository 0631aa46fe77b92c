"""Daily request counters per member: in Redis when configured, in memory otherwise.

The Redis counter must not take the API down with Redis: it talks to Redis through a fail-fast
client (infra.redis_client: short timeouts, no retries, and a circuit that refuses at once for a
few seconds after connecting failed, with one warning and a metric per outage), and while a command
fails it counts in this process instead. A per-process count is looser than the shared one (each API
process allows the limit), which is the price of answering at all; /healthz says so meanwhile.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

import redis

from infra.redis_client import FailFastPool, fail_fast_client

CONNECT_TIMEOUT_SECONDS = 0.25
COMMAND_TIMEOUT_SECONDS = 0.5
# Count a request and give a new key its expiry: one command (EVALSHA) per request, lighter for the
# client than a pipeline of two.
_HIT = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return count
"""


class Counter(Protocol):
    def hit(self, key: str, ttl_seconds: int) -> int:
        """Count one request under `key` (which expires after `ttl_seconds`); return the new count."""

    @property
    def degraded(self) -> str | None:
        """Why the counts are not the shared ones right now (for /healthz), or None when they are."""


class MemoryCounter:
    """Per-process counters, for the embedded mode and tests."""

    degraded: str | None = None

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
    """Counters shared by every API process; counted in this process while Redis is unreachable."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._hit = client.register_script(_HIT)
        self._fallback = MemoryCounter()
        self._failing = False  # the last command failed (a client not on a FailFastPool says so itself)

    @classmethod
    def from_url(cls, url: str) -> RedisCounter:
        """A counter on the Redis at `url`, with timeouts short enough to answer requests through an outage."""
        client = fail_fast_client(
            url,
            name="rate limits",
            meanwhile="counting requests in each API process",
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            command_timeout=COMMAND_TIMEOUT_SECONDS,
        )
        return cls(client)

    @property
    def degraded(self) -> str | None:
        pool = self._client.connection_pool
        down = pool.down_since is not None if isinstance(pool, FailFastPool) else self._failing
        return "rate limits are counted per process: Redis is unreachable" if down else None

    def hit(self, key: str, ttl_seconds: int) -> int:
        try:
            count = self._hit(keys=[key], args=[ttl_seconds])
        except redis.RedisError:
            self._failing = True
            return self._fallback.hit(key, ttl_seconds)
        self._failing = False
        return int(count)


def day_window(now: datetime | None = None) -> tuple[str, int]:
    """Today's key suffix (UTC) and the seconds until the window resets."""
    now = now or datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y%m%d"), max(1, int((tomorrow - now).total_seconds()))

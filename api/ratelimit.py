"""Daily request counters per member: in Redis when configured, in memory otherwise.

The Redis counter must not take the API down with Redis: it talks to Redis through a fail-fast
client (infra.redis_client: short timeouts, no retries, and a circuit that refuses at once for a
few seconds after connecting failed, with one warning and a metric per outage), and while a command
fails it counts in this process instead. A per-process count is looser than the shared one (each API
process allows the limit), which is the price of answering at all; /healthz says so meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import redis
import redis.asyncio
from redis.commands.core import AsyncScript

from infra.redis_client import AsyncFailFastPool, FailFastPool, async_fail_fast_client, fail_fast_client

CONNECT_TIMEOUT_SECONDS = 0.25
COMMAND_TIMEOUT_SECONDS = 0.5
# The asyncio client's timeouts run on the event loop, so they include the time a busy loop takes to come
# back to the answer: a burst of requests must not read as an outage. Longer, then; the circuit keeps a
# real outage from costing more than one request in RETRY_SECONDS that long.
LOOP_CONNECT_TIMEOUT_SECONDS = 1.0
LOOP_COMMAND_TIMEOUT_SECONDS = 1.0
# Connections of a process's asyncio client: requests on the event loop beyond these wait for one (a count
# takes well under a millisecond), as those in the thread pool wait for a thread. Few, so that a burst on a
# cold process opens few at once.
MAX_CONNECTIONS = 8
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

    async def hit_async(self, key: str, ttl_seconds: int) -> int:
        """`hit`, for a coroutine: waits without holding the event loop."""

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

    async def hit_async(self, key: str, ttl_seconds: int) -> int:
        return self.hit(key, ttl_seconds)


class RedisCounter:
    """Counters shared by every API process; counted in this process while Redis is unreachable.

    A blocking client serves the routes that run in the thread pool, an asyncio one (`redis_async`,
    same timeouts and circuit) the ones that run on the event loop: `hit_async`.
    """

    def __init__(self, client: redis.Redis, redis_async: Callable[[], redis.asyncio.Redis] | None = None) -> None:
        self._client = client
        self._hit = client.register_script(_HIT)
        self._make_async = redis_async
        self._async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis, AsyncScript] | None = None
        self._fallback = MemoryCounter()
        self._failing = False  # the last command failed (a client not on a FailFastPool says so itself)

    @classmethod
    def from_url(cls, url: str) -> RedisCounter:
        """A counter on the Redis at `url`, with timeouts short enough to answer requests through an outage."""
        options: dict[str, Any] = {
            "name": "rate limits",
            "meanwhile": "counting requests in each API process",
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "command_timeout": COMMAND_TIMEOUT_SECONDS,
        }
        on_loop = options | {
            "connect_timeout": LOOP_CONNECT_TIMEOUT_SECONDS,
            "command_timeout": LOOP_COMMAND_TIMEOUT_SECONDS,
            "max_connections": MAX_CONNECTIONS,
        }
        return cls(fail_fast_client(url, **options), lambda: async_fail_fast_client(url, **on_loop))

    @property
    def degraded(self) -> str | None:
        pools = [self._client.connection_pool] + ([self._async[1].connection_pool] if self._async else [])
        fail_fast = [pool for pool in pools if isinstance(pool, FailFastPool | AsyncFailFastPool)]
        down = any(pool.down_since is not None for pool in fail_fast) if fail_fast else self._failing
        return "rate limits are counted per process: Redis is unreachable" if down else None

    def hit(self, key: str, ttl_seconds: int) -> int:
        try:
            count = self._hit(keys=[key], args=[ttl_seconds])
        except redis.RedisError:
            self._failing = True
            return self._fallback.hit(key, ttl_seconds)
        self._failing = False
        return int(count)

    async def hit_async(self, key: str, ttl_seconds: int) -> int:
        script = self._script_on_this_loop()
        if script is None:
            return await asyncio.to_thread(self.hit, key, ttl_seconds)
        try:
            count = await script(keys=[key], args=[ttl_seconds])
        except redis.RedisError:
            self._failing = True
            return self._fallback.hit(key, ttl_seconds)
        self._failing = False
        return int(count)

    def _script_on_this_loop(self) -> AsyncScript | None:
        """The counting script on an asyncio client of the running loop (a client's connections belong to
        the loop that made them); None without an asyncio client."""
        if self._make_async is None:
            return None
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = self._make_async()
            self._async = (loop, client, client.register_script(_HIT))
        return self._async[2]


def day_window(now: datetime | None = None) -> tuple[str, int]:
    """Today's key suffix (UTC) and the seconds until the window resets."""
    seconds = now.timestamp() if now is not None else time.time()
    return _day_key(int(seconds // DAY)), max(1, int(DAY - seconds % DAY))


DAY = 86400


@functools.lru_cache(maxsize=4)
def _day_key(day: int) -> str:
    """`%Y%m%d` of the UTC day `day` days after 1970-01-01 (every request asks: made once a day)."""
    return time.strftime("%Y%m%d", time.gmtime(day * DAY))

"""Per-endpoint concurrency, so a slow or dead endpoint never holds up deliveries to the others.

Each endpoint has `per_endpoint` slots, counted in Redis when the broker is there (shared by every
worker process), in this process otherwise (the embedded mode). Taking a slot is one Redis call (a
Lua script: increment, and undo at once when over the limit), giving it back another. A delivery job
that finds no free slot does not wait for one: `endpoint_slot` yields False and the caller
re-enqueues its job with a short delay, so worker threads stay free for other endpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import redis

DEFAULT_PER_ENDPOINT = 10
KEY_PREFIX = "deskbridge:webhook-slots:"
# A counter slot held by a worker that was killed comes back when the key expires, which happens
# only once no delivery to that endpoint touched it for this long. Longer than any one delivery
# job (a few seconds of requests, or one request of at most 15 s per connect/write/read phase).
SLOT_TTL_MS = 120_000

# KEYS[1]: the endpoint's counter; ARGV[1]: the limit; ARGV[2]: the TTL in ms. 1 when a slot was taken.
_ACQUIRE = """
local held = redis.call('INCR', KEYS[1])
if held > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# A counter that fell to zero or below (its key expired while a slot was held) is removed.
_RELEASE = """
if redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
"""


class _Counter(Protocol):
    def acquire(self, key: str, limit: int) -> bool: ...

    def release(self, key: str) -> None: ...


class _MemoryCounter:
    """Slots of this process only (the embedded mode)."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: int) -> bool:
        with self._lock:
            held = self._held.get(key, 0)
            if held >= limit:
                return False
            self._held[key] = held + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            held = self._held.get(key, 0) - 1
            if held > 0:
                self._held[key] = held
            else:
                self._held.pop(key, None)


class _RedisCounter:
    """Slots counted in Redis, one round trip to take one and one to give it back."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE)

    def acquire(self, key: str, limit: int) -> bool:
        return bool(self._acquire(keys=[key], args=[limit, SLOT_TTL_MS]))

    def release(self, key: str) -> None:
        self._release(keys=[key])


@dataclass(frozen=True)
class _Limits:
    counter: _Counter
    per_endpoint: int


_limits = _Limits(_MemoryCounter(), DEFAULT_PER_ENDPOINT)


def configure_limits(redis_url: str | None, per_endpoint: int = DEFAULT_PER_ENDPOINT) -> None:
    """Count slots in Redis at `redis_url` (None: in this process), `per_endpoint` concurrent deliveries each."""
    global _limits
    if per_endpoint < 1:
        raise ValueError("per_endpoint must be at least 1")
    counter: _Counter = _RedisCounter(redis_url) if redis_url else _MemoryCounter()
    _limits = _Limits(counter, per_endpoint)


@contextmanager
def endpoint_slot(endpoint_id: int | str) -> Iterator[bool]:
    """Hold one of the endpoint's delivery slots for the `with` block; yields False (at once) when none is free.

    The slot is given back when the block ends, also when it raises. Taking the slot may raise
    (Redis unreachable); so may giving it back, after the block.
    """
    limits = _limits
    key = f"{KEY_PREFIX}{endpoint_id}"
    if not limits.counter.acquire(key, limits.per_endpoint):
        yield False
        return
    try:
        yield True
    finally:
        limits.counter.release(key)

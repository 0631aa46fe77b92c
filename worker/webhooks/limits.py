"""Per-endpoint concurrency, so a slow or dead endpoint never holds up deliveries to the others.

Each endpoint has `per_endpoint` slots, one a request in flight, counted in Redis when the broker is
there (shared by every worker process), in this process otherwise (the embedded mode). Taking slots
is one Redis call (a Lua script: as many of those asked for as are free), giving them back another.
A delivery job takes up to as many as it has lanes (requests it posts at once); one that finds no
free slot does not wait for one: `endpoint_slots` yields 0 and the caller re-enqueues its job with a
short delay, so worker threads stay free for other endpoints.
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

# KEYS[1]: the endpoint's counter; ARGV[1]: the limit; ARGV[2]: the TTL in ms; ARGV[3]: slots wanted.
# Returns the slots taken: as many as wanted and free, 0 when none is.
_ACQUIRE = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local take = math.min(tonumber(ARGV[3]), tonumber(ARGV[1]) - held)
if take <= 0 then
  return 0
end
redis.call('INCRBY', KEYS[1], take)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return take
"""
# ARGV[1]: slots given back. A counter that fell to zero or below (its key expired while slots were
# held) is removed.
_RELEASE = """
if redis.call('DECRBY', KEYS[1], ARGV[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
"""


class _Counter(Protocol):
    def acquire(self, key: str, limit: int, wanted: int) -> int: ...

    def release(self, key: str, count: int) -> None: ...


class _MemoryCounter:
    """Slots of this process only (the embedded mode)."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limit: int, wanted: int) -> int:
        with self._lock:
            held = self._held.get(key, 0)
            taken = min(wanted, limit - held)
            if taken <= 0:
                return 0
            self._held[key] = held + taken
            return taken

    def release(self, key: str, count: int) -> None:
        with self._lock:
            held = self._held.get(key, 0) - count
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

    def acquire(self, key: str, limit: int, wanted: int) -> int:
        return int(self._acquire(keys=[key], args=[limit, SLOT_TTL_MS, wanted]))

    def release(self, key: str, count: int) -> None:
        self._release(keys=[key], args=[count])


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
    """Hold one of the endpoint's delivery slots for the `with` block; yields False (at once) when none is free."""
    with endpoint_slots(endpoint_id, 1) as taken:
        yield taken == 1


@contextmanager
def endpoint_slots(endpoint_id: int | str, wanted: int) -> Iterator[int]:
    """Hold up to `wanted` of the endpoint's delivery slots for the `with` block; yields how many were
    free and taken (0, at once, when none is).

    The slots are given back when the block ends, also when it raises. Taking them may raise (Redis
    unreachable); so may giving them back, after the block.
    """
    if wanted < 1:
        raise ValueError("wanted must be at least 1")
    limits = _limits
    key = f"{KEY_PREFIX}{endpoint_id}"
    taken = limits.counter.acquire(key, limits.per_endpoint, wanted)
    if not taken:
        yield 0
        return
    try:
        yield taken
    finally:
        limits.counter.release(key, taken)

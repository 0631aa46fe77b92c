"""Per-endpoint concurrency, so a slow or dead endpoint never holds up deliveries to the others, and
per-endpoint rates (`rate_limit_per_second`), both honoured across every worker.

Each endpoint has `per_endpoint` slots, one a request in flight, counted in Redis when the broker is
there (shared by every worker process), in this process otherwise (the embedded mode). Taking slots
is one Redis call (a Lua script: as many of those asked for as are free), giving them back another.
A delivery job takes up to as many as it has lanes (requests it posts at once); one that finds no
free slot does not wait for one: `endpoint_slots` yields 0 and the caller re-enqueues its job with a
short delay, so worker threads stay free for other endpoints.

A rate is a token bucket per endpoint (`take_tokens`): it holds at most one second's worth of requests
and refills at the endpoint's rate. In Redis it is one Lua call that reads the server's clock, so
every worker sees one bucket; in the embedded mode it lives in this process.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
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


RATE_KEY_PREFIX = "deskbridge:webhook-rate:"
# KEYS[1]: the endpoint's bucket; ARGV[1]: the rate a second; ARGV[2]: tokens wanted.
# Returns {tokens taken, ms until the next token when not all were}.
_TAKE_TOKENS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local rate = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or rate
local at = tonumber(state[2]) or now
tokens = math.min(rate, tokens + math.max(now - at, 0) * rate / 1000)
local take = math.min(tonumber(ARGV[2]), math.floor(tokens))
tokens = tokens - take
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], 60000)
local wait = 0
if take < tonumber(ARGV[2]) then
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
return {take, wait}
"""


class _Counter(Protocol):
    def acquire(self, key: str, limit: int, wanted: int) -> int: ...

    def release(self, key: str, count: int) -> None: ...

    def acquire_many(self, asked: Sequence[tuple[str, int, int]]) -> list[int]: ...

    def release_many(self, given: Sequence[tuple[str, int]]) -> None: ...

    def take_tokens(self, key: str, rate: int, wanted: int) -> tuple[int, int]: ...


class _MemoryCounter:
    """Slots of this process only (the embedded mode)."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # tokens left, when (monotonic seconds)
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

    def acquire_many(self, asked: Sequence[tuple[str, int, int]]) -> list[int]:
        return [self.acquire(key, limit, wanted) for key, limit, wanted in asked]

    def release_many(self, given: Sequence[tuple[str, int]]) -> None:
        for key, count in given:
            self.release(key, count)

    def take_tokens(self, key: str, rate: int, wanted: int) -> tuple[int, int]:
        with self._lock:
            now = time.monotonic()
            tokens, at = self._buckets.get(key, (float(rate), now))
            tokens = min(float(rate), tokens + (now - at) * rate)
            taken = min(wanted, math.floor(tokens))
            tokens -= taken
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1 - tokens) * 1000 / rate) if taken < wanted else 0
            return taken, wait


class _RedisCounter:
    """Slots counted in Redis, one round trip to take one and one to give it back."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE)
        self._take_tokens = self._client.register_script(_TAKE_TOKENS)

    def acquire(self, key: str, limit: int, wanted: int) -> int:
        return int(self._acquire(keys=[key], args=[limit, SLOT_TTL_MS, wanted]))

    def release(self, key: str, count: int) -> None:
        self._release(keys=[key], args=[count])

    def acquire_many(self, asked: Sequence[tuple[str, int, int]]) -> list[int]:
        # One round trip for every endpoint of a relay pass.
        with self._client.pipeline(transaction=False) as pipe:
            for key, limit, wanted in asked:
                self._acquire(keys=[key], args=[limit, SLOT_TTL_MS, wanted], client=pipe)
            return [int(taken) for taken in pipe.execute()]

    def release_many(self, given: Sequence[tuple[str, int]]) -> None:
        with self._client.pipeline(transaction=False) as pipe:
            for key, count in given:
                self._release(keys=[key], args=[count], client=pipe)
            pipe.execute()

    def take_tokens(self, key: str, rate: int, wanted: int) -> tuple[int, int]:
        taken, wait = self._take_tokens(keys=[key], args=[rate, wanted])
        return int(taken), int(wait)


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


def take_tokens(endpoint_id: int | str, rate: int, wanted: int) -> tuple[int, int]:
    """Take up to `wanted` of the endpoint's request tokens at `rate` a second; returns how many were
    taken and, when fewer than wanted, the milliseconds until the next one comes."""
    if rate < 1 or wanted < 1:
        raise ValueError("rate and wanted must be at least 1")
    return _limits.counter.take_tokens(f"{RATE_KEY_PREFIX}{endpoint_id}", rate, wanted)


def acquire_slots(endpoint_id: int | str, wanted: int, *, limit: int | None = None) -> int:
    """Take up to `wanted` of the endpoint's delivery slots and return how many were free and taken (0,
    at once, when none is); whoever gets some gives them back with `release_slots` once its requests
    are answered. May raise (Redis unreachable). `endpoint_slots` is the same as a `with` block."""
    if wanted < 1:
        raise ValueError("wanted must be at least 1")
    limits = _limits
    return limits.counter.acquire(f"{KEY_PREFIX}{endpoint_id}", limit or limits.per_endpoint, wanted)


def acquire_slots_of(asked: Sequence[tuple[int, int]]) -> list[int]:
    """`acquire_slots` for several endpoints at once, (endpoint id, slots wanted) each, with their
    default limit; how many each got, in the same order. One round trip on Redis. May raise."""
    if any(wanted < 1 for _, wanted in asked):
        raise ValueError("wanted must be at least 1")
    if not asked:
        return []
    limits = _limits
    return limits.counter.acquire_many(
        [(f"{KEY_PREFIX}{endpoint_id}", limits.per_endpoint, wanted) for endpoint_id, wanted in asked]
    )


def release_slots_of(given: Sequence[tuple[int, int]]) -> None:
    """`release_slots` for several endpoints at once, (endpoint id, slots taken) each. May raise (the
    slots then come back when their counters expire)."""
    taken = [(f"{KEY_PREFIX}{endpoint_id}", count) for endpoint_id, count in given if count > 0]
    if taken:
        _limits.counter.release_many(taken)


def release_slots(endpoint_id: int | str, count: int) -> None:
    """Give back `count` slots taken with `acquire_slots`. May raise (Redis unreachable): the slots
    then come back when the counter expires (SLOT_TTL_MS)."""
    if count > 0:
        _limits.counter.release(f"{KEY_PREFIX}{endpoint_id}", count)


@contextmanager
def endpoint_slots(endpoint_id: int | str, wanted: int, *, limit: int | None = None) -> Iterator[int]:
    """Hold up to `wanted` of the endpoint's delivery slots for the `with` block; yields how many were
    free and taken (0, at once, when none is). `limit`: the endpoint's slots, when not the default
    (an ordered endpoint has one).

    The slots are given back when the block ends, also when it raises. Taking them may raise (Redis
    unreachable); so may giving them back, after the block.
    """
    taken = acquire_slots(endpoint_id, wanted, limit=limit)
    if not taken:
        yield 0
        return
    try:
        yield taken
    finally:
        release_slots(endpoint_id, taken)

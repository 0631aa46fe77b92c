"""Per-endpoint concurrency, so a slow or dead endpoint never holds up deliveries to the others.

Built on Dramatiq's `ConcurrentRateLimiter`: the counters live in Redis when the broker does (shared
by every worker process), in this process otherwise (the embedded mode). A delivery that finds no
free slot does not wait for one: `endpoint_slot` yields False and the caller re-enqueues itself with a
short delay, so worker threads stay free for other endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dramatiq.rate_limits import ConcurrentRateLimiter, RateLimiterBackend
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

DEFAULT_PER_ENDPOINT = 10
KEY_PREFIX = "deskbridge:webhook-slots:"
# A counter slot held by a worker that was killed comes back when the key expires, which happens
# only once no delivery to that endpoint touched it for this long. Longer than any one request
# (15 s per connect/write/read phase).
SLOT_TTL_MS = 120_000


@dataclass(frozen=True)
class _Limits:
    backend: RateLimiterBackend
    per_endpoint: int


_limits = _Limits(StubBackend(), DEFAULT_PER_ENDPOINT)  # type: ignore[no-untyped-call]


def configure_limits(redis_url: str | None, per_endpoint: int = DEFAULT_PER_ENDPOINT) -> None:
    """Count slots in Redis at `redis_url` (None: in this process), `per_endpoint` concurrent deliveries each."""
    global _limits
    if per_endpoint < 1:
        raise ValueError("per_endpoint must be at least 1")
    backend: RateLimiterBackend = RedisBackend(url=redis_url) if redis_url else StubBackend()  # type: ignore[no-untyped-call]
    _limits = _Limits(backend, per_endpoint)


@contextmanager
def endpoint_slot(endpoint_id: int | str) -> Iterator[bool]:
    """Hold one of the endpoint's delivery slots for the `with` block; yields False (at once) when none is free.

    The slot is given back when the block ends, also when it raises.
    """
    limits = _limits
    limiter = ConcurrentRateLimiter(  # type: ignore[no-untyped-call]
        limits.backend, f"{KEY_PREFIX}{endpoint_id}", limit=limits.per_endpoint, ttl=SLOT_TTL_MS
    )
    with limiter.acquire(raise_on_failure=False) as acquired:
        yield bool(acquired)

"""The Redis rate-limit counter with Redis unreachable (nothing listening on its port): requests are
counted in the process, so the limit still holds per process, and the counter says it is degraded."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis

from api.ratelimit import MAX_CONNECTIONS, RedisCounter, day_window
from infra.redis_client import FailFastPool
from tests.conftest import REDIS_URL


def test_with_redis_unreachable_requests_are_counted_in_the_process() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    counter = RedisCounter.from_url(f"redis://127.0.0.1:{port}/3")
    assert counter.degraded is None

    counts = [counter.hit("ratelimit:1:20260101", 60) for _ in range(5)]

    assert counts == [1, 2, 3, 4, 5]  # a count that still reaches the limit (the API answers 429 past it)
    assert counter.hit("ratelimit:2:20260101", 60) == 1  # per member
    assert counter.degraded == "rate limits are counted per process: Redis is unreachable"


def test_a_pool_in_an_outage_refuses_without_trying_until_its_retry_is_due() -> None:
    # A "Redis" that accepts connections and closes them at once: each attempt is an accepted connection.
    accepted: list[int] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def refuse() -> None:
        with contextlib.suppress(OSError):
            while True:
                server.accept()[0].close()
                accepted.append(1)

    threading.Thread(target=refuse, daemon=True).start()
    pool = FailFastPool.from_url(
        f"redis://127.0.0.1:{server.getsockname()[1]}/3", name="test", meanwhile="nothing", retry_seconds=3600
    )
    try:
        for _ in range(3):
            with pytest.raises(redis.RedisError):
                pool.get_connection()
    finally:
        server.close()
    assert pool.down_since is not None
    assert len(accepted) == 1  # one attempt; the others refused at once within the retry interval


def test_the_redis_counter_counts_in_redis_and_gives_a_key_its_expiry_once(redis_client: redis.Redis) -> None:
    counter = RedisCounter(redis_client)

    assert [counter.hit("ratelimit:1:20260101", 60) for _ in range(3)] == [1, 2, 3]
    assert 0 < redis_client.ttl("ratelimit:1:20260101") <= 60
    # A later count keeps the expiry the first one gave (the window ends at midnight, whatever the count).
    counter.hit("ratelimit:1:20260101", 3600)
    assert redis_client.ttl("ratelimit:1:20260101") <= 60
    assert counter.hit("ratelimit:2:20260101", 60) == 1  # per member
    redis_client.script_flush()  # Redis forgot the script (a restart): it is loaded again
    assert counter.hit("ratelimit:1:20260101", 60) == 5
    assert counter.degraded is None


def test_coroutines_count_on_the_shared_redis_from_any_event_loop(redis_client: redis.Redis) -> None:
    counter = RedisCounter.from_url(REDIS_URL)
    key = "ratelimit:1:20260101"

    counts = [asyncio.run(counter.hit_async(key, 60)), counter.hit(key, 60), asyncio.run(counter.hit_async(key, 60))]

    assert counts == [1, 2, 3]  # one count, whichever client (and loop) asked
    assert 0 < redis_client.ttl(key) <= 60
    assert counter.degraded is None


def test_more_coroutines_at_once_than_the_pool_holds_all_count_on_redis(redis_client: redis.Redis) -> None:
    # A burst of requests on the event loop asks for more connections at once than the asyncio pool
    # holds: they wait for one, rather than take Redis for unreachable and count in the process.
    counter = RedisCounter.from_url(REDIS_URL)
    key = "ratelimit:1:20260101"
    burst = 3 * MAX_CONNECTIONS

    async def count() -> list[int]:
        return list(await asyncio.gather(*(counter.hit_async(key, 60) for _ in range(burst))))

    assert sorted(asyncio.run(count())) == list(range(1, burst + 1))
    assert int(redis_client.get(key) or 0) == burst
    assert counter.degraded is None


def test_with_redis_unreachable_coroutines_count_in_the_process() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    counter = RedisCounter.from_url(f"redis://127.0.0.1:{port}/3")

    async def count() -> list[int]:
        return [await counter.hit_async("ratelimit:1:20260101", 60) for _ in range(3)]

    assert asyncio.run(count()) == [1, 2, 3]
    assert counter.degraded == "rate limits are counted per process: Redis is unreachable"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), ("20261231", 1)),
        (datetime(2026, 12, 31, 23, 59, 58, 500000, tzinfo=UTC), ("20261231", 1)),
        (datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC), ("20270101", 86400)),
        (datetime(2027, 1, 1, 0, 0, 0, 500000, tzinfo=UTC), ("20270101", 86399)),
        (datetime(2027, 1, 1, 13, 0, 0, tzinfo=timezone(timedelta(hours=14))), ("20261231", 3600)),
    ],
)
def test_the_day_window_is_the_utc_day_and_the_whole_seconds_left_of_it(
    now: datetime, expected: tuple[str, int]
) -> None:
    assert day_window(now) == expected

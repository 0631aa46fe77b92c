"""Per-endpoint slots: a busy endpoint is refused a slot at once, other endpoints are not; in-process and in Redis."""

from __future__ import annotations

import threading

import pytest
import redis

from tests.conftest import REDIS_URL
from worker.webhooks import limits
from worker.webhooks.limits import configure_limits, endpoint_slot, endpoint_slots, take_tokens


@pytest.fixture(params=["in-process", "redis"])
def backend(request: pytest.FixtureRequest) -> redis.Redis | None:
    """Each test runs in-process (None) and on Redis (its client; skips or fails as redis_client does)."""
    if request.param == "redis":
        client: redis.Redis = request.getfixturevalue("redis_client")
        return client
    return None


def configure(backend: redis.Redis | None, per_endpoint: int) -> None:
    configure_limits(REDIS_URL if backend is not None else None, per_endpoint)


def test_a_held_slot_refuses_the_next_for_that_endpoint_only(backend: redis.Redis | None) -> None:
    configure(backend, 1)
    with endpoint_slot(1) as first:
        assert first is True
        with endpoint_slot(1) as second:
            assert second is False
        with endpoint_slot(2) as other:
            assert other is True
        if backend is not None:
            assert backend.get(f"{limits.KEY_PREFIX}1") == b"1"  # counted in Redis, where every worker sees it
    with endpoint_slot(1) as again:
        assert again is True


def test_a_slot_is_given_back_when_the_delivery_raises(backend: redis.Redis | None) -> None:
    configure(backend, 1)

    def failing_delivery() -> None:
        with endpoint_slot("ep_1") as held:
            assert held
            raise RuntimeError("delivery failed")

    with pytest.raises(RuntimeError):
        failing_delivery()
    with endpoint_slot("ep_1") as again:
        assert again


def test_concurrent_deliveries_get_at_most_the_limit(backend: redis.Redis | None) -> None:
    configure(backend, 3)
    release = threading.Event()
    all_tried = threading.Barrier(11)
    results: list[bool] = []

    def deliver() -> None:
        with endpoint_slot(7) as acquired:
            results.append(acquired)
            all_tried.wait(timeout=10)
            release.wait(timeout=10)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    all_tried.wait(timeout=10)
    release.set()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted(results) == [False] * 7 + [True] * 3


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        configure_limits(None, 0)


def test_a_slot_given_back_after_its_counter_expired_leaves_no_debt(backend: redis.Redis | None) -> None:
    configure(backend, 1)
    with endpoint_slot(3) as held:
        assert held
        if backend is not None:
            backend.delete(f"{limits.KEY_PREFIX}3")  # the counter expired (SLOT_TTL_MS) under a long request
    if backend is not None:
        assert backend.get(f"{limits.KEY_PREFIX}3") is None  # not -1: that would be a slot too many
    with endpoint_slot(3) as first:
        assert first
        with endpoint_slot(3) as second:
            assert not second


def test_a_taken_slot_keeps_its_counter_from_expiring(redis_client: redis.Redis) -> None:
    configure(redis_client, 2)
    with endpoint_slot(4) as held:
        assert held
        assert 0 < redis_client.pttl(f"{limits.KEY_PREFIX}4") <= limits.SLOT_TTL_MS


def test_a_job_takes_as_many_slots_as_are_free_and_gives_them_all_back(backend: redis.Redis | None) -> None:
    configure(backend, 3)
    with endpoint_slots(5, 2) as first:
        assert first == 2
        with endpoint_slots(5, 5) as second:
            assert second == 1  # only one was left
            with endpoint_slots(5, 1) as third:
                assert third == 0
            if backend is not None:
                assert backend.get(f"{limits.KEY_PREFIX}5") == b"3"
    with endpoint_slots(5, 5) as again:
        assert again == 3
    if backend is not None:
        assert backend.get(f"{limits.KEY_PREFIX}5") is None  # all given back: the counter is gone


def test_a_job_wants_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"), endpoint_slots(1, 0):
        pass


def test_a_rate_bucket_gives_a_seconds_worth_then_says_how_long_to_wait(backend: redis.Redis | None) -> None:
    configure(backend, 10)
    taken, wait_ms = take_tokens(7, 3, 5)
    assert taken == 3  # a fresh bucket holds one second's worth
    assert 0 < wait_ms <= 334  # the next token, a third of a second on
    assert take_tokens(8, 3, 2) == (2, 0)  # another endpoint's bucket is its own
    if backend is not None:
        # In Redis, where every worker takes from it: the first endpoint's bucket is (nearly) empty.
        tokens = backend.hget(f"{limits.RATE_KEY_PREFIX}7", "tokens")
        assert tokens is not None
        assert float(tokens) < 1
    with pytest.raises(ValueError, match="at least 1"):
        take_tokens(7, 0, 1)

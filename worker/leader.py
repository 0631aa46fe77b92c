"""Leader election for the scheduler: at most one process runs the periodic jobs.

`RedisLeaderLock` is a redis-py lock with a time to live. The leader extends it on every heartbeat;
a leader that dies (or loses Redis) stops extending it, the key expires, and a waiting scheduler
acquires it. `LocalLeaderLock` always leads: the embedded mode runs one process only.
"""

from __future__ import annotations

import logging
from typing import Protocol

import redis
from redis.exceptions import LockError

log = logging.getLogger(__name__)

LOCK_NAME = "deskbridge:scheduler:leader"
LOCK_TTL_SECONDS = 15.0


class LeaderLock(Protocol):
    """A lock whose holder is the leader. None of the methods blocks waiting for the lock."""

    def acquire(self) -> bool:
        """Try once to become the leader; True if this process now holds the lock."""
        ...

    def extend(self) -> bool:
        """Renew the lock's time to live; False if it was lost (expired and possibly taken by another)."""
        ...

    def release(self) -> None:
        """Give the lock up (if held), so another scheduler can lead at once."""
        ...


class LocalLeaderLock:
    """Always the leader: for a single process (the embedded mode)."""

    def acquire(self) -> bool:
        return True

    def extend(self) -> bool:
        return True

    def release(self) -> None:
        return None


class RedisLeaderLock:
    """A lock in Redis, held for `ttl` seconds unless extended; extend it well within `ttl`."""

    def __init__(self, client: redis.Redis, *, name: str = LOCK_NAME, ttl: float = LOCK_TTL_SECONDS) -> None:
        self.ttl = ttl
        # thread_local=False: the token must survive the scheduler moving between threads.
        self._lock = client.lock(name, timeout=ttl, blocking=False, thread_local=False)

    @classmethod
    def from_url(cls, url: str, *, name: str = LOCK_NAME, ttl: float = LOCK_TTL_SECONDS) -> RedisLeaderLock:
        """A lock on the Redis at `url`; its calls time out well within `ttl`, so a hung Redis reads as lost."""
        timeout = max(ttl / 3, 0.1)
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, name=name, ttl=ttl)

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def extend(self) -> bool:
        try:
            self._lock.reacquire()
        except LockError:
            return False
        return True

    def release(self) -> None:
        try:
            self._lock.release()
        except LockError:
            log.debug("scheduler lock was no longer ours to release")

"""Who is who at each Resource Guru connection, kept a minute per worker process.

Reading a delivery needs the roster (resource id → person), which costs requests against the
account's 200 a minute: a burst of deliveries would spend the budget on the same answer. A
delivery about a resource changes the roster, so it drops that connection's copy at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connectors.resourceguru import Roster

TTL = 60.0


class RosterCache:
    """Rosters by connection id, each read again after `ttl` seconds; `clock` is injectable for tests."""

    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._found: dict[int, tuple[float, Roster]] = {}
        self._lock = threading.Lock()

    def get(self, connection_id: int, read: Callable[[], Roster]) -> Roster:
        """The connection's roster: the kept one while fresh, else `read()` (outside the lock: it is a request)."""
        with self._lock:
            kept = self._found.get(connection_id)
        if kept is not None and self._clock() - kept[0] < self._ttl:
            return kept[1]
        roster = read()
        with self._lock:
            self._found[connection_id] = (self._clock(), roster)
        return roster

    def forget(self, connection_id: int) -> None:
        """Drop the connection's roster (a resource changed)."""
        with self._lock:
            self._found.pop(connection_id, None)


ROSTERS = RosterCache()

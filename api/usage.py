"""Token use, noted in memory and written in batches, so requests do not each become a write."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.services import tokens

logger = logging.getLogger(__name__)


class TokenUsage:
    """Collects the ids of tokens used; every `interval` seconds one request writes them all."""

    def __init__(self, factory: sessionmaker[Session], interval: float = 30.0) -> None:
        self._factory = factory
        self._interval = interval
        self._used: set[int] = set()
        self._lock = threading.Lock()
        self._next_flush = time.monotonic() + interval

    def note(self, token_id: int) -> bool:
        """Remember a use; True when the interval has passed and the caller should `flush` (off the loop)."""
        with self._lock:
            self._used.add(token_id)
            return time.monotonic() >= self._next_flush

    def flush(self, at: datetime | None = None) -> None:
        """Write every use noted since the last flush."""
        with self._lock:
            used, self._used = self._used, set()
            self._next_flush = time.monotonic() + self._interval
        if not used:
            return
        try:
            with transaction(self._factory) as session:
                tokens.record_use(session, used, at or utcnow())
        except Exception:
            logger.exception("could not record the use of %d API tokens", len(used))

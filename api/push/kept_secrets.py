"""Webhook secrets read from the store once and kept in the API process, so checking a delivery's
signature costs no database round trip."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from connectors.resourceguru import verify

# A secret changed or removed (or its connection deleted) stops being accepted within this long.
KEEP_SECONDS = 30.0
# A signature that fails against a kept secret reads it again (it may have been changed), at most
# this often per connection, so a flood of forged deliveries costs no more store reads than this.
RECHECK_SECONDS = 5.0
MAX_KEPT = 10_000  # connections whose secret (or lack of one) is kept; the ids come from the URL
# Checked against when the connection has no secret, so refusing takes as long either way.
_NO_SECRET = secrets.token_hex(32)


@dataclass(frozen=True, slots=True)
class _Kept:
    secret: str | None
    read_at: float


class Secrets:
    """Each connection's webhook secret, read from the store and kept `KEEP_SECONDS` in this process."""

    def __init__(self, read: Callable[[int], str | None], clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._clock = clock
        self._kept: dict[int, _Kept] = {}

    async def check(self, connection_id: int, body: bytes, signature: str | None) -> bool:
        """Whether `signature` signs `body` under the connection's secret (False without one)."""
        kept = self._kept.get(connection_id)
        if kept is None or self._stale(kept, KEEP_SECONDS):
            kept = await self._reread(connection_id)
        if _verifies(kept, body, signature):
            return True
        if not self._stale(kept, RECHECK_SECONDS):
            return False
        return _verifies(await self._reread(connection_id), body, signature)

    def forget(self, connection_id: int) -> None:
        """Read the connection's secret again next time (it was found gone)."""
        self._kept.pop(connection_id, None)

    def _stale(self, kept: _Kept, seconds: float) -> bool:
        return self._clock() - kept.read_at > seconds

    async def _reread(self, connection_id: int) -> _Kept:
        kept = _Kept(await run_in_threadpool(self._read, connection_id), self._clock())
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[connection_id] = kept
        return kept


def _verifies(kept: _Kept, body: bytes, signature: str | None) -> bool:
    return verify(kept.secret or _NO_SECRET, body, signature) and kept.secret is not None

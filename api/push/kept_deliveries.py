"""Verified webhook deliveries written to the store a batch at a time (group commit).

A burst of deliveries would otherwise cost a transaction, a commit and a thread hop each. Here a
delivery waits while the batch before it is written, then goes in the next one with everything
that arrived meanwhile: one thread hop, one transaction and one commit a batch, and one request
for the worker per connection. A delivery that arrives when nothing is being written goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from store.db import transaction
from store.services import peer_envelopes
from store.services.peer_envelopes import Received

MAX_BATCH = 200


class KeptDeliveries:
    """Keeps deliveries for one event loop; `enqueue(connection_id)` asks the worker to apply a connection's."""

    def __init__(self, factory: sessionmaker[Session], enqueue: Callable[[int], None]) -> None:
        self._factory = factory
        self._enqueue = enqueue
        self._waiting: list[tuple[Received, asyncio.Future[bool | None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def keep(self, delivery: Received) -> bool | None:
        """Keep a delivery: True when new, False when received before, None when its connection is gone."""
        kept: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, kept))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await kept

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                try:
                    results = await run_in_threadpool(self._write_batch, [delivery for delivery, _ in batch])
                except Exception as error:
                    for _, kept in batch:
                        kept.set_exception(error)
                    continue
                for (_, kept), result in zip(batch, results, strict=True):
                    kept.set_result(result)
        finally:
            self._writer = None

    def _write_batch(self, deliveries: list[Received]) -> list[bool | None]:
        with transaction(self._factory) as session:
            results = peer_envelopes.receive_many(session, deliveries)
        for connection_id in sorted({item.connection_id for item, new in zip(deliveries, results, strict=True) if new}):
            self._enqueue(connection_id)
        return results

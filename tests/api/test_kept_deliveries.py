"""Deliveries kept a batch at a time: those arriving together share one transaction and one request to the worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.push.kept_deliveries import KeptDeliveries
from store.db import make_engine, make_session_factory
from store.models import PeerEnvelope
from store.services.peer_envelopes import Received
from tests.store.test_peer_envelopes import _connection


def test_deliveries_arriving_together_are_written_together(session_factory: sessionmaker[Session]) -> None:
    connection_id = _connection(session_factory)
    asked: list[int] = []
    kept = KeptDeliveries(session_factory, asked.append)

    async def burst() -> list[bool | None]:
        deliveries = [Received(connection_id, envelope_id, "{}") for envelope_id in range(1, 21)]
        deliveries += [Received(connection_id, 3, "{}"), Received(connection_id + 1, 99, "{}")]
        return await asyncio.gather(*(kept.keep(item) for item in deliveries))

    assert asyncio.run(burst()) == [True] * 20 + [False, None]  # the second envelope 3 is a replay
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(PeerEnvelope)) == 20
    assert asked == [connection_id]  # one batch: the worker is asked once


def test_a_batch_that_cannot_be_written_fails_every_delivery_in_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every write fails
    kept = KeptDeliveries(make_session_factory(engine), lambda _id: None)

    async def burst() -> list[bool | BaseException | None]:
        return await asyncio.gather(*(kept.keep(Received(1, n, "{}")) for n in range(3)), return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert all(isinstance(outcome, OperationalError) for outcome in outcomes)
    with pytest.raises(OperationalError):  # the next delivery is written (and fails) too: nothing hangs
        asyncio.run(kept.keep(Received(1, 9, "{}")))
    engine.dispose()

"""Relays running at once: no event is taken twice on PostgreSQL (SKIP LOCKED), and on either backend no
delivery is made or handed out twice and every event is covered."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import make_engine, make_session_factory, transaction
from store.models import Base, Delivery, OutboxEvent
from store.secret_box import SecretBox
from store.services import desks, outbox_relay, webhook_endpoints
from tests.conftest import Org, make_org

RELAYS = 4
EVENTS = 120


@pytest.fixture
def pooled(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions with a connection for every relay, so they really run together."""
    own = make_engine(engine.url.render_as_string(hide_password=False), pool_size=RELAYS + 1, max_overflow=0)
    yield make_session_factory(own)
    own.dispose()


@pytest.fixture
def postgres(postgres_engine: Engine) -> sessionmaker[Session]:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with postgres_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return make_session_factory(postgres_engine)


def _setup(factory: sessionmaker[Session]) -> tuple[list[int], list[str]]:
    """Two organisations with two endpoints each and EVENTS desk events between them; (endpoint ids, event ids)."""
    box = SecretBox([SecretBox.generate_key()])
    orgs: list[Org] = [make_org(factory), make_org(factory, "Globex")]
    with transaction(factory) as session:
        outbox_relay.relay(session, now=utcnow())  # the set-up's own events
        endpoint_ids = [
            webhook_endpoints.create_endpoint(
                session, org.organisation.id, "https://r.example/", box=box, event_types=pattern
            )[0].id
            for org in orgs
            for pattern in (["desk.created"], ["desk.*"])
        ]
    with transaction(factory) as session:
        outbox_relay.relay(session, now=utcnow())  # endpoint.created: wanted by nobody
    for n in range(EVENTS):
        with transaction(factory) as session:
            desks.create(session, orgs[n % 2].organisation.id, f"D{n}")
    with factory() as session:
        event_ids = list(session.scalars(select(OutboxEvent.id).where(OutboxEvent.relayed_at.is_(None))))
    assert len(event_ids) == EVENTS
    return endpoint_ids, event_ids


def _pairs(factory: sessionmaker[Session]) -> Counter[tuple[int, str]]:
    with factory() as session:
        return Counter((row[0], row[1]) for row in session.execute(select(Delivery.endpoint_id, Delivery.event_id)))


def _others_have_work(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        return outbox_relay.has_unrelayed(session)


def test_racing_relays_cover_every_event_once(pooled: sessionmaker[Session]) -> None:
    _, event_ids = _setup(pooled)
    barrier = threading.Barrier(RELAYS)

    def run() -> list[int]:
        handed_out: list[int] = []
        barrier.wait(timeout=60)
        while True:
            with transaction(pooled) as session:
                batch = outbox_relay.relay(session, limit=7, now=utcnow())
                remaining = session.scalar(select(OutboxEvent.id).where(OutboxEvent.relayed_at.is_(None)).limit(1))
            handed_out += batch
            if not batch and remaining is None:
                return handed_out

    with ThreadPoolExecutor(RELAYS) as pool:
        results = list(pool.map(lambda _: run(), range(RELAYS)))
    handed_out = [delivery_id for result in results for delivery_id in result]
    pairs = _pairs(pooled)
    assert len(handed_out) == len(set(handed_out)) == EVENTS * 2  # each event: two endpoints of its organisation
    assert set(pairs.values()) == {1}
    assert {event_id for _, event_id in pairs} == set(event_ids)
    with pooled() as session:
        assert set(session.scalars(select(Delivery.id))) == set(handed_out)


def test_postgres_relays_skip_each_others_events(postgres: sessionmaker[Session]) -> None:
    _, event_ids = _setup(postgres)
    first, second = postgres(), postgres()
    try:
        # Without SKIP LOCKED the second relay would wait for the first: fail fast instead of hanging.
        second.execute(text("SET LOCAL lock_timeout = '5s'"))
        taken_first = outbox_relay.relay(first, limit=EVENTS // 2, now=utcnow())
        assert _others_have_work(postgres)
        taken_second = outbox_relay.relay(second, limit=EVENTS, now=utcnow())
        assert not _others_have_work(postgres)  # every unrelayed event is held by a relay
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    assert len(taken_first) == len(taken_second) == EVENTS
    assert not set(taken_first) & set(taken_second)
    pairs = _pairs(postgres)
    assert set(pairs.values()) == {1}
    assert {event_id for _, event_id in pairs} == set(event_ids)
    with postgres() as session:
        first_events = set(session.scalars(select(Delivery.event_id).where(Delivery.id.in_(taken_first))))
        second_events = set(session.scalars(select(Delivery.event_id).where(Delivery.id.in_(taken_second))))
    assert len(first_events) == len(second_events) == EVENTS // 2
    assert not first_events & second_events

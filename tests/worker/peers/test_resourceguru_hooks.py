"""Resource Guru deliveries applied by the worker: whole or not at all, once per envelope id."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.records import PersonEvent, Window
from connectors.resourceguru.webhooks import Record
from store.db import transaction
from store.models import ConnectionStatus, PeerEnvelope
from store.services import peer_envelopes
from tests.conftest import REDIS_URL
from tests.fakes.resourceguru import FakeResourceGuru
from tests.worker.peers.conftest import World, today_at
from tests.worker.peers.test_resourceguru import connect
from worker import actors, coalesce
from worker.peers import hooks
from worker.queue import ActorName


def deliver(world: World, connection_id: int, envelope_id: int, payload: dict[str, Any]) -> int | None:
    """What the API keeps for a verified delivery; the row id, None for an envelope seen before."""
    body = json.dumps({"id": envelope_id, "timestamp": 1_700_000_000, "payload": payload})
    subject = f"{payload.get('type')}:{payload.get('id')}"
    with transaction(world.factory) as session:
        return peer_envelopes.receive(session, connection_id, envelope_id, body, subject)


def synced(world: World, fake: FakeResourceGuru) -> int:
    connection_id = connect(world, fake)
    assert world.sync(connection_id).status is ConnectionStatus.ACTIVE
    return connection_id


def test_a_new_booking_arrives_once(world: World, resourceguru: FakeResourceGuru) -> None:
    connection_id = synced(world, resourceguru)
    ada = next(iter(resourceguru.objects["resources"]))
    day = today_at(0, 2).date().isoformat()
    booking = resourceguru.add_booking([ada], day, day, duration=120, start_time=600)
    row_id = deliver(world, connection_id, 7, resourceguru.payload("bookings", booking["id"], "create"))
    assert row_id is not None
    assert hooks.apply(world.runtime, row_id) == "applied"
    assert f"booking:{booking['id']}" in world.events()
    assert hooks.apply(world.runtime, row_id) == "done"  # a redelivered job
    assert deliver(world, connection_id, 7, resourceguru.payload("bookings", booking["id"], "create")) is None


def test_a_deleted_booking_leaves_every_calendar(world: World, resourceguru: FakeResourceGuru) -> None:
    connection_id = synced(world, resourceguru)
    (booking_id,) = list(resourceguru.objects["bookings"])
    assert f"booking:{booking_id}" in world.events()
    row_id = deliver(world, connection_id, 8, resourceguru.payload("bookings", booking_id, "delete"))
    assert row_id is not None
    assert hooks.apply(world.runtime, row_id) == "applied"
    assert f"booking:{booking_id}" not in world.events()


def test_a_new_person_becomes_a_member(world: World, resourceguru: FakeResourceGuru) -> None:
    connection_id = synced(world, resourceguru)
    grace = resourceguru.add_resource("Grace", "Hopper", "grace@example.com")
    row_id = deliver(world, connection_id, 9, resourceguru.payload("resources", grace["id"], "create"))
    assert row_id is not None
    assert hooks.apply(world.runtime, row_id) == "applied"
    assert world.members()["grace@example.com"] == "active"


def test_a_malformed_delivery_is_refused_whole_and_said_on_the_connection(
    world: World, resourceguru: FakeResourceGuru
) -> None:
    connection_id = synced(world, resourceguru)
    before = world.events()
    payload = {"action": "create", "type": "booking", "id": "not-a-number"}
    row_id = deliver(world, connection_id, 10, payload)
    assert row_id is not None
    assert hooks.apply(world.runtime, row_id) == "refused"
    connection = world.connection(connection_id)
    assert connection.status is ConnectionStatus.ERROR
    assert "could not be read" in (connection.last_error or "")
    assert set(world.events()) == set(before)
    with world.factory() as session:
        row = session.scalars(select(PeerEnvelope)).one()
        assert row.applied_at is not None
        assert row.error
    assert world.sync(connection_id).status is ConnectionStatus.ACTIVE  # the poll reconciles


def test_an_older_delivery_arriving_late_does_not_undo_a_newer_one(
    world: World, resourceguru: FakeResourceGuru
) -> None:
    connection_id = synced(world, resourceguru)
    (booking_id,) = list(resourceguru.objects["bookings"])
    older = resourceguru.payload("bookings", booking_id, "update")
    resourceguru.update("bookings", booking_id, start_time=780)  # moved to 13:00
    newer = deliver(world, connection_id, 21, resourceguru.payload("bookings", booking_id, "update"))
    late = deliver(world, connection_id, 20, older)
    assert newer is not None
    assert late is not None
    assert hooks.apply(world.runtime, newer) == "applied"
    assert hooks.apply(world.runtime, late) == "superseded"
    assert world.events()[f"booking:{booking_id}"].start_at.hour == 13


def test_a_drain_applies_what_waits_oldest_first_and_once(world: World, resourceguru: FakeResourceGuru) -> None:
    connection_id = synced(world, resourceguru)
    (booking_id,) = list(resourceguru.objects["bookings"])
    older = resourceguru.payload("bookings", booking_id, "update")
    resourceguru.update("bookings", booking_id, start_time=780)  # moved to 13:00
    newer = resourceguru.payload("bookings", booking_id, "update")
    grace = resourceguru.add_resource("Grace", "Hopper", "grace@example.com")
    # Kept out of order: of the two about the booking only the newer is applied (the older is
    # superseded by it). The resource delivery is applied on its own batch (who is who changed).
    deliver(world, connection_id, 31, newer)
    deliver(world, connection_id, 32, resourceguru.payload("resources", grace["id"], "create"))
    deliver(world, connection_id, 30, older)
    assert hooks.drain(world.runtime, connection_id) == {"applied": 2, "superseded": 1}
    assert world.events()[f"booking:{booking_id}"].start_at.hour == 13
    assert world.members()["grace@example.com"] == "active"
    assert hooks.drain(world.runtime, connection_id) == {}  # nothing waits: a redelivered job does nothing


def test_one_bad_delivery_does_not_hold_up_the_others(
    world: World, resourceguru: FakeResourceGuru, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection_id = synced(world, resourceguru)
    (booking_id,) = list(resourceguru.objects["bookings"])
    ada = next(iter(resourceguru.objects["resources"]))
    day = today_at(0, 2).date().isoformat()
    other = resourceguru.add_booking([ada], day, day, duration=60, start_time=900)
    deliver(world, connection_id, 40, {"action": "create", "type": "booking", "id": "not-a-number"})
    deliver(world, connection_id, 41, resourceguru.payload("bookings", booking_id, "delete"))
    deliver(world, connection_id, 42, resourceguru.payload("bookings", other["id"], "create"))
    real = hooks.apply_records
    poisoned = f"booking:{other['id']}"

    def breaks_on_one(session: Session, connection: int, payload: Sequence[Record], window: Window) -> None:
        # Fault injection: applying this one booking fails as an unforeseen bug would.
        if any(isinstance(item, PersonEvent) and item.event.event_id == poisoned for item in payload):
            raise RuntimeError("boom")
        real(session, connection, payload, window)

    monkeypatch.setattr(hooks, "apply_records", breaks_on_one)
    # Together they fail; one by one only the culprit is refused, and the unreadable one is.
    assert hooks.drain(world.runtime, connection_id) == {"refused": 2, "applied": 1}
    assert f"booking:{booking_id}" not in world.events()
    assert poisoned not in world.events()
    with world.factory() as session:
        rows = session.execute(select(PeerEnvelope.envelope_id, PeerEnvelope.error))
        errors = {row.envelope_id: row.error for row in rows}
    assert errors[41] is None
    assert "could not be applied (RuntimeError)" in (errors[42] or "")
    assert errors[40]
    assert world.connection(connection_id).status is ConnectionStatus.ERROR


def test_deliveries_ask_for_one_waiting_job_per_connection(redis_client: redis.Redis) -> None:
    """On Redis, a burst of deliveries queues one drain of their connection until it starts."""
    broker = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]
    on_redis = actors.bind(broker)  # the actors bound to Redis for this test
    queue_name = on_redis.queue_of(ActorName.APPLY_ENVELOPES)
    try:
        for _ in range(5):
            hooks.enqueue(on_redis, 7)
        hooks.enqueue(on_redis, 8)
        assert redis_client.hlen(f"dramatiq:{queue_name}.msgs") == 2
        coalesce.starting(broker, "deskbridge:resourceguru-waiting:7")  # the job for 7 started
        hooks.enqueue(on_redis, 7)
        assert redis_client.hlen(f"dramatiq:{queue_name}.msgs") == 3
    finally:
        broker.close()

"""Calendar push channels: one Graph subscription per person beside the directory's, renewed and closed
with the connection; a verified notification on it asks for that calendar's sync, coalesced."""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from store.columns import utcnow
from store.db import transaction
from store.models import Calendar, Connection, PushChannel
from store.services import push_channels
from tests.conftest import BROKER, make_client
from tests.fakes.graph import FakeGraph
from tests.worker.calendar.conftest import World, microsoft
from tests.worker.conftest import drain
from worker import channels
from worker.api_jobs import QueuedJobs

ADA = "ada@contoso.example"


def api(world: World) -> TestClient:
    """The API on the world's store, asking the worker through the real queue (the suite's broker)."""
    return make_client(
        world.factory,
        public_base_url="https://deskbridge.example",
        secret_box=world.runtime.secret_box,
        jobs=QueuedJobs(world.runtime),
    )


def directory_jobs() -> int:
    """Jobs waiting on the suite's broker's directory queue."""
    return BROKER.queues["directory"].qsize()


def notification(graph: FakeGraph, subscription_id: str, secret: str | None = None) -> dict[str, object]:
    subscription = graph.subscriptions.items[subscription_id]
    return {
        "subscriptionId": subscription_id,
        "clientState": secret if secret is not None else subscription.client_state,
        "changeType": "updated",
        "resource": "Users/u1/Events/AAMk1",
        "tenantId": graph.tenant_id,
        "resourceData": {"id": "AAMk1"},
    }


def queued(queue: str = "calendar") -> int:
    return BROKER.queues[queue].qsize() if queue in BROKER.queues else 0


def test_each_calendar_gets_its_own_channel_beside_the_directory(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)

    assert channels.ensure_calendar(world.runtime, calendar_id) == 1
    assert channels.ensure(world.runtime, connection_id) == 2  # its own users and groups
    assert channels.ensure_calendar(world.runtime, calendar_id) == 0  # far from expiry
    assert channels.ensure(world.runtime, connection_id) == 0

    [mine] = [item for item in graph.subscriptions.items.values() if item.resource.endswith("/events")]
    assert mine.resource == "users/ada@contoso.example/events"
    assert mine.notification_url == f"https://deskbridge.example/push/microsoft/{connection_id}"
    with world.factory() as session:
        [row] = push_channels.held(session, connection_id, calendar_id)
        assert row.provider_id == mine.id

    with transaction(world.factory) as session:  # about to expire: renewed in place
        session.execute(
            update(PushChannel)
            .where(PushChannel.calendar_id == calendar_id)
            .values(expires_at=utcnow() + timedelta(minutes=5), updated_at=utcnow() - timedelta(days=2))
        )
    assert channels.ensure_calendar(world.runtime, calendar_id) == 1
    assert mine.id in graph.subscriptions.items

    channels.close_connection(world.runtime, connection_id)  # the connection is being deleted
    assert graph.subscriptions.items == {}
    with world.factory() as session:
        assert session.scalars(select(PushChannel)).all() == []


def test_a_notification_asks_for_one_calendar_sync(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    drain(BROKER, "calendar")  # the first syncs and channels the directory sync asked for
    assert channels.ensure_calendar(world.runtime, calendar_id) == 0  # opened by then
    resource = f"users/{ADA}/events"
    [subscription] = [key for key, item in graph.subscriptions.items.items() if item.resource == resource]
    synced_before = world.calendar(calendar_id).last_synced_at
    directory_before = directory_jobs()
    client = api(world)
    body = {"value": [notification(graph, subscription)] * 3}

    for _ in range(2):  # a burst: two requests of three notifications each
        assert client.post(f"/push/microsoft/{connection_id}", json=body).status_code == 202

    assert queued() == 1
    assert directory_jobs() == directory_before  # the directory was not asked
    with world.factory() as session:
        assert session.get_one(Connection, connection_id).sync_requested_at is None
        assert session.get_one(Calendar, calendar_id).sync_requested_at is not None
    graph.calendars.add_event("u1", "New", utcnow() + timedelta(days=1), utcnow() + timedelta(days=1, hours=1))
    drain(BROKER, "calendar")
    calendar = world.calendar(calendar_id)
    assert calendar.sync_requested_at is None
    assert synced_before is not None
    assert calendar.last_synced_at is not None
    assert calendar.last_synced_at > synced_before
    assert calendar.last_counts["changed"] == 1


def test_notifications_about_several_calendars_queue_one_job(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    drain(BROKER, "calendar")  # the first syncs and channels the directory sync asked for
    ids = {item.resource: key for key, item in graph.subscriptions.items.items()}
    body = {
        "value": [
            notification(graph, ids[f"users/{ADA}/events"]),
            notification(graph, ids["users/bob@contoso.example/events"]),
        ]
    }

    assert api(world).post(f"/push/microsoft/{connection_id}", json=body).status_code == 202

    [message] = [dramatiq.Message.decode(data) for data in BROKER.queues["calendar"].queue]
    assert message.actor_name == "sync_calendars"
    assert message.args == (connection_id, sorted([world.calendar_id(ADA), world.calendar_id("bob@contoso.example")]))
    drain(BROKER, "calendar")
    assert world.calendar(world.calendar_id(ADA)).sync_requested_at is None


def test_a_forged_notification_queues_nothing(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    calendar_id = world.calendar_id(ADA)
    drain(BROKER, "calendar")  # the first syncs and channels the directory sync asked for
    resource = f"users/{ADA}/events"
    [subscription] = [key for key, item in graph.subscriptions.items.items() if item.resource == resource]
    body = {"value": [notification(graph, subscription), notification(graph, subscription, secret="forged")]}

    response = api(world).post(f"/push/microsoft/{connection_id}", json=body)

    assert response.status_code == 401
    assert queued() == 0
    assert world.calendar(calendar_id).sync_requested_at is None

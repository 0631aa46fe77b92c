"""Push channel upkeep against the fake Graph: opened once, renewed before expiry, reopened when gone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from store.columns import utcnow
from store.db import transaction
from store.models import PushChannel
from store.services import push_channels
from tests.fakes.graph import FakeGraph
from tests.worker.directory.conftest import Tenant
from worker import channels, runtime


def stored(worker_runtime: runtime.Runtime, connection_id: int) -> list[PushChannel]:
    with worker_runtime.session_factory() as session:
        return push_channels.held(session, connection_id, None)


def expire_soon(worker_runtime: runtime.Runtime) -> None:
    with transaction(worker_runtime.session_factory) as session:
        session.execute(
            update(PushChannel).values(
                expires_at=utcnow() + timedelta(minutes=5), updated_at=utcnow() - timedelta(days=2)
            )
        )


def test_channels_are_opened_once_with_our_urls(tenant: Tenant, graph: FakeGraph) -> None:
    worker_runtime, connection_id = tenant.runtime, tenant.connection_id
    assert channels.ensure(worker_runtime, connection_id) == 2
    assert channels.ensure(worker_runtime, connection_id) == 0  # far from expiry: nothing to do
    kept = stored(worker_runtime, connection_id)
    assert sorted(channel.resource for channel in kept) == ["groups", "users"]
    at_graph = graph.subscriptions.items
    assert set(at_graph) == {channel.provider_id for channel in kept}
    for item in at_graph.values():
        assert item.notification_url == f"https://deskbridge.example/push/microsoft/{connection_id}"
        assert item.lifecycle_url == f"https://deskbridge.example/push/microsoft/{connection_id}/lifecycle"
        assert item.client_state
    # The secret is kept only hashed, and it verifies what Graph will send.
    with worker_runtime.session_factory() as session:
        for channel in kept:
            assert channel.secret_hash != at_graph[channel.provider_id].client_state
            secret = at_graph[channel.provider_id].client_state or ""
            assert push_channels.verify(session, channel.provider_id, secret) is not None


def test_channels_about_to_expire_are_renewed_in_place(tenant: Tenant, graph: FakeGraph) -> None:
    worker_runtime, connection_id = tenant.runtime, tenant.connection_id
    channels.ensure(worker_runtime, connection_id)
    before = {channel.provider_id for channel in stored(worker_runtime, connection_id)}
    expire_soon(worker_runtime)

    assert channels.ensure(worker_runtime, connection_id) == 2

    after = stored(worker_runtime, connection_id)
    assert {channel.provider_id for channel in after} == before
    assert all(channel.expires_at > utcnow() + timedelta(days=1) for channel in after)
    assert graph.count("/v1.0/subscriptions/", "PATCH") == 2


def test_a_channel_gone_at_graph_is_opened_again(tenant: Tenant, graph: FakeGraph) -> None:
    worker_runtime, connection_id = tenant.runtime, tenant.connection_id
    channels.ensure(worker_runtime, connection_id)
    before = {channel.provider_id for channel in stored(worker_runtime, connection_id)}
    graph.subscriptions.items.clear()  # Graph dropped them (expired, or subscriptionRemoved)
    expire_soon(worker_runtime)

    channels.ensure(worker_runtime, connection_id)

    after = {channel.provider_id for channel in stored(worker_runtime, connection_id)}
    assert len(after) == 2
    assert after.isdisjoint(before)
    assert after == set(graph.subscriptions.items)


def test_recreate_and_close(tenant: Tenant, graph: FakeGraph) -> None:
    worker_runtime, connection_id = tenant.runtime, tenant.connection_id
    channels.ensure(worker_runtime, connection_id)
    first = set(graph.subscriptions.items)
    assert channels.ensure(worker_runtime, connection_id, recreate=True) == 2
    assert set(graph.subscriptions.items).isdisjoint(first)

    channels.close_connection(worker_runtime, connection_id)

    assert graph.subscriptions.items == {}
    assert stored(worker_runtime, connection_id) == []


def test_refused_credentials_leave_the_channels_alone(tenant: Tenant, graph: FakeGraph) -> None:
    worker_runtime, connection_id = tenant.runtime, tenant.connection_id
    graph.identity.apps.clear()  # the app registration was deleted
    assert channels.ensure(worker_runtime, connection_id) == 0
    assert stored(worker_runtime, connection_id) == []

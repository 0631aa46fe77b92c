"""Connection health as events (issue 16, item 4): `connection.failed`, `connection.action_required` and
`connection.recovered` go out when a connection's state changes, through the real sync against the fake
Graph, never at every retry that fails again."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from store.db import transaction
from store.models import ConnectionStatus, OutboxEvent
from store.secret_box import SecretBox
from store.services import connections
from tests.fakes.graph import App, FakeGraph
from tests.worker.directory.conftest import CLIENT_ID, SECRET, Tenant
from worker import channels
from worker.directory import sync

HEALTH = ("connection.failed", "connection.action_required", "connection.recovered")


def health(tenant: Tenant) -> list[tuple[str, dict[str, Any]]]:
    """The connection's health events, in order."""
    with tenant.factory() as session:
        rows = session.execute(
            select(OutboxEvent.type, OutboxEvent.data)
            .where(OutboxEvent.organisation_id == tenant.organisation_id, OutboxEvent.type.in_(HEALTH))
            .order_by(OutboxEvent.seq)
        )
        return [(type_, dict(data)) for type_, data in rows]


def unavailable(graph: FakeGraph) -> None:
    """Graph answers 503 to as many requests as a sync makes before it gives up (GraphClient's 5 tries)."""
    graph.throttle(5, retry_after="0.001", status=503)


def test_a_failure_is_said_once_and_the_recovery_once(tenant: Tenant, graph: FakeGraph) -> None:
    unavailable(graph)
    assert sync.run(tenant.runtime, tenant.connection_id) is None
    unavailable(graph)
    assert sync.run(tenant.runtime, tenant.connection_id) is None  # the poll's retry fails again: no news

    [(kind, failed)] = health(tenant)
    assert kind == "connection.failed"
    assert failed["part"] == "sync"
    assert failed["connection_id"] == tenant.connection_id
    assert "503" in failed["error"]
    assert tenant.connection().status is ConnectionStatus.ERROR

    assert sync.run(tenant.runtime, tenant.connection_id) is not None
    assert sync.run(tenant.runtime, tenant.connection_id) is not None  # healthy again: nothing more

    assert [kind for kind, _ in health(tenant)] == ["connection.failed", "connection.recovered"]
    assert health(tenant)[-1][1]["was"] == "error"
    assert tenant.connection().failing is None


def test_refused_credentials_need_an_admin_once_until_the_admin_acts(tenant: Tenant, graph: FakeGraph) -> None:
    unavailable(graph)
    sync.run(tenant.runtime, tenant.connection_id)
    graph.identity.apps.clear()  # the client secret was deleted in Entra ID
    sync.run(tenant.runtime, tenant.connection_id)
    sync.run(tenant.runtime, tenant.connection_id)  # an admin's "sync now" before fixing anything

    events = health(tenant)
    assert [kind for kind, _ in events] == ["connection.failed", "connection.action_required"]
    assert SECRET not in str(events)
    assert tenant.connection().status is ConnectionStatus.ACTION_REQUIRED

    # The admin enters a new secret that Graph refuses too: refused again after they acted is news again.
    with transaction(tenant.factory) as session:
        row = connections.get(session, tenant.organisation_id, tenant.connection_id)
        connections.update_connection(session, tenant.runtime.secret_box, row, credentials={"client_secret": "typo"})
    sync.run(tenant.runtime, tenant.connection_id)
    assert [kind for kind, _ in health(tenant)][-1] == "connection.action_required"
    assert len(health(tenant)) == 3

    graph.identity.apps[CLIENT_ID] = App(CLIENT_ID, secret=SECRET)
    with transaction(tenant.factory) as session:
        row = connections.get(session, tenant.organisation_id, tenant.connection_id)
        connections.update_connection(session, tenant.runtime.secret_box, row, credentials={"client_secret": SECRET})
    assert sync.run(tenant.runtime, tenant.connection_id) is not None

    kind, recovered = health(tenant)[-1]
    assert (kind, recovered["part"], recovered["was"]) == ("connection.recovered", "sync", "error")


def test_a_secret_no_key_opens_needs_an_admin_while_the_polls_go_on(tenant: Tenant, graph: FakeGraph) -> None:
    wrong = replace(tenant.runtime, secret_box=SecretBox([SecretBox.generate_key()]))
    sync.run(wrong, tenant.connection_id)
    sync.run(wrong, tenant.connection_id)

    [(kind, data)] = health(tenant)
    assert kind == "connection.action_required"
    assert "DESKBRIDGE_SECRET_KEY" in data["error"]
    assert tenant.connection().status is ConnectionStatus.ERROR  # polled again: fixing the key is enough

    assert sync.run(tenant.runtime, tenant.connection_id) is not None
    assert health(tenant)[-1][0] == "connection.recovered"
    assert health(tenant)[-1][1]["was"] == "action_required"


def test_push_channels_that_cannot_be_opened_are_said_once(tenant: Tenant, graph: FakeGraph) -> None:
    graph.subscriptions.validate_urls = True  # nothing answers Graph's validation request at our URL
    assert channels.ensure(tenant.runtime, tenant.connection_id) == 0
    assert channels.ensure(tenant.runtime, tenant.connection_id) == 0

    [(kind, failed)] = health(tenant)
    assert (kind, failed["part"]) == ("connection.failed", "push_channel")
    assert "validation" in failed["error"]
    assert tenant.connection().channel_error == failed["error"]
    assert tenant.connection().status is ConnectionStatus.ACTIVE  # polling still syncs it

    graph.subscriptions.validate_urls = False
    assert channels.ensure(tenant.runtime, tenant.connection_id) == 2
    assert channels.ensure(tenant.runtime, tenant.connection_id) == 0

    assert [(kind, data["part"]) for kind, data in health(tenant)] == [
        ("connection.failed", "push_channel"),
        ("connection.recovered", "push_channel"),
    ]
    assert tenant.connection().channel_error is None

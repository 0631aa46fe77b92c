"""Whole syncs through the real connectors: the fake Graph (TLS, msal) and the fake Google (google-auth)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dramatiq import Message
from sqlalchemy import select

from store.db import transaction
from store.models import Connection, ConnectionKind, ConnectionStatus, Member, MemberStatus, OutboxEvent
from store.services import connections
from sync.directory import engine
from sync.directory.readers import DirectoryEndpoints
from tests.conftest import BROKER
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import FakeGraph
from tests.worker.directory.conftest import Tenant
from worker.directory import sync


def states(tenant: Tenant) -> dict[str, MemberStatus]:
    with tenant.factory() as session:
        rows = session.scalars(select(Member).where(Member.organisation_id == tenant.organisation_id))
        return {row.email: row.status for row in rows}


def event_count(tenant: Tenant, type_: str) -> int:
    with tenant.factory() as session:
        return len(
            session.scalars(
                select(OutboxEvent.id).where(
                    OutboxEvent.organisation_id == tenant.organisation_id, OutboxEvent.type == type_
                )
            ).all()
        )


@pytest.fixture
def people(graph: FakeGraph) -> FakeGraph:
    directory = graph.directory
    directory.add_user("u1", "ada@contoso.example", display_name="Ada", mail="ada@contoso.example")
    directory.add_user("u2", "bob@contoso.example", display_name="Bob", mail="bob@contoso.example")
    directory.add_user("u3", "cy@contoso.example", display_name="Cy", mail="cy@contoso.example")
    directory.add_user("u4", "guest_x#EXT#@contoso.example", display_name="Guest", mail="x@else.example", guest=True)
    directory.add_user("u5", "off@contoso.example", display_name="Off", mail="off@contoso.example", enabled=False)
    return graph


def test_first_sync_then_changes_then_a_resync(tenant: Tenant, people: FakeGraph) -> None:
    progress: list[int] = []
    tally = sync.run(tenant.runtime, tenant.connection_id, progress=progress.append)

    assert tally is not None
    assert states(tenant) == dict.fromkeys(
        ["ada@contoso.example", "bob@contoso.example", "cy@contoso.example"], MemberStatus.INVITED
    )
    assert progress[-1] == 5
    connection = tenant.connection()
    assert connection.status is ConnectionStatus.ACTIVE
    assert connection.cursor
    assert connection.last_synced_at
    assert connection.last_counts["invited"] == 3

    people.directory.update_user("u1", displayName="Ada Lovelace")
    people.directory.soft_delete_user("u2")
    people.directory.add_user("u6", "dee@contoso.example", display_name="Dee", mail="dee@contoso.example")
    requests_before = people.count("/v1.0/users/delta")
    tally = sync.run(tenant.runtime, tenant.connection_id)

    assert tally is not None
    assert (tally.counts["updated"], tally.counts["removed"], tally.counts["invited"]) == (1, 1, 1)
    assert people.count("/v1.0/users/delta") - requests_before <= 2  # incremental: only the changes
    assert states(tenant)["bob@contoso.example"] is MemberStatus.REMOVED

    # The delta token expires: a full resync removes who is gone and invites nobody again.
    invited = event_count(tenant, "membership.invited")
    people.directory.hard_delete_user("u3")
    people.directory.expire_tokens()
    tally = sync.run(tenant.runtime, tenant.connection_id)

    assert tally is not None
    assert event_count(tenant, "membership.invited") == invited
    assert states(tenant)["cy@contoso.example"] is MemberStatus.REMOVED
    assert any("listing all users again" in note for note in tenant.connection().last_notes)


def test_throttling_is_waited_out_and_noted(tenant: Tenant, people: FakeGraph) -> None:
    people.throttle(2, retry_after="0.01")
    tally = sync.run(tenant.runtime, tenant.connection_id)
    assert tally is not None
    assert tally.counts["invited"] == 3
    assert any("throttled" in note for note in tenant.connection().last_notes)


def test_refused_credentials_need_an_admin_and_keep_the_cursor(tenant: Tenant, people: FakeGraph) -> None:
    sync.run(tenant.runtime, tenant.connection_id)
    cursor = tenant.connection().cursor
    people.identity.apps.clear()

    assert sync.run(tenant.runtime, tenant.connection_id) is None

    connection = tenant.connection()
    assert connection.status is ConnectionStatus.ACTION_REQUIRED
    assert connection.last_error
    assert "graph~secret" not in connection.last_error
    assert connection.cursor == cursor
    with tenant.factory() as session:
        failed = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "connection.action_required")).one()
        assert failed.data["part"] == "sync"


def test_a_sync_already_running_is_not_started_twice(tenant: Tenant, people: FakeGraph) -> None:
    with transaction(tenant.factory) as session:
        assert connections.claim(session, tenant.connection_id)
    assert sync.run(tenant.runtime, tenant.connection_id) is None
    assert people.count("/v1.0/users/delta") == 0


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


def test_a_google_workspace_sync(tenant: Tenant, google: FakeGoogle) -> None:
    ada = google.add_user("ada@acme.example", "Ada Lovelace")
    google.add_user("bob@acme.example", "Bob")
    google.add_user("old@acme.example", "Old", org_unit="/Alumni")
    engineering = google.add_group("eng@acme.example", "Engineering")
    google.add_members(engineering, [ada])
    with transaction(tenant.factory) as session:
        connection, _ = connections.create(
            session,
            tenant.runtime.secret_box,
            tenant.organisation_id,
            ConnectionKind.GOOGLE,
            "Workspace",
            settings={
                "admin_email": google.admin_email,
                "scope": {"org_units": ["/"], "groups": []},
                "team_groups": ["eng@acme.example"],
            },
            credentials={"service_account_key": google.service_account_info()},
        )
        connection_id = connection.id
    runtime = tenant.runtime
    google_runtime = type(runtime)(
        **{**runtime.__dict__, "directory": DirectoryEndpoints(google_api_url=google.base_url, allow_private=True)}
    )

    tally = sync.run(google_runtime, connection_id)

    assert tally is not None
    assert {"ada@acme.example", "bob@acme.example", "old@acme.example"} <= set(states(tenant))
    assert tally.counts["teams_changed"] == 1
    google.suspend_user(ada)
    sync.run(google_runtime, connection_id)
    assert states(tenant)["ada@acme.example"] is MemberStatus.REMOVED
    with tenant.factory() as session:
        assert session.get_one(Connection, connection_id).status is ConnectionStatus.ACTIVE


def test_a_sync_asked_for_while_one_runs_is_queued_when_it_ends(tenant: Tenant, people: FakeGraph) -> None:
    # A notification mid-sync asks for a sync whose job finds the connection held and does nothing; the
    # running sync queues it as it ends, so the change is read now rather than at the poll's sweep.
    BROKER.flush_all()
    asked: list[engine.Tally | None] = []

    def notified_meanwhile(users: int) -> None:
        if asked:
            return
        with transaction(tenant.factory) as session:
            assert connections.request_sync(session, tenant.connection_id)
        asked.append(sync.run(tenant.runtime, tenant.connection_id))  # its job: the connection is held

    assert sync.run(tenant.runtime, tenant.connection_id, progress=notified_meanwhile) is not None

    assert asked == [None]
    [message] = [Message.decode(raw) for raw in BROKER.queues["directory"].queue]
    assert (message.actor_name, message.args) == ("sync_connection", (tenant.connection_id,))
    BROKER.flush_all()
    assert sync.run(tenant.runtime, tenant.connection_id) is not None  # that sync: nothing more asked
    assert BROKER.queues["directory"].qsize() == 0

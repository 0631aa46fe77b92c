"""Plans read through the real connectors (the fake Graph, the fake Google), as the API and CLI make them:
the plan is what the sync then does; applied, it syncs as planned; a directory that moved on gives a
fresh plan; a big removal through a Google listing is held and the admins are told."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from sqlalchemy import select

from store.db import transaction
from store.models import Connection, ConnectionKind, ConnectionStatus, Member, MemberStatus, SyncPlan
from store.services import connections
from store.services import plans as stored
from sync.directory import plans
from sync.directory.readers import DirectoryEndpoints
from tests.fakes.google import FakeGoogle
from tests.fakes.graph import FakeGraph
from tests.worker.directory.conftest import Tenant
from worker import runtime
from worker.directory import plans as directory_plans
from worker.directory import sync


def states(tenant: Tenant) -> dict[str, MemberStatus]:
    with tenant.factory() as session:
        rows = session.scalars(select(Member).where(Member.organisation_id == tenant.organisation_id))
        return {row.email: row.status for row in rows}


def emails(plan: SyncPlan) -> dict[str, list[str]]:
    return {action: [item["email"] for item in items] for action, items in plans.people_of(plan).items()}


def make(worker_runtime: runtime.Runtime, connection_id: int) -> tuple[str, dict[str, list[str]]]:
    with worker_runtime.session_factory() as session:
        plan = plans.make_now(session, connection_id, partial(directory_plans.read, worker_runtime))
        return plan.public_id, emails(plan)


def test_a_graph_plan_is_what_the_sync_does_and_applies_as_planned(tenant: Tenant, graph: FakeGraph) -> None:
    graph.directory.add_user("u1", "ada@contoso.example", display_name="Ada", mail="ada@contoso.example")
    graph.directory.add_user("u2", "bob@contoso.example", display_name="Bob", mail="bob@contoso.example")
    sync.run(tenant.runtime, tenant.connection_id)
    graph.directory.update_user("u1", displayName="Ada Lovelace")
    graph.directory.soft_delete_user("u2")
    graph.directory.add_user("u3", "cy@contoso.example", display_name="Cy", mail="cy@contoso.example")
    cursor = tenant.connection().cursor

    plan_id, planned = make(tenant.runtime, tenant.connection_id)

    assert planned == {
        "invited": ["cy@contoso.example"],
        "updated": ["ada@contoso.example"],
        "removed": ["bob@contoso.example"],
    }
    assert states(tenant)["bob@contoso.example"] is MemberStatus.INVITED
    assert "cy@contoso.example" not in states(tenant)
    assert tenant.connection().cursor == cursor  # reading for a plan keeps nothing

    with tenant.factory() as session:
        outcome = plans.apply_now(
            session,
            tenant.organisation_id,
            tenant.connection_id,
            plan_id,
            partial(directory_plans.read, tenant.runtime),
        )
        assert outcome.applied
        assert {action: names for action, names in outcome.tally.people.items() if names} == planned
    connection = tenant.connection()
    assert (connection.status, connection.cursor != cursor) == (ConnectionStatus.ACTIVE, True)
    assert states(tenant)["bob@contoso.example"] is MemberStatus.REMOVED
    # The next sync finds nothing more to do: the plan was the sync.
    tally = sync.run(tenant.runtime, tenant.connection_id)
    assert tally is not None
    assert {name for name, count in tally.counts.items() if count and name != "seen"} == set()


def test_a_graph_plan_of_a_directory_that_moved_on_is_replaced(tenant: Tenant, graph: FakeGraph) -> None:
    graph.directory.add_user("u1", "ada@contoso.example", display_name="Ada", mail="ada@contoso.example")
    sync.run(tenant.runtime, tenant.connection_id)
    graph.directory.add_user("u2", "bob@contoso.example", display_name="Bob", mail="bob@contoso.example")
    plan_id, _ = make(tenant.runtime, tenant.connection_id)
    graph.directory.add_user("u3", "cy@contoso.example", display_name="Cy", mail="cy@contoso.example")

    with tenant.factory() as session:
        outcome = plans.apply_now(
            session,
            tenant.organisation_id,
            tenant.connection_id,
            plan_id,
            partial(directory_plans.read, tenant.runtime),
        )
        assert not outcome.applied
        assert outcome.fresh is not None
        assert emails(outcome.fresh) == {"invited": ["bob@contoso.example", "cy@contoso.example"]}
    assert "bob@contoso.example" not in states(tenant)
    assert tenant.connection().status is ConnectionStatus.ACTIVE  # the claim was let go


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        yield fake


def test_a_google_listing_that_drops_most_people_is_held(tenant: Tenant, google: FakeGoogle) -> None:
    ids = [google.add_user(f"p{index:02}@acme.example", f"Person {index}") for index in range(30)]
    with transaction(tenant.factory) as session:
        connection, _ = connections.create(
            session,
            tenant.runtime.secret_box,
            tenant.organisation_id,
            ConnectionKind.GOOGLE,
            "Workspace",
            settings={"admin_email": google.admin_email},
            credentials={"service_account_key": google.service_account_info()},
        )
        connection_id = connection.id
    google_runtime = type(tenant.runtime)(
        **{
            **tenant.runtime.__dict__,
            "directory": DirectoryEndpoints(google_api_url=google.base_url, allow_private=True),
        }
    )
    sync.run(google_runtime, connection_id)
    for user_id in ids[:12]:  # an OU moved: 12 of 30 suspended at once (the limit: 10 people or 5%)
        google.suspend_user(user_id)

    _, planned = make(google_runtime, connection_id)
    assert len(planned["removed"]) == 12
    tally = sync.run(google_runtime, connection_id)

    assert tally is not None
    assert (tally.counts["held"], tally.counts["removed"]) == (12, 0)
    with tenant.factory() as session:
        held = session.get_one(Connection, connection_id)
        assert held.status is ConnectionStatus.REMOVALS_HELD
        plan = stored.held_plan(session, held)
        assert plan is not None
        assert sorted(emails(plan)["removed"]) == sorted(planned["removed"])
    assert all(state is not MemberStatus.REMOVED for state in states(tenant).values())

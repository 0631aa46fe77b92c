"""A peer platform's people are planned like any directory's (When I Work through its people reader)."""

from __future__ import annotations

from functools import partial

from store.models import ConnectionKind
from sync.directory import plans
from tests.fakes.wheniwork import DEVELOPER_KEY, FakeWhenIWork
from tests.worker.peers.conftest import World
from worker.directory import plans as directory_plans

CREDENTIALS = {"developer_key": DEVELOPER_KEY, "username": "boss@example.com", "password": "pw"}


def test_a_when_i_work_plan_is_what_the_sync_does(world: World, wheniwork: FakeWhenIWork) -> None:
    wheniwork.add_login("boss@example.com", "pw", user_id=1)
    wheniwork.add_location(136, "Downtown")
    wheniwork.add_user(1, "Goldie", "Wilson", "goldie@example.com", role=2, locations=(136,))
    wheniwork.add_user(2, "Marty", "McFly", "marty@example.com", locations=(136,))
    connection_id = world.connect(ConnectionKind.WHENIWORK, {}, CREDENTIALS)
    world.sync(connection_id)
    del wheniwork.users[2]
    wheniwork.add_user(3, "Doc", "Brown", "doc@example.com", locations=(136,))
    read = partial(directory_plans.read, world.runtime)

    with world.factory() as session:
        plan = plans.make_now(session, connection_id, read)
        planned = {action: [item["email"] for item in items] for action, items in plans.people_of(plan).items()}
    assert planned == {"added": ["doc@example.com"], "removed": ["marty@example.com"]}
    assert world.members()["marty@example.com"] == "active"

    world.sync(connection_id)
    assert world.members() == {
        "goldie@example.com": "active",
        "marty@example.com": "removed",
        "doc@example.com": "active",
    }

"""A connection's calendars follow it: made for its people, dropped (channels closed) when it stops
reading calendars, and tried again when an admin changes it."""

from __future__ import annotations

from sqlalchemy import select

from store.db import transaction
from store.models import Calendar, Connection, ConnectionStatus, PushChannel
from store.services import connections
from tests.conftest import BROKER
from tests.fakes.graph import FakeGraph
from tests.worker.calendar.conftest import World, microsoft
from tests.worker.conftest import drain
from worker.calendar import jobs


def test_turning_calendars_off_drops_them_and_closes_their_channels(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    drain(BROKER, "calendar")  # first syncs and channels
    assert len(graph.subscriptions.items) == 2

    with transaction(world.factory) as session:
        connection = session.get_one(Connection, connection_id)
        connections.update_connection(session, world.runtime.secret_box, connection, settings={"calendars": False})
    jobs.calendars_changed(world.runtime, connection_id)  # what the API calls after the commit
    drain(BROKER, "calendar")

    assert graph.subscriptions.items == {}
    with world.factory() as session:
        assert session.scalars(select(Calendar)).all() == []
        assert session.scalars(select(PushChannel)).all() == []


def test_an_admin_change_retries_calendars_waiting_for_them(world: World, graph: FakeGraph) -> None:
    connection_id = microsoft(world, graph)
    calendar_id = world.calendar_id("ada@contoso.example")
    drain(BROKER, "calendar")  # first syncs done: nothing is asked for any more
    assert world.calendar(calendar_id).sync_requested_at is None
    with transaction(world.factory) as session:
        session.get_one(Calendar, calendar_id).status = ConnectionStatus.ACTION_REQUIRED

    live = jobs.follow(world.runtime, connection_id, retry=True)

    assert calendar_id in live
    calendar = world.calendar(calendar_id)
    assert calendar.status is ConnectionStatus.ERROR  # no longer waiting: the poll reads it again
    assert calendar.sync_requested_at is not None
